// The known_hosts file the extension owns (handed to OpenSSH/Remote-SSH as UserKnownHostsFile). Each sandbox
// has one line naming its alias and its IP address(es) with the host key we generated for it. We add,
// replace and remove only our hosts' names; every other line keeps its bytes. Hashed names (`|1|salt|hash`,
// written by `HashKnownHosts yes`) are matched too, so cleanup does not silently miss them as pixels does.
import { createHmac } from 'node:crypto';
import { join, dirname, basename } from 'node:path';
import { promises as fs } from 'node:fs';
import { ValidationError } from '../core/errors';
import { readIfExists, withFileLock, writeFileAtomic, type LockOptions } from './atomic-file';
import { parsePublicKey } from './keys';

/** How a host appears in known_hosts: `name`, or `[name]:port` for a port other than 22. */
export function knownHostsName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function patternMatches(pattern: string, hostName: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(hostName).digest('base64');
    return digest === hash;
  }
  return pattern === hostName;
}

interface ParsedLine {
  raw: string;
  /** Host patterns of a plain entry; undefined for comments, blank lines and @marker lines (left alone). */
  patterns?: string[];
  rest?: string;
}

function parseLine(raw: string): ParsedLine {
  const text = raw.replace(/\r$/, '');
  if (/^\s*(#|@|$)/.test(text)) return { raw };
  const match = /^\s*(\S+)\s+(.*)$/.exec(text);
  if (!match) return { raw };
  return { raw, patterns: match[1]!.split(','), rest: match[2]! };
}

function checkHostName(name: string): void {
  if (!/^[A-Za-z0-9._:[\]%-]+$/.test(name))
    throw new ValidationError(`"${name}" is not a valid host name or address.`);
}

export class KnownHosts {
  constructor(
    readonly path: string,
    private readonly lockOptions: LockOptions = {},
  ) {}

  /** The public key lines (`type base64`) recorded for a host. */
  async lookup(host: string, port = 22): Promise<string[]> {
    const name = knownHostsName(host, port);
    const lines = await this.readLines();
    return lines.flatMap((line) => {
      const parsed = parseLine(line);
      if (!parsed.patterns?.some((p) => patternMatches(p, name))) return [];
      const [type, key] = parsed.rest!.split(/\s+/);
      return type && key ? [`${type} ${key}`] : [];
    });
  }

  /**
   * Records `publicKey` for a sandbox: `names[0]` is its alias, the rest its addresses. Lines naming the alias
   * are replaced (they hold stale addresses); the addresses are taken off any other line (an IP was reused).
   */
  async set(names: readonly string[], publicKey: string, port = 22): Promise<void> {
    if (names.length === 0) throw new ValidationError('A known host needs at least one name.');
    names.forEach(checkHostName);
    const key = parsePublicKey(publicKey);
    const entry = `${names.map((n) => knownHostsName(n, port)).join(',')} ${key.type} ${key.blob.toString('base64')}`;
    await this.update((lines) => [...this.without(lines, names, port), entry]);
  }

  /** Removes a sandbox's alias (`names[0]`, whole line) and its addresses. */
  async remove(names: readonly string[], port = 22): Promise<void> {
    if (names.length === 0) return;
    await this.update((lines) => this.without(lines, names, port));
  }

  private without(lines: string[], names: readonly string[], port: number): string[] {
    const alias = knownHostsName(names[0]!, port);
    const all = names.map((n) => knownHostsName(n, port));
    const out: string[] = [];
    for (const line of lines) {
      const parsed = parseLine(line);
      if (!parsed.patterns) {
        out.push(line);
        continue;
      }
      if (parsed.patterns.some((p) => patternMatches(p, alias))) continue;
      const kept = parsed.patterns.filter((p) => !all.some((n) => patternMatches(p, n)));
      if (kept.length === parsed.patterns.length) out.push(line);
      else if (kept.length > 0) out.push(`${kept.join(',')} ${parsed.rest}`);
    }
    return out;
  }

  private async readLines(): Promise<string[]> {
    const data = await readIfExists(this.path);
    if (!data || data.length === 0) return [];
    const text = data.toString('utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  private async update(change: (lines: string[]) => string[]): Promise<void> {
    await fs.mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const lock = join(dirname(this.path), `.${basename(this.path)}.lock`);
    await withFileLock(
      lock,
      async () => {
        const lines = change(await this.readLines());
        await writeFileAtomic(this.path, lines.length ? lines.join('\n') + '\n' : '', 0o600);
      },
      this.lockOptions,
    );
  }
}
