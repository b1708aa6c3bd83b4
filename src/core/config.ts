// Configuration from three places, merged with one documented precedence (highest first):
//
//   1. VS Code settings (`pixels.*`, only values the user set explicitly)
//   2. PIXELS_* environment variables (an empty value does not override, as in the pixels CLI)
//   3. the pixels CLI TOML file ($XDG_CONFIG_HOME/pixels/config.toml, else the OS config directory)
//   4. built-in defaults (egress: `agent` — the extension manifest's default for pixels.defaults.egress is only
//      what the Settings editor shows; an unset value is resolved here)
//
// Servers: every `pixels.servers` entry is a server. The TOML/env `[truenas]` and `[incus]` sections describe one
// server each (ids `pixels-truenas` / `pixels-incus`); a settings entry with the same id overrides them field by
// field. API keys found in the TOML file or the environment are never copied to settings: they are reported in
// `apiKeys` so the editor can offer to import them into SecretStorage.
//
// Loading never throws: a problem (bad TOML syntax, a value of the wrong type) is reported with the file, line
// and key, and everything else still loads.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import type { HostGuardMode } from './backend';
import type { NicSetting } from './network-plan';
import type { EgressMode } from './sandbox';
import { cpuProblem, memoryProblem } from './names';
import { closestKey } from './closest';
import { unknownSettings, unknownTomlKeys } from './configKeys';
import { egressEntryProblem } from './egressEntry';
import { parseBases, type BasesConfig } from './basesConfig';

export type ServerKind = 'truenas' | 'incus';

export interface ServerConfig {
  id: string;
  kind: ServerKind;
  label: string;
  /** Where the entry came from, for messages: 'settings', 'environment', or the TOML file path. */
  source: string;
  host?: string;
  port?: number;
  username?: string;
  secure?: boolean;
  tlsFingerprint?: string;
  socketPath?: string;
  url?: string;
  clientCert?: string;
  clientKey?: string;
  serverCert?: string;
  project?: string;
  /** Incus: the host-side egress layer ('network': a network ACL refusing private ranges). */
  hostGuard?: HostGuardMode;
  /**
   * The NIC of new sandboxes: settings `"nic": { "type", "parent", "network" }`, else the TOML `[defaults]`
   * nic_type/parent/network. Absent: the backend chooses (TrueNAS: as pixels does, see nic-choice.ts).
   */
  nic?: NicSetting;
  /** SSH to this server's sandboxes goes through this host (ProxyJump); fields left out take defaults. */
  jumpHost?: JumpHostSetting;
  /**
   * Incus cluster: where new sandboxes go. 'auto' (or absent): Incus chooses; 'ask': the user picks at each Create
   * and Clone; else a member name or `@group`.
   */
  placement?: string;
  /** TrueNAS 26 RC.1+: checkpoints through one-off root cron jobs where the API refuses them (opt-in). */
  hostJobCheckpoints?: boolean;
}

/** `pixels.servers[].jumpHost` as written; resolveJumpHost fills in the defaults. */
export interface JumpHostSetting {
  host?: string;
  port?: number;
  user?: string;
}

/** A server's jump host with every default applied. */
export interface JumpHostConfig {
  host: string;
  port: number;
  user: string;
}

/** The NAS admin of a 25.04+ install (older systems upgraded from CORE keep root). */
export const TRUENAS_DEFAULT_SSH_USER = 'truenas_admin';
const HOST_NAME = /^[A-Za-z0-9.-]+$|^\[?[0-9A-Fa-f:.]+\]?$/;
const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

/** What is wrong with a jumpHost value, or undefined (fields: host, port, user; all optional). */
export function jumpHostProblem(value: unknown): { field?: string; message: string } | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { message: 'must be an object with optional "host", "port" and "user"' };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'host') {
      if (typeof v !== 'string' || !HOST_NAME.test(v))
        return { field: k, message: 'must be a host name or IP address' };
    } else if (k === 'port') {
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535)
        return { field: k, message: 'must be a port number (1-65535)' };
    } else if (k === 'user') {
      if (typeof v !== 'string' || !USER_NAME.test(v))
        return { field: k, message: 'must be a user name (letters, digits, ".", "_", "-")' };
    } else return { field: k, message: `is not a jumpHost field (use "host", "port" and "user")` };
  }
  return undefined;
}

/**
 * The jump host with defaults: TrueNAS jumps through the NAS itself as truenas_admin; a remote Incus server
 * through its URL's host (the user must be given); a local Incus socket has no host to default to.
 */
export function resolveJumpHost(server: ServerConfig): JumpHostConfig | undefined {
  const jump = server.jumpHost;
  if (!jump) return undefined;
  const defaultHost =
    server.kind === 'truenas' ? server.host : server.url ? new URL(server.url).hostname : undefined;
  const host = jump.host ?? defaultHost;
  const user = jump.user ?? (server.kind === 'truenas' ? TRUENAS_DEFAULT_SSH_USER : undefined);
  if (!host || !user) return undefined;
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port: jump.port ?? 22, user };
}

export interface SandboxDefaults {
  image: string;
  cpu: string;
  memoryMiB: number;
  egress: EgressMode;
  provision: boolean;
  /** Extra domains for the agent / allowlist egress modes (TOML `[network] allow`). */
  allow: string[];
  /** TOML `[defaults] nic_type` / `parent` / `network`: the NIC of new sandboxes on every server. */
  nic?: NicSetting;
}

export interface EnvironmentConfig {
  /** Variables written into the image (`KEY = "v"` or `KEY = { value = "v" }`). */
  image: Record<string, string>;
  /** Variables forwarded from the host into sessions (`KEY = { forward = true }`). */
  forward: string[];
  /** Session-only variables (`KEY = { value = "v", session_only = true }`). */
  session: Record<string, string>;
}

export interface PixelsConfig {
  servers: ServerConfig[];
  defaults: SandboxDefaults;
  ssh: { user: string; identityFile: string; configFile?: string };
  env: EnvironmentConfig;
  refreshIntervalSeconds: number;
  /** API keys found outside SecretStorage, per server id, to offer for import. */
  apiKeys: { serverId: string; apiKey: string; source: string }[];
  /** The TOML file that was looked at (whether or not it exists). */
  configFile: string;
  /** `[mcp.bases.*]` plus the built-in bases, and the agent lifecycle policy of `[mcp]`. */
  bases: BasesConfig;
}

export interface ConfigProblem {
  /** File path, 'environment' or 'settings'. */
  source: string;
  line?: number;
  key?: string;
  message: string;
}

/** What the editor passes in from VS Code settings: only values the user set (not the manifest defaults). */
export interface SettingsInput {
  servers?: unknown;
  defaults?: { image?: unknown; cpu?: unknown; memoryMiB?: unknown; egress?: unknown; provision?: unknown };
  refreshIntervalSeconds?: unknown;
  ssh?: { identityFile?: unknown; configFile?: unknown };
  /**
   * For typo reports: the whole `pixels` section as the editor has it (nested objects) and the keys the extension
   * contributes (without `pixels.`). Both or neither.
   */
  section?: Record<string, unknown>;
  knownKeys?: readonly string[];
}

export interface LoadOptions {
  settings?: SettingsInput;
  env?: NodeJS.ProcessEnv;
  /** Overrides the TOML location (tests). */
  configFile?: string;
  platform?: NodeJS.Platform;
  home?: string;
}

export const BUILTIN_DEFAULTS: SandboxDefaults = {
  image: 'ubuntu/24.04',
  cpu: '2',
  memoryMiB: 2048,
  // Safe by default: with no egress set anywhere, a new sandbox is network-locked to the agent preset.
  egress: 'agent',
  provision: true,
  allow: [],
};
const EGRESS_MODES: readonly EgressMode[] = ['unrestricted', 'agent', 'allowlist'];
const DEFAULT_REFRESH_SECONDS = 60;
const SERVER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The pixels CLI's config path: $XDG_CONFIG_HOME, else the OS config dir (as Go's os.UserConfigDir). */
export function configFilePath(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'pixels', 'config.toml');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'pixels', 'config.toml');
  if (platform === 'win32')
    return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'pixels', 'config.toml');
  return join(home, '.config', 'pixels', 'config.toml');
}

export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/') || path.startsWith('~\\')) return join(home, path.slice(2));
  return path;
}

type Table = Record<string, unknown>;

/** Parses TOML, and on a syntax error blanks the offending line and tries again, so the rest still loads. */
export function parseTomlLeniently(text: string, file: string): { data: Table; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const lines = text.split(/\r?\n/);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      return { data: parse(lines.join('\n')) as Table, problems };
    } catch (err) {
      if (!(err instanceof TomlError) || !(err.line >= 1 && err.line <= lines.length)) {
        problems.push({ source: file, message: `cannot be read as TOML: ${firstLine(err)}` });
        return { data: {}, problems };
      }
      const bad = lines[err.line - 1];
      const key = /^\s*([A-Za-z0-9_."'-]+)\s*=/.exec(bad)?.[1]?.replace(/["']/g, '');
      problems.push({ source: file, line: err.line, key, message: `TOML syntax error: ${firstLine(err)}` });
      lines[err.line - 1] = '';
    }
  }
  problems.push({ source: file, message: 'too many TOML syntax errors; the file was ignored' });
  return { data: {}, problems };
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0].replace(/^Invalid TOML document:\s*/, '');
}

/** 1-based line of `key` inside `[table]` in the TOML text, for messages about values of the wrong type. */
export function lineOfKey(text: string, table: string, key: string): number | undefined {
  let current = '';
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const header = /^\s*\[([^\]]+)\]\s*(#.*)?$/.exec(lines[i]);
    if (header) {
      current = header[1].trim().replace(/["'\s]/g, '');
      continue;
    }
    const m = /^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=/.exec(lines[i]);
    if (m && current === table && (m[1] ?? m[2] ?? m[3]) === key) return i + 1;
  }
  return undefined;
}

/** 1-based line of the `[table]` header (or of `table = ...` at the top level). */
function lineOfTable(text: string, table: string): number | undefined {
  const lines = text.split(/\r?\n/);
  const header = lines.findIndex((l) => {
    const m = /^\s*\[\s*([^\]]+?)\s*\]/.exec(l);
    return m !== null && m[1].replace(/["'\s]/g, '').split('.')[0] === table;
  });
  return header === -1 ? lineOfKey(text, '', table) : header + 1;
}

/** Reads one field of the merged sources, recording a problem (and ignoring the value) when its type is wrong. */
class FieldReader {
  constructor(
    readonly problems: ConfigProblem[],
    private readonly toml: Table,
    private readonly tomlText: string,
    private readonly file: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  private tomlValue(table: string, key: string): unknown {
    const t = table ? this.toml[table] : this.toml;
    if (t === undefined) return undefined;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) return undefined;
    return (t as Table)[key];
  }

  tableProblem(table: string): void {
    const t = this.toml[table];
    if (t !== undefined && (typeof t !== 'object' || t === null || Array.isArray(t)))
      this.problems.push({
        source: this.file,
        line: lineOfKey(this.tomlText, '', table),
        key: table,
        message: `"${table}" must be a table`,
      });
  }

  private tomlProblem(table: string, key: string, message: string): void {
    this.problems.push({
      source: this.file,
      line: lineOfKey(this.tomlText, table, key),
      key: table ? `${table}.${key}` : key,
      message,
    });
  }

  private envValue(name: string | undefined): string | undefined {
    if (!name) return undefined;
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  string(table: string, key: string, envName?: string): { value: string; from: string } | undefined {
    const e = this.envValue(envName);
    if (e !== undefined) return { value: e, from: 'environment' };
    const t = this.tomlValue(table, key);
    if (t === undefined) return undefined;
    if (typeof t === 'string') return t === '' ? undefined : { value: t, from: this.file };
    this.tomlProblem(table, key, `must be a string, got ${describe(t)}`);
    return undefined;
  }

  integer(table: string, key: string, envName?: string): number | undefined {
    const e = this.envValue(envName);
    if (e !== undefined) {
      if (/^-?\d+$/.test(e.trim())) return Number(e);
      this.problems.push({
        source: 'environment',
        key: envName,
        message: `must be a whole number, got "${e}"`,
      });
    }
    const t = this.tomlValue(table, key);
    if (t === undefined) return undefined;
    if (typeof t === 'number' && Number.isInteger(t)) return t;
    if (typeof t === 'bigint') return Number(t);
    this.tomlProblem(table, key, `must be a whole number, got ${describe(t)}`);
    return undefined;
  }

  boolean(table: string, key: string, envName?: string): boolean | undefined {
    const e = this.envValue(envName);
    if (e !== undefined) {
      const v = parseBool(e);
      if (v !== undefined) return v;
      this.problems.push({
        source: 'environment',
        key: envName,
        message: `must be true or false, got "${e}"`,
      });
    }
    const t = this.tomlValue(table, key);
    if (t === undefined) return undefined;
    if (typeof t === 'boolean') return t;
    this.tomlProblem(table, key, `must be true or false, got ${describe(t)}`);
    return undefined;
  }

  /** cpu is a string in pixels, but `cpu = 2` is a natural thing to write: accept both. */
  stringOrInteger(table: string, key: string, envName?: string): string | undefined {
    const e = this.envValue(envName);
    if (e !== undefined) return e;
    const t = this.tomlValue(table, key);
    if (t === undefined) return undefined;
    if (typeof t === 'string') return t === '' ? undefined : t;
    if (typeof t === 'number' && Number.isInteger(t)) return String(t);
    this.tomlProblem(table, key, `must be a string or a whole number, got ${describe(t)}`);
    return undefined;
  }

  stringArray(table: string, key: string): string[] | undefined {
    const t = this.tomlValue(table, key);
    if (t === undefined) return undefined;
    if (Array.isArray(t) && t.every((x) => typeof x === 'string')) return t as string[];
    this.tomlProblem(table, key, `must be a list of strings, got ${describe(t)}`);
    return undefined;
  }

  check(ok: boolean, table: string, key: string, envName: string | undefined, message: string): boolean {
    if (ok) return true;
    if (this.envValue(envName) !== undefined)
      this.problems.push({ source: 'environment', key: envName, message });
    else this.tomlProblem(table, key, message);
    return false;
  }

  rawTable(table: string): Table | undefined {
    const t = this.toml[table];
    return typeof t === 'object' && t !== null && !Array.isArray(t) ? (t as Table) : undefined;
  }

  problemAt(table: string, key: string, message: string): void {
    this.tomlProblem(table, key, message);
  }
}

function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (['1', 't', 'true'].includes(s)) return true;
  if (['0', 'f', 'false'].includes(s)) return false;
  return undefined;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (v instanceof Date) return 'a date';
  if (typeof v === 'object') return 'a table';
  if (typeof v === 'string') return `"${v}"`;
  return `${typeof v} ${String(v)}`;
}

function readToml(file: string): { data: Table; text: string; problems: ConfigProblem[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { data: {}, text: '', problems: [] }; // no file is fine
    return { data: {}, text: '', problems: [{ source: file, message: `cannot be read: ${firstLine(err)}` }] };
  }
  const { data, problems } = parseTomlLeniently(text, file);
  return { data, text, problems };
}

export function loadConfig(options: LoadOptions = {}): { config: PixelsConfig; problems: ConfigProblem[] } {
  const env = options.env ?? process.env;
  const home = options.home ?? homedir();
  const file = options.configFile ?? configFilePath(env, options.platform ?? process.platform, home);
  const settings = options.settings ?? {};
  const toml = readToml(file);
  const problems = [...toml.problems];
  const r = new FieldReader(problems, toml.data, toml.text, file, env);
  for (const t of ['truenas', 'incus', 'defaults', 'ssh', 'provision', 'network', 'env', 'mcp'])
    r.tableProblem(t);
  // Typos fail loudly: a key nobody knows is reported with its line and the key probably meant.
  for (const u of unknownTomlKeys(toml.data))
    problems.push({
      source: file,
      line: u.table ? lineOfKey(toml.text, u.table, u.name) : lineOfTable(toml.text, u.name),
      key: u.key,
      message: u.message,
    });
  if (settings.section && settings.knownKeys?.length)
    for (const u of unknownSettings(settings.section, settings.knownKeys))
      problems.push({ source: 'settings', key: u.key, message: u.message });

  // --- defaults: settings > env > TOML > built-in
  const defaults: SandboxDefaults = { ...BUILTIN_DEFAULTS, allow: [] };
  const image = r.string('defaults', 'image', 'PIXELS_DEFAULT_IMAGE');
  if (image) defaults.image = image.value;
  const cpu = r.stringOrInteger('defaults', 'cpu', 'PIXELS_DEFAULT_CPU');
  if (cpu !== undefined) {
    const problem = cpuProblem(cpu);
    if (r.check(!problem, 'defaults', 'cpu', 'PIXELS_DEFAULT_CPU', problem ?? '')) defaults.cpu = cpu;
  }
  const memory = r.integer('defaults', 'memory', 'PIXELS_DEFAULT_MEMORY');
  if (memory !== undefined) {
    const problem = memoryProblem(memory);
    if (r.check(!problem, 'defaults', 'memory', 'PIXELS_DEFAULT_MEMORY', problem ?? ''))
      defaults.memoryMiB = memory;
  }
  const egress = r.string('network', 'egress', 'PIXELS_NETWORK_EGRESS');
  if (egress) {
    const ok = (EGRESS_MODES as readonly string[]).includes(egress.value);
    if (
      r.check(
        ok,
        'network',
        'egress',
        'PIXELS_NETWORK_EGRESS',
        `must be one of ${EGRESS_MODES.join(', ')}, got "${egress.value}"`,
      )
    )
      defaults.egress = egress.value as EgressMode;
  }
  const provision = r.boolean('provision', 'enabled', 'PIXELS_PROVISION_ENABLED');
  if (provision !== undefined) defaults.provision = provision;
  // Checked here, not only when a sandbox is made: a bad entry is reported at once and left out (never widened).
  defaults.allow = (r.stringArray('network', 'allow') ?? []).filter((entry) => {
    const problem = egressEntryProblem(entry);
    if (problem) r.problemAt('network', 'allow', `${problem} The entry is ignored.`);
    return !problem;
  });
  const nic = tomlNic(r);
  if (nic) defaults.nic = nic;
  // pixels writes [defaults] dns into a systemd-resolved drop-in; provisioning here has no such step yet.
  const dns = r.stringArray('defaults', 'dns');
  if (dns && dns.length)
    r.problemAt(
      'defaults',
      'dns',
      'is not supported by Pixels for VS Code: sandboxes use the DNS servers their network hands out (DHCP); ' +
        'the value is ignored',
    );
  applySettingsDefaults(defaults, settings.defaults, problems);

  // --- ssh
  const ssh: PixelsConfig['ssh'] = { user: 'pixel', identityFile: join(home, '.ssh', 'id_ed25519') };
  const sshUser = r.string('ssh', 'user', 'PIXELS_SSH_USER');
  if (sshUser) ssh.user = sshUser.value;
  const sshKey = r.string('ssh', 'key', 'PIXELS_SSH_KEY');
  if (sshKey) ssh.identityFile = expandHome(sshKey.value, home);
  if (typeof settings.ssh?.identityFile === 'string' && settings.ssh.identityFile)
    ssh.identityFile = expandHome(settings.ssh.identityFile, home);
  if (typeof settings.ssh?.configFile === 'string' && settings.ssh.configFile)
    ssh.configFile = expandHome(settings.ssh.configFile, home);

  // --- servers from TOML/env, then settings on top
  const apiKeys: PixelsConfig['apiKeys'] = [];
  const fromCli = cliServers(r, file, home, apiKeys);
  const servers = mergeServers(fromCli, settings.servers, problems, home);
  for (const server of servers) if (!server.nic && defaults.nic) server.nic = { ...defaults.nic };

  let refreshIntervalSeconds = DEFAULT_REFRESH_SECONDS;
  if (settings.refreshIntervalSeconds !== undefined) {
    const v = settings.refreshIntervalSeconds;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 10) refreshIntervalSeconds = v;
    else
      problems.push({
        source: 'settings',
        key: 'pixels.refreshIntervalSeconds',
        message: 'must be a whole number of at least 10',
      });
  }

  const bases = parseBases({
    mcp: r.rawTable('mcp'),
    env,
    file,
    home,
    lineOf: (table, key) => lineOfKey(toml.text, table, key),
  });
  problems.push(...bases.problems);

  return {
    config: {
      servers,
      defaults,
      ssh,
      env: environment(r),
      refreshIntervalSeconds,
      apiKeys,
      configFile: file,
      bases: bases.config,
    },
    problems,
  };
}

function applySettingsDefaults(
  defaults: SandboxDefaults,
  s: SettingsInput['defaults'],
  problems: ConfigProblem[],
): void {
  if (!s) return;
  const bad = (key: string, message: string) =>
    problems.push({ source: 'settings', key: `pixels.defaults.${key}`, message });
  if (s.image !== undefined) {
    if (typeof s.image === 'string' && s.image) defaults.image = s.image;
    else bad('image', 'must be a non-empty string');
  }
  if (s.cpu !== undefined) {
    const cpu = typeof s.cpu === 'number' ? String(s.cpu) : s.cpu;
    const problem = typeof cpu === 'string' ? cpuProblem(cpu) : 'must be a string';
    if (!problem) defaults.cpu = cpu as string;
    else bad('cpu', problem);
  }
  if (s.memoryMiB !== undefined) {
    const problem = typeof s.memoryMiB === 'number' ? memoryProblem(s.memoryMiB) : 'must be a number';
    if (!problem) defaults.memoryMiB = s.memoryMiB as number;
    else bad('memoryMiB', problem);
  }
  if (s.egress !== undefined) {
    if ((EGRESS_MODES as readonly unknown[]).includes(s.egress)) defaults.egress = s.egress as EgressMode;
    else bad('egress', `must be one of ${EGRESS_MODES.join(', ')}`);
  }
  if (s.provision !== undefined) {
    if (typeof s.provision === 'boolean') defaults.provision = s.provision;
    else bad('provision', 'must be true or false');
  }
}

export const CLI_TRUENAS_ID = 'pixels-truenas';
export const CLI_INCUS_ID = 'pixels-incus';

function cliServers(
  r: FieldReader,
  file: string,
  home: string,
  apiKeys: PixelsConfig['apiKeys'],
): ServerConfig[] {
  const out: ServerConfig[] = [];
  const host = r.string('truenas', 'host', 'PIXELS_TRUENAS_HOST');
  if (host) {
    const server: ServerConfig = {
      id: CLI_TRUENAS_ID,
      kind: 'truenas',
      label: `${host.value} (pixels config)`,
      source: host.from,
      host: host.value,
      username: r.string('truenas', 'username', 'PIXELS_TRUENAS_USERNAME')?.value ?? 'root',
      secure: true,
    };
    const port = r.integer('truenas', 'port', 'PIXELS_TRUENAS_PORT');
    if (port !== undefined && port !== 0) {
      if (
        r.check(
          port > 0 && port < 65536,
          'truenas',
          'port',
          'PIXELS_TRUENAS_PORT',
          'must be a port number (1-65535)',
        )
      )
        server.port = port;
    }
    // We always verify TLS. Skipping verification is not offered: pin the certificate instead.
    if (r.boolean('truenas', 'insecure_skip_verify', 'PIXELS_TRUENAS_INSECURE') === true)
      r.check(
        false,
        'truenas',
        'insecure_skip_verify',
        'PIXELS_TRUENAS_INSECURE',
        'is not honoured: Pixels for VS Code never turns TLS verification off. A self-signed certificate is ' +
          `accepted only through its pinned SHA-256 fingerprint ("tlsFingerprint" in a pixels.servers entry with id "${CLI_TRUENAS_ID}")`,
      );
    out.push(server);
    const key = r.string('truenas', 'api_key', 'PIXELS_TRUENAS_API_KEY');
    if (key) apiKeys.push({ serverId: CLI_TRUENAS_ID, apiKey: key.value, source: key.from });
  }

  const backend = r.string('', 'backend', 'PIXELS_BACKEND')?.value;
  if (backend !== undefined && backend !== 'incus' && backend !== 'truenas')
    r.check(false, '', 'backend', 'PIXELS_BACKEND', `must be "incus" or "truenas", got "${backend}"`);
  const socket = r.string('incus', 'socket', 'PIXELS_INCUS_SOCKET');
  const remote = r.string('incus', 'remote', 'PIXELS_INCUS_REMOTE');
  const incusTable = r.rawTable('incus');
  // An Incus server only when the user asked for one: pixels defaults to Incus, but we do not invent a server.
  if (backend === 'incus' || socket || remote || (incusTable && Object.keys(incusTable).length > 0)) {
    const server: ServerConfig = {
      id: CLI_INCUS_ID,
      kind: 'incus',
      label: remote ? `${hostOf(remote.value)} (pixels config)` : 'Local Incus (pixels config)',
      source: (remote ?? socket)?.from ?? file,
    };
    if (socket) server.socketPath = expandHome(socket.value, home);
    if (remote) {
      if (
        r.check(
          remote.value.startsWith('https://'),
          'incus',
          'remote',
          'PIXELS_INCUS_REMOTE',
          'must be an https:// URL',
        )
      )
        server.url = remote.value;
    }
    const path = (key: string, envName: string) => {
      const v = r.string('incus', key, envName);
      return v ? expandHome(v.value, home) : undefined;
    };
    server.clientCert = path('client_cert', 'PIXELS_INCUS_CLIENT_CERT');
    server.clientKey = path('client_key', 'PIXELS_INCUS_CLIENT_KEY');
    server.serverCert = path('server_cert', 'PIXELS_INCUS_SERVER_CERT');
    server.project = r.string('incus', 'project', 'PIXELS_INCUS_PROJECT')?.value;
    if (server.url && !server.serverCert)
      r.problemAt(
        'incus',
        'server_cert',
        'is missing: the remote server certificate cannot be verified without it, so the server will be refused until it is set',
      );
    out.push(stripUndefined(server));
  }
  return out;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function stripUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

const SERVER_FIELDS: Record<string, 'string' | 'integer' | 'boolean' | 'object'> = {
  id: 'string',
  kind: 'string',
  label: 'string',
  host: 'string',
  port: 'integer',
  username: 'string',
  secure: 'boolean',
  tlsFingerprint: 'string',
  socketPath: 'string',
  url: 'string',
  clientCert: 'string',
  clientKey: 'string',
  serverCert: 'string',
  project: 'string',
  hostGuard: 'string',
  placement: 'string',
  nic: 'object',
  jumpHost: 'object',
  hostJobCheckpoints: 'boolean',
};

/** Validates `pixels.servers` entries and lays them over the TOML/env servers (same id: field by field). */
function mergeServers(
  fromCli: ServerConfig[],
  raw: unknown,
  problems: ConfigProblem[],
  home: string,
): ServerConfig[] {
  const servers = new Map(fromCli.map((s) => [s.id, s]));
  if (raw === undefined) return [...servers.values()];
  if (!Array.isArray(raw)) {
    problems.push({ source: 'settings', key: 'pixels.servers', message: 'must be a list of servers' });
    return [...servers.values()];
  }
  const seen = new Set<string>();
  raw.forEach((entry, index) => {
    const where = `pixels.servers[${index}]`;
    const bad = (message: string, key = where) => problems.push({ source: 'settings', key, message });
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return bad('must be an object');
    const e = entry as Record<string, unknown>;
    for (const [k, v] of Object.entries(e)) {
      const type = SERVER_FIELDS[k];
      if (!type) {
        const near = closestKey(k, Object.keys(SERVER_FIELDS));
        return bad(
          `has an unknown field "${k}"${near ? `; did you mean "${near}"?` : `; known fields: ${Object.keys(SERVER_FIELDS).join(', ')}`}`,
          `${where}.${k}`,
        );
      }
      if (k === 'jumpHost') {
        const problem = jumpHostProblem(v);
        if (problem)
          return bad(problem.message, `${where}.jumpHost${problem.field ? `.${problem.field}` : ''}`);
        continue;
      }
      const ok =
        type === 'integer'
          ? Number.isInteger(v)
          : type === 'object'
            ? typeof v === 'object' && v !== null && !Array.isArray(v)
            : typeof v === type;
      if (!ok)
        return bad(
          `must be ${type === 'integer' ? 'a whole number' : type === 'object' ? 'an object' : `a ${type}`}`,
          `${where}.${k}`,
        );
    }
    let nic: NicSetting | undefined;
    if (e.nic !== undefined) {
      const parsed = settingsNic(e.nic as Record<string, unknown>);
      if (typeof parsed === 'string') return bad(parsed, `${where}.nic`);
      nic = parsed;
    }
    const id = e.id as string | undefined;
    if (!id || !SERVER_ID.test(id))
      return bad('needs an "id" of letters, digits, ".", "_" or "-"', `${where}.id`);
    if (seen.has(id)) return bad(`repeats the id "${id}"`, `${where}.id`);
    seen.add(id);
    const base = servers.get(id);
    const kind = (e.kind as string | undefined) ?? base?.kind;
    if (kind !== 'truenas' && kind !== 'incus')
      return bad('needs "kind": "truenas" or "incus"', `${where}.kind`);
    if (base && base.kind !== kind)
      return bad(`kind "${kind}" does not match the pixels config's "${base.kind}"`, `${where}.kind`);
    const merged: ServerConfig = { ...(base ?? { id, kind, label: id, source: 'settings' }) };
    for (const [k, v] of Object.entries(e)) (merged as unknown as Record<string, unknown>)[k] = v;
    merged.kind = kind;
    if (nic) merged.nic = nic;
    merged.source = base ? `${base.source} + settings` : 'settings';
    if (!e.label && !base) merged.label = (e.host as string | undefined) ?? id;
    for (const k of ['socketPath', 'clientCert', 'clientKey', 'serverCert'] as const)
      if (merged[k]) merged[k] = expandHome(merged[k], home);
    const problem = serverProblem(merged);
    if (problem) return bad(problem);
    servers.set(id, merged);
  });
  return [...servers.values()];
}

/** What is wrong with a server entry, in one sentence (also used by "Add Server…"). */
export function serverProblem(s: ServerConfig): string | undefined {
  const jump = jumpProblem(s);
  if (jump) return jump;
  if (s.kind === 'truenas') {
    if (!s.host) return `Server "${s.id}" needs a host.`;
    if (s.hostGuard && s.hostGuard !== 'off')
      return `Server "${s.id}": hostGuard is an Incus setting; TrueNAS offers no host-side egress layer.`;
    if (s.placement && s.placement !== 'auto')
      return `Server "${s.id}": placement is an Incus cluster setting; a TrueNAS server has no members.`;
    if (s.port !== undefined && (s.port < 1 || s.port > 65535))
      return `Server "${s.id}" has an invalid port ${s.port}.`;
    if (s.tlsFingerprint && !/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/.test(s.tlsFingerprint))
      return `Server "${s.id}" has a TLS fingerprint that is not a SHA-256 hex digest.`;
    return undefined;
  }
  if (s.hostGuard !== undefined && s.hostGuard !== 'off' && s.hostGuard !== 'network')
    return `Server "${s.id}" has hostGuard "${s.hostGuard}"; use "off" or "network".`;
  if (s.placement !== undefined && !PLACEMENT.test(s.placement))
    return (
      `Server "${s.id}" has placement "${s.placement}"; use "auto" (Incus chooses), "ask", a member name ` +
      'or "@group".'
    );
  if (s.url && !s.url.startsWith('https://')) return `Server "${s.id}" needs an https:// URL.`;
  if (s.url && (!s.clientCert || !s.clientKey))
    return `Server "${s.id}" needs clientCert and clientKey for a remote URL.`;
  return undefined;
}

/** `pixels.servers[].placement`: auto, ask, a cluster member name or `@group` (Incus names). */
const PLACEMENT = /^(auto|ask|@?[A-Za-z0-9][A-Za-z0-9._-]*)$/;

const NIC_TYPES: Record<string, NicSetting['nicType']> = { macvlan: 'MACVLAN', bridged: 'BRIDGED' };

/** What is wrong with a NIC setting, or undefined (`typeKey`/`parentKey` name the fields in messages). */
function nicProblem(nic: NicSetting, typeKey: string, parentKey: string): string | undefined {
  if (nic.nicType === 'MACVLAN' && !nic.parent)
    return `${typeKey} "macvlan" needs ${parentKey}: the host's physical interface, e.g. "enp1s0"`;
  if (nic.nicType === 'BRIDGED' && !nic.parent && !nic.network)
    return `${typeKey} "bridged" needs ${parentKey}: the host bridge, e.g. "br0"`;
  if (!nic.nicType && nic.parent)
    return `${parentKey} "${nic.parent}" needs ${typeKey} ("macvlan" or "bridged"); without it the parent is ignored`;
  return undefined;
}

/** `[defaults] nic_type` / `parent` / `network` from the TOML file (pixels: nic_type is upper-cased). */
function tomlNic(r: FieldReader): NicSetting | undefined {
  const type = r.string('defaults', 'nic_type');
  const parent = r.string('defaults', 'parent')?.value;
  const network = r.string('defaults', 'network')?.value;
  const nic: NicSetting = {};
  if (type) {
    const t = NIC_TYPES[type.value.toLowerCase()];
    if (!t) {
      r.problemAt('defaults', 'nic_type', `must be "macvlan" or "bridged", got "${type.value}"`);
      return undefined;
    }
    nic.nicType = t;
  }
  if (parent) nic.parent = parent;
  if (network) nic.network = network;
  if (!nic.nicType && !nic.parent && !nic.network) return undefined;
  const problem = nicProblem(nic, 'nic_type', 'parent');
  if (problem) {
    r.problemAt('defaults', nic.nicType ? 'nic_type' : 'parent', problem);
    return nic.network ? { network: nic.network } : undefined;
  }
  return nic;
}

/** A `pixels.servers[].nic` object, or the sentence saying what is wrong with it. */
function settingsNic(raw: Record<string, unknown>): NicSetting | string {
  const nic: NicSetting = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k !== 'type' && k !== 'parent' && k !== 'network') return `has an unknown field "${k}"`;
    if (typeof v !== 'string' || v === '') return `"${k}" must be a non-empty string`;
  }
  if (raw.type !== undefined) {
    const t = NIC_TYPES[String(raw.type).toLowerCase()];
    if (!t) return `"type" must be "macvlan" or "bridged", got "${String(raw.type)}"`;
    nic.nicType = t;
  }
  if (raw.parent !== undefined) nic.parent = raw.parent as string;
  if (raw.network !== undefined) nic.network = raw.network as string;
  if (!nic.nicType && !nic.parent && !nic.network) return 'needs "type" and "parent", or "network"';
  return nicProblem(nic, '"type"', '"parent"') ?? nic;
}

function jumpProblem(s: ServerConfig): string | undefined {
  if (!s.jumpHost) return undefined;
  const problem = jumpHostProblem(s.jumpHost);
  if (problem)
    return `Server "${s.id}": jumpHost${problem.field ? `.${problem.field}` : ''} ${problem.message}.`;
  if (s.kind === 'incus' && !s.jumpHost.user)
    return `Server "${s.id}": jumpHost needs a "user" (the SSH user on the Incus host).`;
  if (s.kind === 'incus' && !s.jumpHost.host && !s.url)
    return `Server "${s.id}": jumpHost needs a "host" (a local Incus socket has no host to default to).`;
  return undefined;
}

/** The TOML [env] table, in its three forms. */
function environment(r: FieldReader): EnvironmentConfig {
  const out: EnvironmentConfig = { image: {}, forward: [], session: {} };
  const table = r.rawTable('env');
  if (!table) return out;
  for (const [key, value] of Object.entries(table)) {
    if (typeof value === 'string') {
      out.image[key] = value;
      continue;
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const v = value as Table;
      if (v.forward === true) {
        out.forward.push(key);
        continue;
      }
      if (typeof v.value === 'string') {
        if (v.session_only === true) out.session[key] = v.value;
        else out.image[key] = v.value;
        continue;
      }
    }
    r.problemAt(
      'env',
      key,
      'unsupported value: use "value", { value = "..." }, { forward = true } or { value = "...", session_only = true }',
    );
  }
  out.forward.sort();
  return out;
}
