// The TrueNAS JSON-RPC client: one connection per server, shared by every call; login, job subscription,
// reconnect with backoff and re-login; safe retries only; jobs with progress, cancel and re-attach.
import { CancelledError, ConnectionError, PixelsError, ServerError, TimeoutError } from '../../core/errors';
import type { ReplyCheck } from '../../core/reply-shape';
import { rowsWith, text } from '../../core/reply-shape';
import type { Logger } from '../../core/log';
import { registerSecret, silentLogger } from '../../core/log';
import type { ProgressReport } from '../../core/sandbox';
import { checkLoginResult, loginParams } from './auth';
import { Notification, RpcConnection } from './connection';
import {
  ConnectionDroppedError,
  isBusyError,
  isNotAuthenticated,
  mapRpcError,
  RPC_TOO_MANY_CALLS,
  RpcCallError,
} from './errors';
import { canonical, JobRecord, JobTracker } from './jobs';
import { normalizeFingerprint } from '../../core/certificate';
import { assertTransportAllowed } from './tls';
import { parseVersion, TrueNASVersion } from './version';

export interface ClientOptions {
  host: string;
  port?: number;
  /** wss:// (default true). */
  secure?: boolean;
  tlsFingerprint?: string;
  username: string;
  callTimeoutMs?: number;
  connectTimeoutMs?: number;
  pingIntervalMs?: number;
  /** Attempts for a safe retry (busy server, dropped read); default 5. */
  retryAttempts?: number;
  /** First retry/reconnect delay; doubles each time (default 200 ms, reconnect capped at 30 s). */
  backoffBaseMs?: number;
  /** How long pending jobs wait for the server to come back before they fail (default 5 min). */
  reconnectDeadlineMs?: number;
}

export interface CallOptions {
  /** What the user is doing, for error messages ("Creating sandbox \"a\""). */
  context?: string;
  /** A read: may be retried after a drop or a busy answer. Default: guessed from the method name. */
  idempotent?: boolean;
  timeoutMs?: number;
  /** The shape the caller reads; a reply of another shape is a ServerError naming the method. */
  expect?: ReplyCheck;
}

export interface JobOptions {
  context: string;
  onProgress?: (p: ProgressReport) => void;
  signal?: AbortSignal;
}

export interface CollectionUpdate {
  msg: 'added' | 'changed' | 'removed' | string;
  collection: string;
  id?: unknown;
  fields?: Record<string, unknown>;
}

/** Reads that may run twice without harm. */
export function isReadMethod(method: string): boolean {
  return (
    /\.(query|get_instance|config|choices)$/.test(method) ||
    /_choices$/.test(method) ||
    ['system.version', 'system.info', 'core.get_jobs', 'core.ping', 'auth.me', 'core.subscribe'].includes(
      method,
    )
  );
}

const JOB_ROWS = rowsWith({ id: 'number', state: 'string', method: 'string?', arguments: 'array?' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (ms: number) => Math.round(ms * (0.75 + Math.random() * 0.5));

/** Key-order independent JSON, to recognise our own job among the server's jobs. */
export class TrueNASClient {
  readonly host: string;
  private readonly secure: boolean;
  private readonly callTimeoutMs: number;
  private readonly retryAttempts: number;
  private readonly backoffBaseMs: number;
  private conn?: RpcConnection;
  private connecting?: Promise<RpcConnection>;
  private relogging?: Promise<void>;
  private disposed = false;
  private readonly jobs = new JobTracker();
  private readonly subscriptions = new Set<string>(['core.get_jobs']);
  private readonly listeners = new Set<(u: CollectionUpdate) => void>();
  private readonly connectionListeners = new Set<(up: boolean) => void>();
  private readonly startedJobIds = new Set<number>();
  /** Highest job id known to exist; a job we lost the reply of must have a higher one (ids only grow). */
  private maxJobIdSeen = 0;
  /** Counts middlewared restarts seen (job ids went back): job ids from before one mean nothing after it. */
  private serverEpoch = 0;
  private versionPromise?: Promise<TrueNASVersion>;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempt = 0;
  private disconnectedSince?: number;

  constructor(
    private readonly options: ClientOptions,
    private readonly apiKey: string,
    private readonly log: Logger = silentLogger,
  ) {
    registerSecret(apiKey);
    this.host = options.host;
    this.secure = options.secure ?? true;
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
    this.retryAttempts = options.retryAttempts ?? 5;
    this.backoffBaseMs = options.backoffBaseMs ?? 200;
    if (options.tlsFingerprint !== undefined) normalizeFingerprint(options.tlsFingerprint);
  }

  get url(): string {
    const scheme = this.secure ? 'wss' : 'ws';
    const host = this.host.includes(':') && !this.host.startsWith('[') ? `[${this.host}]` : this.host;
    const port = this.options.port ? `:${this.options.port}` : '';
    return `${scheme}://${host}${port}/api/current`;
  }

  get connected(): boolean {
    return this.conn?.isOpen ?? false;
  }

  /** Collection updates (instances, snapshots, jobs) from the server. */
  onUpdate(listener: (u: CollectionUpdate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onConnectionChange(listener: (up: boolean) => void): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  /** Subscribes to an event (kept across reconnects). */
  async subscribe(eventName: string): Promise<void> {
    if (this.subscriptions.has(eventName)) return;
    this.subscriptions.add(eventName);
    if (this.conn?.isOpen) await this.conn.call('core.subscribe', [eventName], this.callTimeoutMs);
  }

  /** The server version (cached per client). */
  version(): Promise<TrueNASVersion> {
    if (!this.versionPromise) {
      this.versionPromise = this.call<string>('system.version', [], {
        context: 'Reading the TrueNAS version',
        expect: text,
      }).then((raw) => parseVersion(String(raw)));
      this.versionPromise.catch(() => (this.versionPromise = undefined));
    }
    return this.versionPromise;
  }

  /** Connects and logs in if needed. */
  async connect(): Promise<void> {
    await this.connection();
  }

  /** A plain (non-job) call with safe retries; errors are typed PixelsErrors. */
  async call<T = unknown>(method: string, params: unknown[] = [], opts: CallOptions = {}): Promise<T> {
    const idempotent = opts.idempotent ?? isReadMethod(method);
    const context = opts.context ?? `Calling ${method}`;
    const timeout = opts.timeoutMs ?? this.callTimeoutMs;
    let attempt = 0;
    let reauthenticated = false;
    for (;;) {
      let conn: RpcConnection;
      try {
        conn = await this.connection();
      } catch (err) {
        // While retrying after a drop the server may still be coming back; a first failure, a security or
        // an authentication error is final.
        const transient = err instanceof ConnectionError && !(err instanceof ConnectionDroppedError);
        if (attempt > 0 && transient && attempt + 1 < this.retryAttempts) {
          await sleep(jitter(this.backoffBaseMs * 2 ** attempt++));
          continue;
        }
        throw err;
      }
      let reply: unknown;
      try {
        reply = await conn.call(method, params, timeout);
      } catch (err) {
        if (err instanceof RpcCallError) {
          // The server refused before running the method: safe to repeat for any method.
          if (isNotAuthenticated(err) && !reauthenticated) {
            reauthenticated = true;
            this.log.info(`truenas: session on ${this.host} is no longer authenticated; logging in again`);
            await this.relogin(conn);
            continue;
          }
          const retryable = err.code === RPC_TOO_MANY_CALLS || (idempotent && isBusyError(err));
          if (retryable && attempt + 1 < this.retryAttempts) {
            await sleep(jitter(this.backoffBaseMs * 2 ** attempt++));
            continue;
          }
          throw mapRpcError(err, context);
        }
        if (err instanceof ConnectionDroppedError) {
          if ((idempotent || !err.sent) && attempt + 1 < this.retryAttempts) {
            await sleep(jitter(this.backoffBaseMs * 2 ** attempt++));
            continue;
          }
          if (err.sent) {
            // A read that kept failing changed nothing; a write may have happened.
            throw new ConnectionDroppedError(
              `Lost the connection to ${this.host} during ${lowerFirst(context)} (${method})` +
                (idempotent ? '.' : '; the outcome is unknown.'),
              true,
              { cause: err },
            );
          }
          throw err;
        }
        if (err instanceof TimeoutError && !idempotent) {
          throw new TimeoutError(`${err.message} The outcome of ${lowerFirst(context)} is unknown.`, {
            cause: err,
          });
        }
        throw err;
      }
      const problem = opts.expect?.(reply);
      if (problem)
        throw new ServerError(`${this.host} answered ${method} with a reply Pixels cannot use: ${problem}.`);
      return reply as T;
    }
  }

  /**
   * Starts a job and waits for its end. Never re-sends the job blindly: if the connection drops before the id
   * arrives, the client reconnects and looks for our job among the server's jobs (same method and arguments);
   * only if the server provably never got it is the call sent again.
   */
  async callJob<T = unknown>(method: string, params: unknown[], opts: JobOptions): Promise<T> {
    if (opts.signal?.aborted) throw new CancelledError(`${opts.context} was cancelled.`);
    await this.connection();
    const floor = this.maxJobIdSeen;
    const epoch = this.serverEpoch;
    let id: unknown;
    let reattached: JobRecord | undefined;
    try {
      id = await this.call(method, params, { context: opts.context, idempotent: false });
    } catch (err) {
      if (!(err instanceof ConnectionDroppedError && err.sent) && !(err instanceof TimeoutError)) throw err;
      // After a restart the job list is new: that our job is not in it proves nothing.
      const found =
        this.serverEpoch === epoch
          ? await this.findOurJob(method, params, floor).catch(() => undefined)
          : undefined;
      if (found === undefined) throw err;
      if (found === null) {
        this.log.info(`truenas: ${method} never reached ${this.host}; sending it again`);
        id = await this.call(method, params, { context: opts.context, idempotent: false });
      } else {
        this.log.info(`truenas: re-attached to job ${found.id} (${method}) after a lost reply`);
        id = found.id;
        reattached = found;
      }
    }
    if (typeof id !== 'number') return id as T; // not a job on this server version: the result itself
    this.startedJobIds.add(id);
    this.noteJobId(id);
    const done = this.jobs.wait(id, opts.context, opts.onProgress, { method, arguments: params });
    if (reattached) this.jobs.update(reattached); // it may have ended while we were away
    const jobId = id;
    const onAbort = () => {
      this.jobs.markAborted(jobId);
      this.call('core.job_abort', [jobId], {
        context: `Cancelling ${lowerFirst(opts.context)}`,
        idempotent: true,
      })
        .then(() => this.pollJobs().catch(() => undefined))
        .catch((e: unknown) => this.log.warn(`truenas: could not abort job ${jobId}: ${String(e)}`));
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return (await done) as T;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  dispose(): void {
    this.disposed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.jobs.failAll(new ConnectionError(`The connection to ${this.host} was closed.`));
    this.conn?.close();
    this.conn = undefined;
    this.listeners.clear();
    this.connectionListeners.clear();
  }

  // --- connection management -------------------------------------------------------------------------

  /** The live, logged-in connection; connects (once, shared by concurrent callers) when there is none. */
  private async connection(): Promise<RpcConnection> {
    if (this.disposed) throw new ConnectionError(`The connection to ${this.host} was closed.`);
    if (this.conn?.isOpen) return this.conn;
    if (!this.connecting) {
      this.connecting = this.openAndLogin().finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async openAndLogin(): Promise<RpcConnection> {
    assertTransportAllowed(this.host, this.secure); // before any socket is opened
    const conn = await RpcConnection.open({
      url: this.url,
      host: this.host,
      tlsFingerprint: this.options.tlsFingerprint,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 15_000,
      pingIntervalMs: this.options.pingIntervalMs ?? 30_000,
      log: this.log,
    });
    conn.onNotification((n) => this.onNotification(n));
    try {
      await this.login(conn);
      for (const name of this.subscriptions) await conn.call('core.subscribe', [name], this.callTimeoutMs);
      await this.learnNewestJobId(conn);
    } catch (err) {
      conn.close();
      if (err instanceof RpcCallError) throw mapRpcError(err, `Logging in to ${this.host}`);
      throw err;
    }
    if (this.disposed) {
      conn.close();
      throw new ConnectionError(`The connection to ${this.host} was closed.`);
    }
    conn.onClose((reason) => this.onDropped(conn, reason));
    this.conn = conn;
    this.reconnectAttempt = 0;
    this.disconnectedSince = undefined;
    this.log.info(`truenas: logged in to ${this.host} as ${this.options.username}`);
    this.emitConnection(true);
    if (this.jobs.pendingIds().length) void this.pollJobs().catch((err: unknown) => this.pollFailed(err));
    return conn;
  }

  private async login(conn: RpcConnection): Promise<void> {
    const result = await conn.call(
      'auth.login_ex',
      loginParams(this.options.username, this.apiKey),
      this.callTimeoutMs,
    );
    checkLoginResult(result, this.host, this.options.username, !this.secure);
  }

  /** Same socket, new login (session expired); shared by concurrent callers that hit 207 together. */
  private relogin(conn: RpcConnection): Promise<void> {
    if (!this.relogging) {
      this.relogging = (async () => {
        try {
          await this.login(conn);
          for (const name of this.subscriptions)
            await conn.call('core.subscribe', [name], this.callTimeoutMs);
        } catch (err) {
          if (err instanceof RpcCallError) throw mapRpcError(err, `Logging in to ${this.host} again`);
          throw err;
        }
        // Job events may have been missed while the session was gone.
        if (this.jobs.pendingIds().length) void this.pollJobs().catch((err: unknown) => this.pollFailed(err));
      })().finally(() => (this.relogging = undefined));
    }
    return this.relogging;
  }

  private onDropped(conn: RpcConnection, reason: string): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.disconnectedSince ??= Date.now();
    this.log.warn(`truenas: connection to ${this.host} lost (${reason})`);
    this.emitConnection(false);
    this.scheduleReconnect();
  }

  /** Reconnects in the background while jobs are waited for or someone listens for events. */
  private scheduleReconnect(): void {
    if (this.disposed || this.reconnectTimer) return;
    if (this.jobs.pendingIds().length === 0 && this.listeners.size === 0) return;
    const delay = Math.min(30_000, jitter(this.backoffBaseMs * 2 ** this.reconnectAttempt++));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connection().catch((err: unknown) => {
        const final =
          err instanceof PixelsError && (err.kind === 'security' || err.kind === 'not-authenticated');
        const deadline = this.options.reconnectDeadlineMs ?? 300_000;
        const expired =
          this.disconnectedSince !== undefined && Date.now() - this.disconnectedSince > deadline;
        if (final || expired) {
          this.jobs.failAll(
            err instanceof PixelsError
              ? err
              : new ConnectionError(`Lost the connection to ${this.host} and could not reconnect.`),
          );
        }
        if (!final) this.scheduleReconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }

  private emitConnection(up: boolean): void {
    for (const l of [...this.connectionListeners]) {
      try {
        l(up);
      } catch {
        // listeners must not break the client
      }
    }
  }

  // --- jobs and events ---------------------------------------------------------------------------------

  /** Asks the server for every job we still wait for (after a reconnect or re-login). */
  private async pollJobs(): Promise<void> {
    const ids = this.jobs.pendingIds();
    if (ids.length === 0) return;
    const rows = await this.call<JobRecord[]>('core.get_jobs', [[['id', 'in', ids]]], {
      context: 'Checking running jobs',
      expect: JOB_ROWS,
    });
    const seen = new Set<number>();
    for (const row of rows) {
      seen.add(row.id);
      this.noteJobId(row.id);
      this.jobs.update(row);
    }
    for (const id of ids) {
      if (!seen.has(id) && this.jobs.isWaiting(id)) {
        this.jobs.fail(
          id,
          new ConnectionError(`Job ${id} on ${this.host} disappeared; its outcome is unknown.`),
        );
      }
    }
  }

  /**
   * A poll after a reconnect that could not be read: the end events of the jobs we wait for may be gone for
   * good, so each waiter learns now that its outcome is unknown (the backend then looks at the server's state)
   * instead of waiting forever. A poll lost with its connection is made again after the next reconnect.
   */
  private pollFailed(err: unknown): void {
    if (err instanceof ConnectionDroppedError || this.disposed) return;
    const reason = err instanceof Error ? err.message : String(err);
    for (const id of this.jobs.pendingIds()) {
      this.jobs.fail(
        id,
        new ConnectionError(
          `Could not read the end of job ${id} on ${this.host}: ${reason} Its outcome is unknown.`,
        ),
      );
    }
  }

  /**
   * After a lost reply: our job (same method + arguments, not one we already know); `null` when the
   * server provably has no such job (it never got the call); `undefined` when that cannot be told.
   */
  private async findOurJob(
    method: string,
    params: unknown[],
    floor: number,
  ): Promise<JobRecord | null | undefined> {
    const rows = await this.call<JobRecord[]>('core.get_jobs', [[['method', '=', method]]], {
      context: 'Looking for the job that lost its reply',
      expect: JOB_ROWS,
    });
    if (rows.some((r) => !Array.isArray(r.arguments))) return undefined;
    const want = canonical(params);
    const candidates = rows.filter(
      (r) => r.id > floor && !this.startedJobIds.has(r.id) && canonical(r.arguments) === want,
    );
    if (candidates.length === 0) return null;
    return candidates.reduce((a, b) => (b.id < a.id ? b : a));
  }

  private noteJobId(id: number): void {
    if (id > this.maxJobIdSeen) this.maxJobIdSeen = id;
  }

  /** The newest job id on the server now, so that a later lost reply is not confused with an older job. */
  private async learnNewestJobId(conn: RpcConnection): Promise<void> {
    try {
      const rows = (await conn.call(
        'core.get_jobs',
        [[], { order_by: ['-id'], limit: 1, select: ['id'] }],
        this.callTimeoutMs,
      )) as { id: number }[];
      const newest = rows[0] && typeof rows[0].id === 'number' ? rows[0].id : 0;
      if (newest < this.maxJobIdSeen) {
        // Ids only grow while middlewared runs: it restarted, and the ids we know now name other jobs.
        this.log.warn(`truenas: ${this.host} restarted (job ids begin again); older job ids are forgotten`);
        this.serverEpoch += 1;
        this.maxJobIdSeen = 0;
        this.startedJobIds.clear();
        this.jobs.forgetEarly();
      }
      this.noteJobId(newest);
    } catch (err) {
      // The newest id is a hint; a connection that broke meanwhile is not.
      if (err instanceof ConnectionDroppedError) throw err;
      this.log.debug(`truenas: could not read the newest job id: ${String(err)}`);
    }
  }

  private onNotification(n: Notification): void {
    if (n.method === 'notify_unsubscribed') {
      const p = n.params as { collection?: string } | undefined;
      this.log.warn(`truenas: the server ended the subscription to ${p?.collection ?? '?'}`);
      return;
    }
    if (n.method !== 'collection_update') return;
    const u = n.params as CollectionUpdate | undefined;
    if (!u || typeof u.collection !== 'string') return;
    if (u.collection === 'core.get_jobs' && typeof u.id === 'number') {
      this.noteJobId(u.id);
      if (u.fields && typeof u.fields.state === 'string') {
        this.jobs.update({ ...(u.fields as unknown as JobRecord), id: u.id });
      }
    }
    for (const l of [...this.listeners]) {
      try {
        l(u);
      } catch {
        // a failing listener must not stop the others
      }
    }
  }
}

function lowerFirst(s: string): string {
  return s ? s[0].toLowerCase() + s.slice(1) : s;
}
