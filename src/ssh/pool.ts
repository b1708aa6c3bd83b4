// One warm ssh2 connection per target, shared by every exec and shell to it. Connections open on first use,
// close after an idle period, and are re-opened by the next call after a drop (a call in flight during the
// drop fails with ConnectionError; a call that could not even open its channel is retried once). Targets behind
// a jump host share one connection to it (per jump host, user and key), kept while any of them is open and for
// the idle period after.
import { createHash } from 'node:crypto';
import type { Client, ClientChannel } from 'ssh2';
import { CancelledError, ConnectionError } from '../core/errors';
import type { Disposable } from '../core/disposable';
import { silentLogger, type Logger } from '../core/log';
import {
  connect,
  connectJumpHost,
  targetLabel,
  type ConnectOptions,
  type JumpHost,
  type SshTarget,
} from './connect';
import { commandString, startCommand, type ExecOptions, type SshExecResult } from './exec';
import { parsePublicKey } from './keys';
import { ShellSession, type ShellOptions } from './shell';

export interface PoolOptions extends Omit<ConnectOptions, 'signal'> {
  /** Close a connection after it had no open channel for this long (default 5 min). */
  idleTimeoutMs?: number;
  /** OpenSSH allows 10 sessions per connection (MaxSessions); more calls wait for a free one. Default 8. */
  maxChannelsPerConnection?: number;
  log?: Logger;
}

/** Identity of a connection: same host, port, user, credentials, pinned key and jump host share one. */
export function poolKey(target: SshTarget | JumpHost): string {
  const credential =
    target.privateKey !== undefined
      ? 'key:' + createHash('sha256').update(target.privateKey).digest('hex')
      : target.identityFile
        ? `file:${target.identityFile}`
        : `agent:${target.agent ?? ''}`;
  const hostKey = parsePublicKey(target.hostKey).blob.toString('base64');
  const jump = 'jump' in target && target.jump ? poolKey(target.jump) : null;
  return JSON.stringify([target.username, target.host, target.port ?? 22, credential, hostKey, jump]);
}

/** A shared connection to a jump host: open while a target uses it, closed after an idle period. */
class JumpConnection {
  users = 0;
  closed = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: Client,
    private readonly idleTimeoutMs: number,
    onClose: () => void,
  ) {
    client.once('close', () => {
      this.closed = true;
      clearTimeout(this.idleTimer);
      onClose();
    });
  }

  use(): void {
    this.users++;
    clearTimeout(this.idleTimer);
  }

  unuse(): void {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close(), this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  close(): void {
    if (!this.closed) endConnection(this.client);
  }
}

class PooledConnection {
  active = 0;
  closed = false;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: Client,
    readonly label: string,
    private readonly maxChannels: number,
    private readonly idleTimeoutMs: number,
    onClose: () => void,
  ) {
    client.once('close', () => {
      this.closed = true;
      clearTimeout(this.idleTimer);
      for (const waiter of this.waiters.splice(0)) {
        waiter.reject(new ConnectionError(`The connection to ${label} was closed.`));
      }
      onClose();
    });
    this.armIdleTimer();
  }

  async acquire(): Promise<void> {
    if (this.closed) throw new ConnectionError(`The connection to ${this.label} was closed.`);
    clearTimeout(this.idleTimer);
    if (this.active < this.maxChannels) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) return next.resolve(); // the slot passes on; `active` stays the same
    this.active--;
    if (this.active === 0) this.armIdleTimer();
  }

  close(): void {
    if (!this.closed) endConnection(this.client);
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.close(), this.idleTimeoutMs);
    this.idleTimer.unref();
  }
}

export class SshPool implements Disposable {
  private readonly connections = new Map<string, Promise<PooledConnection>>();
  private readonly jumps = new Map<string, Promise<JumpConnection>>();
  private readonly log: Logger;
  private disposed = false;

  constructor(private readonly options: PoolOptions = {}) {
    this.log = options.log ?? silentLogger;
  }

  /** Number of open (or opening) connections to targets (jump host connections not counted). */
  get size(): number {
    return this.connections.size;
  }

  /** Number of open (or opening) connections to jump hosts. */
  get jumpHostConnections(): number {
    return this.jumps.size;
  }

  /** Runs one command (argv is quoted; a string is sent as is) and waits for its exit. */
  async exec(
    target: SshTarget,
    command: string | readonly string[],
    options: ExecOptions = {},
  ): Promise<SshExecResult> {
    const line = commandString(command, options.loginShell);
    const label = targetLabel(target);
    // Cancelled before it started: it must not run at all.
    if (options.signal?.aborted) throw new CancelledError('The command was cancelled.');
    const { connection, channel: running } = await this.withChannel(target, (connection) =>
      startCommand(connection.client, line, label, options, () => connection.closed),
    );
    try {
      return await running.result;
    } finally {
      connection.release();
    }
  }

  /** Opens an interactive login shell with a pty. */
  async shell(target: SshTarget, options: ShellOptions): Promise<ShellSession> {
    const label = targetLabel(target);
    const { channel: session } = await this.withChannel(
      target,
      (connection) =>
        new Promise<ShellSession>((resolve, reject) => {
          const pty = { term: options.term ?? 'xterm-256color', cols: options.cols, rows: options.rows };
          const opened = (err: Error | undefined, channel: ClientChannel) => {
            if (err)
              reject(new ConnectionError(`Cannot open a shell on ${label}: ${err.message}`, { cause: err }));
            // Listeners go on in the callback itself: a shell that exits at once must still report it.
            else resolve(new ShellSession(channel, () => connection.release()));
          };
          if (options.command) connection.client.exec(options.command, { pty }, opened);
          else connection.client.shell(pty, opened);
        }),
    );
    return session;
  }

  /** Opens (or reuses) the connection without running anything: proves the host key and the login. */
  async connect(target: SshTarget): Promise<void> {
    const connection = await this.connection(target);
    // Touching the connection counts as use: restart its idle timer.
    await connection.acquire();
    connection.release();
  }

  /** Closes the connection to one target (e.g. its sandbox was stopped or destroyed). */
  async close(target: SshTarget): Promise<void> {
    const pending = this.connections.get(poolKey(target));
    if (!pending) return;
    this.connections.delete(poolKey(target));
    (await pending.catch(() => undefined))?.close();
  }

  /** Closes every connection to this address, whatever the user or key (its sandbox was stopped or destroyed). */
  async closeHost(host: string): Promise<void> {
    const gone = [...this.connections].filter(([key]) => hostOfKey(key) === host);
    for (const [key] of gone) this.connections.delete(key);
    for (const [, pending] of gone) (await pending.catch(() => undefined))?.close();
  }

  dispose(): void {
    this.disposed = true;
    for (const pending of [...this.connections.values(), ...this.jumps.values()])
      pending.then(
        (c) => c.close(),
        () => {},
      );
    this.connections.clear();
    this.jumps.clear();
  }

  private async withChannel<T>(
    target: SshTarget,
    open: (connection: PooledConnection) => Promise<T>,
  ): Promise<{ connection: PooledConnection; channel: T }> {
    let reconnected = false;
    for (let refused = 0; ;) {
      const connection = await this.connection(target);
      await connection.acquire();
      const othersBusy = connection.active > 1;
      try {
        return { connection, channel: await open(connection) };
      } catch (err) {
        connection.release();
        // The connection died before the channel opened: nothing ran, so one fresh attempt is safe.
        if (!reconnected && (connection.closed || !isWritable(connection.client))) {
          reconnected = true;
          this.forget(target, connection);
          connection.close();
          continue;
        }
        // sshd frees a finished session only after it has read the whole batch of packets, so a burst of
        // commands can briefly find all its MaxSessions taken. Nothing ran: wait a moment and try again.
        if (othersBusy && isChannelRefusal(err) && refused < 40) {
          refused++;
          await new Promise((resolve) => setTimeout(resolve, Math.min(5 * refused, 50)));
          continue;
        }
        throw err;
      }
    }
  }

  private forget(target: SshTarget, connection: PooledConnection): void {
    const key = poolKey(target);
    const current = this.connections.get(key);
    current?.then(
      (c) => {
        if (c === connection && this.connections.get(key) === current) this.connections.delete(key);
      },
      () => {},
    );
  }

  /** A new connection to the target: direct, or over the shared connection to its jump host. */
  private async open(target: SshTarget): Promise<Client> {
    if (!target.jump) return connect(target, this.options);
    for (let attempt = 0; ; attempt++) {
      const jump = await this.jump(target.jump);
      jump.use();
      try {
        const client = await connect(target, this.options, jump.client);
        client.once('close', () => jump.unuse());
        return client;
      } catch (err) {
        jump.unuse();
        // The shared jump connection died under us (e.g. the NAS rebooted): one fresh one.
        if (attempt === 0 && (jump.closed || !isWritable(jump.client))) {
          jump.close();
          continue;
        }
        throw err;
      }
    }
  }

  private jump(host: JumpHost): Promise<JumpConnection> {
    if (this.disposed) return Promise.reject(new ConnectionError('The SSH connection pool was shut down.'));
    const key = poolKey(host);
    const existing = this.jumps.get(key);
    if (existing) {
      return existing.then((j) => {
        if (!j.closed && isWritable(j.client)) return j;
        if (this.jumps.get(key) === existing) this.jumps.delete(key);
        return this.jump(host);
      });
    }
    const pending = connectJumpHost(host, this.options).then(
      (client) => {
        this.log.debug(`ssh: connected to jump host ${host.host}`);
        const jump = new JumpConnection(client, this.options.idleTimeoutMs ?? 5 * 60_000, () => {
          this.log.debug(`ssh: connection to jump host ${host.host} closed`);
          if (this.jumps.get(key) === pending) this.jumps.delete(key);
        });
        if (this.disposed) jump.close();
        return jump;
      },
      (err: unknown) => {
        if (this.jumps.get(key) === pending) this.jumps.delete(key);
        throw err;
      },
    );
    this.jumps.set(key, pending);
    return pending;
  }

  private connection(target: SshTarget): Promise<PooledConnection> {
    if (this.disposed) return Promise.reject(new ConnectionError('The SSH connection pool was shut down.'));
    const key = poolKey(target);
    const existing = this.connections.get(key);
    if (existing) {
      return existing.then((c) => {
        if (!c.closed) return c;
        if (this.connections.get(key) === existing) this.connections.delete(key);
        return this.connection(target);
      });
    }
    const label = targetLabel(target);
    const pending = this.open(target).then(
      (client) => {
        this.log.debug(`ssh: connected to ${label}`);
        const connection = new PooledConnection(
          client,
          label,
          this.options.maxChannelsPerConnection ?? 8,
          this.options.idleTimeoutMs ?? 5 * 60_000,
          () => {
            this.log.debug(`ssh: connection to ${label} closed`);
            if (this.connections.get(key) === pending) this.connections.delete(key);
          },
        );
        if (this.disposed) connection.close();
        return connection;
      },
      (err: unknown) => {
        if (this.connections.get(key) === pending) this.connections.delete(key);
        throw err;
      },
    );
    this.connections.set(key, pending);
    return pending;
  }
}

/** The server refused to open a channel (e.g. OpenSSH "no more sessions"), as opposed to a dead connection. */
function isChannelRefusal(err: unknown): boolean {
  const cause = err instanceof Error ? (err.cause as { reason?: unknown } | undefined) : undefined;
  return typeof cause?.reason === 'number';
}

function hostOfKey(key: string): unknown {
  return (JSON.parse(key) as unknown[])[1];
}

/**
 * Ends a connection politely, then tears it down: a peer that is gone (its sandbox was stopped or destroyed)
 * never answers the disconnect, and the half-closed socket would otherwise stay open (and keep the process
 * alive) until TCP gives up, many minutes later.
 */
function endConnection(client: Client): void {
  client.end();
  // ssh2's destroy() does nothing once end() made the socket unwritable: destroy the socket itself.
  const sock = (client as unknown as { _sock?: { destroy(): void } })._sock;
  setTimeout(() => sock?.destroy(), 2_000).unref();
}

/** ssh2 keeps its socket private; a destroyed socket means the connection is gone even before 'close'. */
function isWritable(client: Client): boolean {
  const sock = (client as unknown as { _sock?: { writable?: boolean } })._sock;
  return sock?.writable !== false;
}
