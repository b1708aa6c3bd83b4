// Persistent sessions as the editor sees them: one SSH call lists a sandbox's sessions (cached briefly, for the
// tree), start/stop run the guest layer's scripts, and Attach opens a terminal on a tmux client whose channel
// closing (terminal closed, window closed) only detaches it.
import * as vscode from 'vscode';
import { UnsupportedError, ValidationError } from '../core/errors';
import type { Sandbox } from '../core/sandbox';
import type { SessionInfo, SessionKind, SessionList } from '../guest/sessions';
import type { SshTarget } from '../ssh/index';
import { loadGuest } from '../workflows/lazy';
import type { Log } from './log';
import type { SshAccess } from '../workflows/sshAccess';
import { SandboxTerminal } from './terminal';

/** How long a listing is good for the tree before the next look asks the sandbox again. */
const FRESH_MS = 15_000;
/** Sandboxes that had sessions seen from this machine: only those are listed without being asked. */
const KNOWN_KEY = 'pixels.sessionSandboxes';

interface Entry {
  list?: SessionList;
  at: number;
  loading?: Promise<SessionList>;
}

export interface StartOptions {
  session: string;
  /** Shell command line; undefined = an interactive login shell. */
  command?: string;
  cwd?: string;
  kind: SessionKind;
  label?: string;
  vars: Record<string, string>;
}

export class SessionService implements vscode.Disposable {
  private readonly entries = new Map<string, Entry>();
  private readonly emitter = new vscode.EventEmitter<void>();
  /** Fires when a sandbox's listing changed (the tree refreshes). */
  readonly onDidChange = this.emitter.event;
  private listings = 0;
  /** Per sandbox with sessions: the wait for its next change (one SSH channel), aborted when no longer needed. */
  private readonly watchers = new Map<string, AbortController>();
  private disposed = false;

  constructor(
    private readonly ssh: SshAccess,
    private readonly log: Log,
    private readonly memento: vscode.Memento,
  ) {}

  private key(serverId: string, name: string): string {
    return `${serverId}/${name}`;
  }

  /** How many listing calls went to sandboxes (tests check that it is one per sandbox, not one per session). */
  get listCalls(): number {
    return this.listings;
  }

  private known(serverId: string, name: string): boolean {
    return (this.memento.get<string[]>(KNOWN_KEY) ?? []).includes(this.key(serverId, name));
  }

  private async remember(serverId: string, name: string, has: boolean): Promise<void> {
    const all = new Set(this.memento.get<string[]>(KNOWN_KEY) ?? []);
    const key = this.key(serverId, name);
    if (has === all.has(key)) return;
    if (has) all.add(key);
    else all.delete(key);
    await this.memento.update(KNOWN_KEY, [...all]);
  }

  /**
   * What the tree shows under a running sandbox: the last listing, and a fresh one asked for in the background
   * when it is old (only for sandboxes where sessions were seen, so a tree never opens SSH to every sandbox).
   */
  peek(serverId: string, sandbox: Sandbox): SessionInfo[] | undefined {
    if (sandbox.status !== 'running') return undefined;
    const entry = this.entries.get(this.key(serverId, sandbox.name));
    const stale = !entry || Date.now() - entry.at > FRESH_MS;
    if (stale && !entry?.loading && this.known(serverId, sandbox.name))
      void this.list(serverId, sandbox).catch((err: unknown) =>
        this.log.warn(`sessions of ${sandbox.name}: ${err instanceof Error ? err.message : String(err)}`),
      );
    return entry?.list?.sessions;
  }

  /** Lists a running sandbox's sessions with one SSH command; the tree refreshes when the answer differs. */
  async list(serverId: string, sandbox: Sandbox, target?: SshTarget): Promise<SessionList> {
    const key = this.key(serverId, sandbox.name);
    const entry = this.entries.get(key) ?? { at: 0 };
    if (entry.loading) return entry.loading;
    this.entries.set(key, entry);
    entry.loading = (async () => {
      const guest = await loadGuest();
      const to = target ?? (await this.ssh.target(serverId, sandbox));
      this.listings++;
      const r = await (await this.ssh.pool()).exec(to, guest.LIST_SESSIONS_SCRIPT, { timeoutMs: 20_000 });
      if (r.exitCode !== 0)
        throw new ValidationError(
          `Could not list the sessions of "${sandbox.name}": ${r.stderr.toString('utf8').trim() || `exit code ${r.exitCode}`}`,
        );
      const list = guest.parseSessionList(r.stdout.toString('utf8'));
      const before = JSON.stringify(entry.list);
      entry.list = list;
      entry.at = Date.now();
      await this.remember(serverId, sandbox.name, list.sessions.length > 0);
      if (list.sessions.length > 0) this.watch(serverId, sandbox, to);
      else this.unwatch(key);
      if (JSON.stringify(list) !== before) this.emitter.fire();
      return list;
    })();
    try {
      return await entry.loading;
    } catch (err) {
      // A sandbox that cannot be asked now is asked again only once the listing would be stale anyway.
      entry.at = Date.now();
      throw err;
    } finally {
      entry.loading = undefined;
    }
  }

  /**
   * While a sandbox has sessions, waits inside it for the next change (a program exiting, a session started or
   * stopped, a terminal attached or detached in any window) and lists again, so the tree follows without polling.
   * Ends when the sandbox has no sessions any more or cannot be reached (the next listing starts it again).
   */
  private watch(serverId: string, sandbox: Sandbox, target: SshTarget): void {
    const key = this.key(serverId, sandbox.name);
    if (this.disposed || this.watchers.has(key)) return;
    const abort = new AbortController();
    this.watchers.set(key, abort);
    void (async () => {
      const guest = await loadGuest();
      const pool = await this.ssh.pool();
      for (;;) {
        const began = Date.now();
        const r = await pool.exec(target, guest.WATCH_SESSIONS_COMMAND, {
          signal: abort.signal,
          timeoutMs: (guest.WATCH_SECONDS + 30) * 1000,
        });
        if (abort.signal.aborted) return;
        const list = await this.list(serverId, sandbox, target);
        // A wait that returns at once with an error (no tmux server, a tmux without wait-for) would spin.
        if (
          list.sessions.length === 0 ||
          (r.exitCode !== 0 && r.exitCode !== 124 && Date.now() - began < 2000)
        )
          return;
      }
    })()
      .catch((err: unknown) => {
        if (!abort.signal.aborted)
          this.log.debug(
            `sessions of ${sandbox.name}: stopped watching (${err instanceof Error ? err.message : String(err)})`,
          );
      })
      .finally(() => {
        if (this.watchers.get(key) === abort) this.watchers.delete(key);
      });
  }

  private unwatch(key: string): void {
    this.watchers.get(key)?.abort();
    this.watchers.delete(key);
  }

  /** Installs tmux as root (apt, the sandbox's own sources or mirror); the output goes to the Pixels log. */
  async installTmux(rootTarget: SshTarget, name: string): Promise<void> {
    const guest = await loadGuest();
    this.log.info(`${name}: installing tmux for persistent sessions`);
    const r = await (
      await this.ssh.pool()
    ).exec(rootTarget, guest.INSTALL_TMUX_SCRIPT, {
      timeoutMs: 300_000,
      onStdout: (c: Buffer) => this.log.append(c.toString('utf8')),
      onStderr: (c: Buffer) => this.log.append(c.toString('utf8')),
    });
    if (r.exitCode !== 0)
      throw new UnsupportedError(
        `Could not install tmux in "${name}" (exit code ${r.exitCode}): ${r.stderr.toString('utf8').trim().split('\n').pop() ?? ''}. Sessions need tmux; install it in the sandbox (apt-get install tmux) or allow its package mirror.`,
      );
  }

  /** Starts a detached session; its variables go on stdin into a 0600 file the session reads and deletes. */
  async start(serverId: string, sandbox: Sandbox, target: SshTarget, options: StartOptions): Promise<void> {
    const guest = await loadGuest();
    const script = guest.startSessionScript({
      name: options.session,
      command: options.command,
      cwd: options.cwd,
      kind: options.kind,
      label: options.label,
    });
    const r = await (
      await this.ssh.pool()
    ).exec(target, script, {
      stdin: guest.envFileContent(options.vars),
      timeoutMs: 30_000,
    });
    const why = r.stderr.toString('utf8').trim();
    if (r.exitCode === guest.EXIT_NO_TMUX)
      throw new UnsupportedError(`tmux is not installed in "${sandbox.name}".`);
    if (r.exitCode !== 0)
      throw new ValidationError(`Could not start session "${options.session}" in "${sandbox.name}": ${why}`);
    const vars = Object.keys(options.vars).sort();
    this.log.info(
      `${sandbox.name}: started session ${options.session} (${options.label ?? options.command ?? 'login shell'})${vars.length ? `; session variables ${vars.join(', ')}` : ''}`,
    );
    await this.remember(serverId, sandbox.name, true);
    await this.list(serverId, sandbox, target).catch(() => undefined);
  }

  async stop(serverId: string, sandbox: Sandbox, target: SshTarget, session: string): Promise<void> {
    const guest = await loadGuest();
    const r = await (
      await this.ssh.pool()
    ).exec(target, guest.stopSessionCommand(session), {
      timeoutMs: 20_000,
    });
    if (r.exitCode !== 0)
      throw new ValidationError(
        `Could not stop session "${session}" in "${sandbox.name}": ${r.stderr.toString('utf8').trim()}`,
      );
    this.log.info(`${sandbox.name}: stopped session ${session}`);
    await this.list(serverId, sandbox, target).catch(() => undefined);
  }

  /** A terminal attached to the session; closing it detaches (the session goes on). */
  async attach(
    serverId: string,
    sandbox: Sandbox,
    target: SshTarget,
    session: string,
  ): Promise<vscode.Terminal> {
    const guest = await loadGuest();
    const terminal = vscode.window.createTerminal({
      name: `Pixels: ${sandbox.name} · ${session}`,
      pty: new SandboxTerminal(await this.ssh.pool(), target, this.log, guest.attachSessionCommand(session)),
      iconPath: new vscode.ThemeIcon('terminal-tmux'),
    });
    terminal.show();
    this.log.info(`${sandbox.name}: attached to session ${session}`);
    // The attach count in the tree follows.
    setTimeout(() => void this.list(serverId, sandbox, target).catch(() => undefined), 1500);
    return terminal;
  }

  /** The next look lists again (all sandboxes, or a server's). */
  invalidate(serverId?: string): void {
    for (const [key, entry] of this.entries) if (!serverId || key.startsWith(`${serverId}/`)) entry.at = 0;
  }

  /** A destroyed sandbox: nothing to list any more. */
  async forget(serverId: string, name: string): Promise<void> {
    this.entries.delete(this.key(serverId, name));
    this.unwatch(this.key(serverId, name));
    await this.remember(serverId, name, false);
  }

  dispose(): void {
    this.disposed = true;
    for (const key of [...this.watchers.keys()]) this.unwatch(key);
    this.emitter.dispose();
  }
}
