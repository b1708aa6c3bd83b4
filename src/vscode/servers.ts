// ServerRegistry: settings + pixels TOML + PIXELS_* env -> server configs -> one lazily created Backend per
// server. A backend is disposed when its server is removed or its configuration (or API key) changes.
//
// API key lookup, in order: SecretStorage; a key from the pixels TOML/env for that server (offered for import);
// PIXELS_DEMO_API_KEY, for loopback hosts only (set by `npm run demo` for the simulator, never used for a real
// server address).
import * as vscode from 'vscode';
import type { Backend } from '../core/backend';
import { Emitter } from '../core/disposable';
import { NotAuthenticatedError, NotFoundError, ValidationError } from '../core/errors';
import { registerSecret } from '../core/log';
import {
  loadConfig,
  serverProblem,
  type ConfigProblem,
  type PixelsConfig,
  type ServerConfig,
  type SettingsInput,
  type JumpHostSetting,
} from '../core/config';
import { KeyringUnavailableError, type ApiKeyStore } from './secrets';
import type { Log } from './log';
import { loadIncus, loadTrueNAS } from '../workflows/lazy';

export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Only values the user set explicitly, so that env and TOML can fill in the rest (see src/core/config.ts). */
export function readSettings(): SettingsInput {
  const c = vscode.workspace.getConfiguration('pixels');
  const set = <T>(key: string): T | undefined => c.inspect<T>(key)?.globalValue;
  return {
    servers: set('servers'),
    defaults: {
      image: set('defaults.image'),
      cpu: set('defaults.cpu'),
      memoryMiB: set('defaults.memoryMiB'),
      egress: set('defaults.egress'),
      provision: set('defaults.provision'),
    },
    refreshIntervalSeconds: set('refreshIntervalSeconds'),
    ssh: { identityFile: set('ssh.identityFile'), configFile: set('ssh.configFile') },
    section: Object.fromEntries(Object.entries(c).filter(([, v]) => typeof v !== 'function')),
    knownKeys: contributedKeys(),
  };
}

export const EXTENSION_ID = 'pixels-dev.pixels-vscode';

/** The `pixels.*` settings this extension contributes (from its manifest), without the prefix. */
function contributedKeys(): string[] {
  const manifest = vscode.extensions.getExtension(EXTENSION_ID)?.packageJSON as
    { contributes?: { configuration?: { properties?: Record<string, unknown> } } } | undefined;
  return Object.keys(manifest?.contributes?.configuration?.properties ?? {})
    .filter((k) => k.startsWith('pixels.'))
    .map((k) => k.slice('pixels.'.length));
}

function describeProblem(p: ConfigProblem): string {
  const where = p.line ? `${p.source}:${p.line}` : p.source;
  return `${where}${p.key ? ` (${p.key})` : ''}: ${p.message}`;
}

export class ServerRegistry implements vscode.Disposable {
  private config: PixelsConfig;
  private problems: ConfigProblem[] = [];
  private readonly backends = new Map<string, { fingerprint: string; backend: Promise<Backend> }>();
  private readonly changed = new Emitter<void>();
  private readonly created = new Emitter<Backend>();
  private readonly disposables: vscode.Disposable[] = [];
  private importOffered = false;
  /** Fires when the set of servers or their settings changed. */
  readonly onDidChangeServers = this.changed.event;
  /** Fires when a backend was created (the refresh controller subscribes to its events). */
  readonly onDidCreateBackend = this.created.event;

  constructor(
    private readonly log: Log,
    private readonly keys: ApiKeyStore,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.config = this.load();
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('pixels')) this.reload();
      }),
      keys.onDidChange((serverId) => {
        this.disposeBackend(serverId);
        this.changed.fire();
      }),
    );
  }

  private load(): PixelsConfig {
    const { config, problems } = loadConfig({ settings: readSettings(), env: this.env });
    const before = this.problems.map(describeProblem).join('\n');
    this.problems = problems;
    const now = problems.map(describeProblem).join('\n');
    if (now && now !== before) {
      for (const p of problems) this.log.warn(`configuration: ${describeProblem(p)}`);
      void vscode.window
        .showWarningMessage(
          `Pixels configuration: ${describeProblem(problems[0])}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
          'Show Logs',
        )
        .then((choice) => choice && this.log.show());
    }
    for (const k of config.apiKeys) registerSecret(k.apiKey);
    void vscode.commands.executeCommand('setContext', 'pixels.hasServers', config.servers.length > 0);
    return config;
  }

  reload(): void {
    this.config = this.load();
    const ids = new Set(this.config.servers.map((s) => s.id));
    for (const [id, entry] of this.backends) {
      const server = this.config.servers.find((s) => s.id === id);
      if (!ids.has(id) || !server || entry.fingerprint !== JSON.stringify(server)) this.disposeBackend(id);
    }
    this.changed.fire();
  }

  get settings(): PixelsConfig {
    return this.config;
  }

  /** The configuration problems of the last load, one line each ("file:line (key): message"). */
  problemLines(): string[] {
    return this.problems.map(describeProblem);
  }

  servers(): ServerConfig[] {
    return this.config.servers;
  }

  server(id: string): ServerConfig {
    const s = this.config.servers.find((x) => x.id === id);
    if (!s) throw new NotFoundError(`There is no server "${id}" in the Pixels configuration.`);
    return s;
  }

  /** The backend for a server, created on first use (this is where ws/ssh2 code first loads). */
  backend(serverId: string): Promise<Backend> {
    const server = this.server(serverId);
    const fingerprint = JSON.stringify(server);
    const existing = this.backends.get(serverId);
    if (existing && existing.fingerprint === fingerprint) return existing.backend;
    if (existing) this.disposeBackend(serverId);
    const backend = this.createBackend(server);
    this.backends.set(serverId, { fingerprint, backend });
    backend.then(
      (b) => this.created.fire(b),
      () => this.backends.delete(serverId), // a failed creation is retried on the next call
    );
    return backend;
  }

  private async createBackend(server: ServerConfig): Promise<Backend> {
    if (server.kind === 'truenas') {
      const apiKey = await this.apiKeyFor(server);
      const { createTrueNASBackend } = await loadTrueNAS();
      this.log.info(
        `server "${server.label}": TrueNAS at ${server.host}${server.port ? `:${server.port}` : ''} (${server.source})`,
      );
      return createTrueNASBackend(
        {
          serverId: server.id,
          host: server.host ?? '',
          port: server.port,
          username: server.username ?? 'truenas_admin',
          secure: server.secure,
          tlsFingerprint: server.tlsFingerprint,
          nic: server.nic,
          hostJobCheckpoints: server.hostJobCheckpoints,
        },
        apiKey,
        this.log,
      );
    }
    const { createIncusBackend } = await loadIncus();
    this.log.info(
      `server "${server.label}": Incus at ${server.url ?? server.socketPath ?? 'the local socket'} (${server.source})`,
    );
    return createIncusBackend(
      {
        serverId: server.id,
        socketPath: server.socketPath,
        url: server.url,
        clientCert: server.clientCert,
        clientKey: server.clientKey,
        serverCert: server.serverCert,
        project: server.project,
        hostGuard: server.hostGuard,
        network: server.nic?.network,
      },
      this.log,
    );
  }

  async apiKeyFor(server: ServerConfig): Promise<string> {
    let stored: string | undefined;
    let keyring: KeyringUnavailableError | undefined;
    try {
      stored = await this.keys.get(server.id);
    } catch (err) {
      if (!(err instanceof KeyringUnavailableError)) throw err;
      keyring = err; // a key from the pixels config or the demo can still be used; say so in the log
      this.log.warn(err.message);
    }
    if (stored) return stored;
    const fromCli = this.config.apiKeys.find((k) => k.serverId === server.id);
    if (fromCli) {
      this.offerImport();
      return fromCli.apiKey;
    }
    const demo = this.env.PIXELS_DEMO_API_KEY;
    if (demo && isLoopbackHost(server.host)) {
      registerSecret(demo);
      this.log.info(`server "${server.label}": using PIXELS_DEMO_API_KEY (loopback host only)`);
      return demo;
    }
    if (keyring) throw keyring;
    throw new NotAuthenticatedError(
      `No API key is stored for "${server.label}". Run "Pixels: Add Server…" to enter it.`,
    );
  }

  /** API keys from the pixels TOML/env that are not in SecretStorage yet. */
  async importableKeys(): Promise<PixelsConfig['apiKeys']> {
    const out: PixelsConfig['apiKeys'] = [];
    for (const k of this.config.apiKeys) if (!(await this.keys.get(k.serverId))) out.push(k);
    return out;
  }

  private offerImport(): void {
    void vscode.commands.executeCommand('setContext', 'pixels.importableKeys', true);
    if (this.importOffered) return;
    this.importOffered = true;
    void vscode.window
      .showInformationMessage(
        'Pixels is using an API key from the pixels CLI config. Import it into the OS keyring, so Pixels keeps it even if the file changes?',
        'Import',
      )
      .then((choice) => choice && vscode.commands.executeCommand('pixels.importApiKeys'));
  }

  /** Adds (or replaces) a server in the user settings and stores its key. Settings never hold the key. */
  async addServer(entry: Omit<ServerConfig, 'source'>, apiKey?: string): Promise<void> {
    const problem = serverProblem({ ...entry, source: 'settings' });
    if (problem) throw new ValidationError(problem);
    if (apiKey) await this.keys.store(entry.id, apiKey);
    const c = vscode.workspace.getConfiguration('pixels');
    const current = (c.inspect<Record<string, unknown>[]>('servers')?.globalValue ?? []).filter(
      (s) => s.id !== entry.id,
    );
    const clean = Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined && v !== ''));
    await c.update('servers', [...current, clean], vscode.ConfigurationTarget.Global);
    this.reload();
  }

  /**
   * Pins a TrueNAS certificate (after the person said "Trust"): the settings entry's tlsFingerprint, or, for a
   * server from the pixels CLI config, a settings entry with its id that overrides only that field.
   */
  async pinCertificate(serverId: string, fingerprint: string): Promise<void> {
    const server = this.server(serverId);
    const c = vscode.workspace.getConfiguration('pixels');
    const current = c.inspect<Record<string, unknown>[]>('servers')?.globalValue ?? [];
    const next = current.some((s) => s.id === serverId)
      ? current.map((s) => (s.id === serverId ? { ...s, tlsFingerprint: fingerprint } : s))
      : [...current, { id: serverId, kind: server.kind, tlsFingerprint: fingerprint }];
    await c.update('servers', next, vscode.ConfigurationTarget.Global);
    this.reload();
  }

  /**
   * Sets (or with undefined, removes) a server's jump host in the user settings; a server from the pixels CLI
   * config gets a settings entry with its id that carries only this field (settings win field by field).
   */
  async setJumpHost(serverId: string, jumpHost: JumpHostSetting | undefined): Promise<void> {
    const server = this.server(serverId);
    const problem = serverProblem({ ...server, jumpHost });
    if (problem) throw new ValidationError(problem);
    const c = vscode.workspace.getConfiguration('pixels');
    const current = c.inspect<Record<string, unknown>[]>('servers')?.globalValue ?? [];
    const withJump = (entry: Record<string, unknown>) => {
      const next: Record<string, unknown> = { ...entry };
      if (jumpHost) next.jumpHost = jumpHost;
      else delete next.jumpHost;
      return next;
    };
    const inSettings = current.some((s) => s.id === serverId);
    const servers = inSettings
      ? current.map((s) => (s.id === serverId ? withJump(s) : s))
      : [...current, withJump({ id: serverId, kind: server.kind })];
    await c.update('servers', servers, vscode.ConfigurationTarget.Global);
    this.reload();
  }

  /** Removes a settings server and its key. Servers from the pixels CLI config can only be removed there. */
  async removeServer(serverId: string): Promise<void> {
    const c = vscode.workspace.getConfiguration('pixels');
    const current = c.inspect<Record<string, unknown>[]>('servers')?.globalValue ?? [];
    const server = this.server(serverId);
    const inSettings = current.some((s) => s.id === serverId);
    if (!inSettings)
      throw new ValidationError(
        `"${server.label}" comes from ${server.source}; remove it there (Pixels does not edit the pixels CLI config).`,
      );
    await c.update(
      'servers',
      current.filter((s) => s.id !== serverId),
      vscode.ConfigurationTarget.Global,
    );
    await this.keys.delete(serverId);
    this.disposeBackend(serverId);
    this.reload();
  }

  private disposeBackend(serverId: string): void {
    const entry = this.backends.get(serverId);
    if (!entry) return;
    this.backends.delete(serverId);
    entry.backend.then(
      (b) => b.dispose(),
      () => undefined,
    );
  }

  dispose(): void {
    for (const id of [...this.backends.keys()]) this.disposeBackend(id);
    for (const d of this.disposables) d.dispose();
    this.changed.dispose();
    this.created.dispose();
  }
}
