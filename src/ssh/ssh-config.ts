// SSH config for Remote-SSH without ever damaging the user's own file. Our hosts live in a file we own; the
// user's config (remote.SSH.configFile or ~/.ssh/config) only gets one marked block with an `Include` of it:
//
//   # --- BEGIN PIXELS (managed by Pixels for VS Code; do not edit) ---
//   Include "/home/me/.ssh/pixels/config"
//   # --- END PIXELS ---
//
// The block goes at the very top of the file (so before the first Host/Match): OpenSSH takes the first value
// it sees, so nothing of the user's, not even a global option, can override our entries, and Host blocks in
// an included file do not leak into the lines after the Include. Bytes outside the markers are never changed;
// damaged markers make us refuse. Writes are atomic and serialised across processes with a lock file.
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import SSHConfig, { glob, LineType, parse, type Line, type Section } from 'ssh-config';
import { ValidationError } from '../core/errors';
import { readIfExists, withFileLock, writeFileAtomic, type LockOptions } from './atomic-file';

export const BEGIN_MARKER = '# --- BEGIN PIXELS (managed by Pixels for VS Code; do not edit) ---';
export const END_MARKER = '# --- END PIXELS ---';
const BEGIN_PREFIX = '# --- BEGIN PIXELS';
/** UTF-8 byte order mark as it appears in a latin1-decoded file. */
const BOM = '\xef\xbb\xbf';

export interface SshHostEntry {
  /** The Host name Remote-SSH connects to, e.g. `px-dev`. */
  alias: string;
  /** IP address or DNS name of the sandbox. */
  hostName: string;
  user: string;
  /** Default 22. */
  port?: number;
  identityFile: string;
  /** The known_hosts file the extension owns (the sandbox's host key is pinned there). */
  knownHostsFile: string;
  /** Alias of another entry of ours to go through (ProxyJump): a sandbox behind its server's jump host. */
  proxyJump?: string;
  /** The name the host key is pinned under in known_hosts (a jump host: its own alias, whatever its address). */
  hostKeyAlias?: string;
}

export interface SshConfigWriterOptions {
  /** `remote.SSH.configFile` when set, else ~/.ssh/config. */
  configPath?: string;
  /** The file we own (default ~/.ssh/pixels/config). */
  hostsPath?: string;
  lock?: LockOptions;
  /** OpenSSH client used to check the result with `ssh -G`; default: `ssh` from PATH; false = library check only. */
  sshBinary?: string | false;
}

export interface UpsertResult {
  /** Precise descriptions of user settings that override ours (empty when ssh will use exactly our values). */
  warnings: string[];
}

/** Settings we write, in the order we write them, with how `ssh -G` prints them. */
const CHECKED = [
  'HostName',
  'User',
  'Port',
  'IdentityFile',
  'UserKnownHostsFile',
  'StrictHostKeyChecking',
  'ProxyJump',
  'HostKeyAlias',
] as const;
type Checked = (typeof CHECKED)[number];

function defaultConfigPath(): string {
  return join(homedir(), '.ssh', 'config');
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const candidate of process.platform === 'win32' ? [`${name}.exe`, name] : [name]) {
      const full = join(dir, candidate);
      if (existsSync(full)) return full;
    }
  }
  return undefined;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** A value as OpenSSH reads it back: double quotes around anything with spaces. */
function configValue(value: string, what: string): string {
  if (value === '' || /["\r\n\0]/.test(value))
    throw new ValidationError(`${what} cannot be empty or contain quotes or line breaks.`);
  return /[\s#'\\]/.test(value) ? `"${value}"` : value;
}

/** Paths in an ssh config use forward slashes (OpenSSH on Windows accepts them; backslashes can be escapes). */
function configPath(path: string): string {
  return process.platform === 'win32' ? path.replace(/\\/g, '/') : path;
}

function validateEntry(entry: SshHostEntry): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(entry.alias)) {
    throw new ValidationError(
      `"${entry.alias}" is not a valid SSH host alias (letters, digits, ".", "_", "-").`,
    );
  }
  if (!/^[A-Za-z0-9.:_%-]+$/.test(entry.hostName))
    throw new ValidationError(`"${entry.hostName}" is not a valid host name or address.`);
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(entry.user))
    throw new ValidationError(`"${entry.user}" is not a valid user name.`);
  const port = entry.port ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ValidationError(`${port} is not a valid port.`);
  configValue(entry.identityFile, 'IdentityFile');
  configValue(entry.knownHostsFile, 'UserKnownHostsFile');
  for (const [what, alias] of [
    ['ProxyJump', entry.proxyJump],
    ['HostKeyAlias', entry.hostKeyAlias],
  ] as const) {
    if (alias !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(alias))
      throw new ValidationError(`"${alias}" is not a valid ${what} alias (letters, digits, ".", "_", "-").`);
  }
  if (entry.proxyJump === entry.alias)
    throw new ValidationError(`Host "${entry.alias}" cannot jump through itself.`);
}

function hostBlock(entry: SshHostEntry): string {
  return [
    `Host ${entry.alias}`,
    `  HostName ${entry.hostName}`,
    `  User ${entry.user}`,
    `  Port ${entry.port ?? 22}`,
    `  IdentityFile ${configValue(configPath(entry.identityFile), 'IdentityFile')}`,
    `  UserKnownHostsFile ${configValue(configPath(entry.knownHostsFile), 'UserKnownHostsFile')}`,
    '  StrictHostKeyChecking yes',
    '  IdentitiesOnly yes',
    ...(entry.hostKeyAlias ? [`  HostKeyAlias ${entry.hostKeyAlias}`] : []),
    ...(entry.proxyJump ? [`  ProxyJump ${entry.proxyJump}`] : []),
    '',
  ].join('\n');
}

function directiveValue(line: Line): string {
  if (line.type !== LineType.DIRECTIVE) return '';
  return typeof line.value === 'string' ? line.value : line.value.map((v) => v.val).join(' ');
}

/** Parses the hosts file we own back into entries (keyed by alias, in file order). */
function parseHostsFile(text: string): Map<string, SshHostEntry> {
  const entries = new Map<string, SshHostEntry>();
  for (const line of parse(text)) {
    if (line.type !== LineType.DIRECTIVE || !/^host$/i.test(line.param) || !('config' in line)) continue;
    const get = (param: string) => {
      const found = (line as Section).config.find(
        (l) => l.type === LineType.DIRECTIVE && l.param.toLowerCase() === param.toLowerCase(),
      );
      return found ? directiveValue(found) : '';
    };
    const alias = directiveValue(line);
    const entry: SshHostEntry = {
      alias,
      hostName: get('HostName'),
      user: get('User'),
      port: Number(get('Port') || 22),
      identityFile: get('IdentityFile'),
      knownHostsFile: get('UserKnownHostsFile'),
    };
    if (get('ProxyJump')) entry.proxyJump = get('ProxyJump');
    if (get('HostKeyAlias')) entry.hostKeyAlias = get('HostKeyAlias');
    entries.set(alias, entry);
  }
  return entries;
}

interface RawLine {
  start: number;
  end: number; // after the line break
  text: string; // without the line break
}

/** Splits text (latin1, so any bytes round-trip) into lines with their exact offsets. */
function splitLines(text: string): RawLine[] {
  const lines: RawLine[] = [];
  // A byte order mark belongs to no line: it stays in front of the file whatever we do to the first line.
  let start = text.startsWith(BOM) ? BOM.length : 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl + 1;
    lines.push({ start, end, text: text.slice(start, nl === -1 ? end : nl).replace(/\r$/, '') });
    start = end;
  }
  return lines;
}

interface BlockLocation {
  begin: RawLine;
  end: RawLine;
}

/** Finds our block; undefined when absent; ValidationError when the markers are damaged. */
function findBlock(text: string, file: string): BlockLocation | undefined {
  const lines = splitLines(text);
  const begins = lines.filter((l) => l.text.trim().startsWith(BEGIN_PREFIX));
  const ends = lines.filter((l) => l.text.trim() === END_MARKER);
  if (begins.length === 0 && ends.length === 0) return undefined;
  if (begins.length === 1 && ends.length === 1 && begins[0]!.start < ends[0]!.start)
    return { begin: begins[0]!, end: ends[0]! };
  throw new ValidationError(
    `${file} has ${begins.length} "${BEGIN_PREFIX}" and ${ends.length} "${END_MARKER}" marker line(s)` +
      `${begins.length === 1 && ends.length === 1 ? ' in the wrong order' : ''}. ` +
      'Pixels will not edit it until the markers are fixed by hand (keep exactly one BEGIN line followed by one END line, or remove both). Nothing was written.',
  );
}

function lineBreak(text: string): string {
  const crlf = (text.match(/\r\n/g) ?? []).length;
  const lf = (text.match(/\n/g) ?? []).length - crlf;
  return crlf > lf ? '\r\n' : '\n';
}

export class SshConfigWriter {
  readonly configPath: string;
  readonly hostsPath: string;
  private readonly lockPath: string;

  constructor(private readonly options: SshConfigWriterOptions = {}) {
    this.configPath = options.configPath ? expandHome(options.configPath) : defaultConfigPath();
    this.hostsPath = options.hostsPath
      ? expandHome(options.hostsPath)
      : join(homedir(), '.ssh', 'pixels', 'config');
    this.lockPath = join(dirname(this.hostsPath), `.${basename(this.hostsPath)}.lock`);
  }

  /** Adds or replaces one host, makes sure the user's config includes our file, then checks what ssh will use. */
  async upsertHost(entry: SshHostEntry): Promise<UpsertResult> {
    validateEntry(entry);
    await this.locked(async () => {
      // The user's file first: damaged markers stop us before anything is written.
      await this.ensureInclude();
      const entries = await this.readEntries();
      entries.set(entry.alias, { ...entry, port: entry.port ?? 22 });
      await this.writeEntries(entries);
    });
    return { warnings: await this.verify(entry) };
  }

  /** Removes one host from our file (a destroyed sandbox). The Include block stays: it is harmless. */
  async removeHost(alias: string): Promise<void> {
    await this.locked(async () => {
      const entries = await this.readEntries();
      if (!entries.delete(alias)) return;
      await this.writeEntries(entries);
    });
  }

  /** Current contents of the file we own ('' when it does not exist yet). */
  async hostsFileContents(): Promise<string> {
    return (await readIfExists(this.hostsPath))?.toString('utf8') ?? '';
  }

  async hosts(): Promise<SshHostEntry[]> {
    return [...(await this.readEntries()).values()];
  }

  /** Takes our block out of the user's config again (uninstall); the rest of the file is left as it was. */
  async removeInclude(): Promise<void> {
    await this.locked(async () => {
      const data = await readIfExists(this.configPath);
      if (!data) return;
      const text = data.toString('latin1');
      const block = findBlock(text, this.configPath);
      if (!block) return;
      await writeFileAtomic(
        this.configPath,
        Buffer.from(text.slice(0, block.begin.start) + text.slice(block.end.end), 'latin1'),
      );
    });
  }

  /**
   * What ssh will really use for `entry.alias`, compared with what we wrote. Uses `ssh -G` when OpenSSH is
   * installed, else the ssh-config library on the part of the user's file that comes before our block.
   */
  async verify(entry: SshHostEntry): Promise<string[]> {
    const expected: Partial<Record<Checked, string>> = {
      HostName: entry.hostName,
      User: entry.user,
      Port: String(entry.port ?? 22),
      IdentityFile: expandHome(entry.identityFile),
      UserKnownHostsFile: expandHome(entry.knownHostsFile),
      StrictHostKeyChecking: 'yes',
      // Only what we set: without them, ssh -G's values are the user's business.
      ...(entry.proxyJump ? { ProxyJump: entry.proxyJump } : {}),
      ...(entry.hostKeyAlias ? { HostKeyAlias: entry.hostKeyAlias } : {}),
    };
    const userText = (await readIfExists(this.configPath))?.toString('utf8') ?? '';
    const binary =
      this.options.sshBinary === false ? undefined : (this.options.sshBinary ?? findOnPath('ssh'));
    let actual: Partial<Record<Checked, string>>;
    const warnings: string[] = [];
    if (binary) {
      try {
        actual = await this.sshG(binary, entry.alias, expected.UserKnownHostsFile!);
      } catch (err) {
        return [`Could not check ${this.configPath} with "ssh -G ${entry.alias}": ${(err as Error).message}`];
      }
    } else {
      const { values, unverifiable } = this.libraryCheck(userText, entry.alias);
      actual = { ...expected, ...values };
      warnings.push(...unverifiable);
    }
    for (const key of CHECKED) {
      const got = actual[key];
      if (expected[key] === undefined || got === undefined || got === expected[key]) continue;
      const culprit = findCulprit(userText, entry.alias, key);
      warnings.push(
        `For host "${entry.alias}" ssh uses ${key} ${got} instead of ${expected[key]}: ` +
          `${culprit ?? 'an earlier setting'} in ${this.configPath} comes first and wins. ` +
          `Move the "${BEGIN_PREFIX}" block above it, or exclude ${entry.alias} there.`,
      );
    }
    return warnings;
  }

  private sshG(
    binary: string,
    alias: string,
    knownHostsFile: string,
  ): Promise<Partial<Record<Checked, string>>> {
    return new Promise((resolve, reject) => {
      execFile(binary, ['-G', '-F', this.configPath, alias], { timeout: 10_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error((stderr || err.message).trim().split('\n')[0]));
        const out: Partial<Record<Checked, string>> = {};
        for (const line of stdout.split('\n')) {
          const space = line.indexOf(' ');
          if (space < 0) continue;
          const key = line.slice(0, space);
          const value = line.slice(space + 1).trim();
          const checked = CHECKED.find((k) => k.toLowerCase() === key);
          if (!checked || out[checked] !== undefined) continue; // first IdentityFile is the one tried first
          if (checked === 'StrictHostKeyChecking')
            out[checked] = value === 'true' ? 'yes' : value === 'false' ? 'no' : value;
          else if (checked === 'UserKnownHostsFile') {
            // ssh -G lists the files space-separated and unquoted, so a path with spaces is matched as a prefix.
            const expanded = expandHome(value);
            out[checked] =
              expanded === knownHostsFile || expanded.startsWith(knownHostsFile + ' ')
                ? knownHostsFile
                : expanded.split(' ')[0]!;
          } else out[checked] = checked === 'IdentityFile' ? expandHome(value) : value;
        }
        resolve(out);
      });
    });
  }

  /** First-match evaluation of the user's lines before our block (nothing after it can override us). */
  private libraryCheck(
    userText: string,
    alias: string,
  ): { values: Partial<Record<Checked, string>>; unverifiable: string[] } {
    const before = beforeBlock(userText);
    const config = parse(before);
    const unverifiable = config
      .filter((l) => l.type === LineType.DIRECTIVE && /^include$/i.test(l.param))
      .map(
        (l) =>
          `${this.configPath} includes ${directiveValue(l)} before the Pixels block; without OpenSSH installed Pixels cannot check whether it overrides the settings for ${alias}.`,
      );
    const computed = config.compute(alias, { ignoreCase: true, matchExec: false });
    const values: Partial<Record<Checked, string>> = {};
    for (const key of CHECKED) {
      const raw = computed[key.toLowerCase()];
      if (raw === undefined) continue;
      const first = Array.isArray(raw) ? raw[0]! : raw;
      values[key] =
        key === 'IdentityFile' || key === 'UserKnownHostsFile' ? expandHome(first.split(' ')[0]!) : first;
    }
    return { values, unverifiable };
  }

  private async readEntries(): Promise<Map<string, SshHostEntry>> {
    return parseHostsFile(await this.hostsFileContents());
  }

  private async writeEntries(entries: Map<string, SshHostEntry>): Promise<void> {
    const header = [
      '# Managed by Pixels for VS Code: one Host per sandbox. Changes here are overwritten.',
      `# Included from ${this.configPath}.`,
      '',
    ].join('\n');
    const body = [...entries.values()].map(hostBlock).join('\n');
    await writeFileAtomic(this.hostsPath, header + '\n' + body, 0o600);
  }

  /** Puts our block at the top of the user's config, or refreshes the Include inside an existing block. */
  private async ensureInclude(): Promise<void> {
    await fs.mkdir(dirname(this.configPath), { recursive: true, mode: 0o700 });
    const data = await readIfExists(this.configPath);
    const text = data?.toString('latin1') ?? '';
    const eol = lineBreak(text);
    const include = `Include ${configValue(configPath(this.hostsPath), 'The Pixels hosts file path')}`;
    const block = findBlock(text, this.configPath);
    let next: string;
    if (!block) {
      // A byte order mark has to stay the first thing in the file.
      const bom = text.startsWith(BOM) ? BOM.length : 0;
      next = text.slice(0, bom) + [BEGIN_MARKER, include, END_MARKER, ''].join(eol) + text.slice(bom);
    } else {
      const inner = text.slice(block.begin.end, block.end.start);
      if (inner === include + eol) return;
      const beginLine = text.slice(block.begin.start, block.begin.end);
      // A BEGIN marker on the last line without a line break cannot happen (END follows it).
      next = text.slice(0, block.begin.start) + beginLine + include + eol + text.slice(block.end.start);
    }
    if (data && next === text) return;
    await writeFileAtomic(this.configPath, Buffer.from(next, 'latin1'), 0o600);
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    await fs.mkdir(dirname(this.hostsPath), { recursive: true, mode: 0o700 });
    return withFileLock(this.lockPath, fn, this.options.lock);
  }
}

/** The user's text before our BEGIN marker (all of it when there is no block). */
function beforeBlock(userText: string): string {
  const index = userText.split('\n').findIndex((l) => l.trim().startsWith(BEGIN_PREFIX));
  return index < 0 ? userText : userText.split('\n').slice(0, index).join('\n');
}

/** Names the first place in the user's config before our block that sets `key` for `alias`. */
function findCulprit(userText: string, alias: string, key: string): string | undefined {
  let config: SSHConfig;
  try {
    config = parse(beforeBlock(userText));
  } catch {
    return undefined;
  }
  const sets = (lines: Line[]) =>
    lines.some((l) => l.type === LineType.DIRECTIVE && l.param.toLowerCase() === key.toLowerCase());
  for (const line of config) {
    if (line.type !== LineType.DIRECTIVE) continue;
    if ('config' in line) {
      const header = `${line.param} ${directiveValue(line)}`;
      const applies = /^host$/i.test(line.param) ? glob(directiveValue(line).split(/\s+/), alias) : true;
      if (applies && sets((line as Section).config)) return `the "${header}" block`;
    } else if (line.param.toLowerCase() === key.toLowerCase()) {
      return `the global line "${line.param} ${directiveValue(line)}"`;
    }
  }
  return undefined;
}
