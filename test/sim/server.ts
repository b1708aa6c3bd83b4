// The WebSocket JSON-RPC 2.0 front end (api/base/server/ws_handler/rpc.py + utils/limits.py): frame and size
// limits, envelope validation, method lookup, authentication, the per-connection SoftHardSemaphore(10, 20),
// job dispatch (legacy and new-style) and the fault switches that act on the wire.
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  credentialsOf,
  type Conn,
  type MethodSpec,
  type Registry,
  type Session,
  type Sim26Build,
  type SimContext,
  type SimVersion,
} from './context.js';
import { decode, stringify, type SimValue } from './ejson.js';
import { CallError, ERRNO, ValidationErrors, toRpcError, type RpcErrorBody } from './errors.js';
import { JobAborted } from './jobs.js';

const LIMIT_ANONYMOUS = 8192;
const LIMIT_AUTHENTICATED = 65536;
const LIMIT_EXTENDED = 2097152;
const EXTENDED_METHODS = new Set(['filesystem.file_receive', 'failover.datastore.sql']);
const SEMAPHORE_SOFT = 10;
const SEMAPHORE_HARD = 20;
const RATE_MAX_CALLS = 20;
const RATE_WINDOW_MS = 60_000;

export const API_VERSIONS: Record<SimVersion, string[]> = {
  '25.04': ['v25.04.0', 'v25.04.1', 'v25.04.2'],
  '25.10': ['v25.04.0', 'v25.04.1', 'v25.04.2', 'v25.10.0', 'v25.10.1'],
  // TS-26.0.0-BETA.3 api/v*_*_* (stable/26 = RC.1 adds v25.10.5, see apiVersions()).
  '26': [
    'v24.10',
    'v25.04.0',
    'v25.04.1',
    'v25.04.2',
    'v25.10.0',
    'v25.10.1',
    'v25.10.2',
    'v25.10.3',
    'v25.10.4',
    'v26.0.0',
  ],
};

/** GET /api/versions of a server: the folders api/v*_*_* of its build. */
export function apiVersions(version: SimVersion, build: Sim26Build | null): string[] {
  const list = API_VERSIONS[version];
  if (build !== '26.0.0-RC.1') return list;
  return [...list.slice(0, -1), 'v25.10.5', list[list.length - 1]];
}

/**
 * A 26 server on a legacy endpoint (api/base/server/legacy_api_method.py _adapt_params): a method whose argument
 * model that API version lacks did not exist then, and raises MethodNotFoundError (-32001 ENOMETHOD
 * "Method 'create' not found in 'container'"). container.*, lxc.* and zfs.resource.snapshot.* are new in v26.0.0;
 * pool.snapshot.* and zfs.resource.* in v25.10.0.
 */
function missingOnEndpoint(ctx: SimContext, apiPath: string, method: string): boolean {
  if (ctx.version !== '26' || apiPath === '/api/current' || apiPath === '/api/v26.0.0') return false;
  if (/^(container|lxc|zfs\.resource\.snapshot)\./.test(method)) return true;
  const before2510 = !/^\/api\/v25\.10\./.test(apiPath);
  return before2510 && /^(pool\.snapshot|zfs\.resource)\./.test(method);
}

export interface ServerStats {
  connections(): number;
  callCount(method?: string): number;
}

class Connection implements Conn {
  session: Session | null = null;
  legacyJobs = true;
  privateMethods = false;
  pyExceptions = false;
  readonly subscriptions = new Map<string, string>();
  /** calls accepted and not yet answered (the semaphore's hard limit counts these) */
  inFlight = 0;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly id: number,
    private readonly ws: WebSocket,
    readonly secureTransport: boolean,
    readonly apiPath: string,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(message: SimValue): void {
    if (this.open) this.ws.send(stringify(message));
  }

  /** a frame as given (fault switch rewriteReplies), always a text frame */
  sendRaw(frame: string | Buffer): void {
    if (this.open) this.ws.send(frame, { binary: false });
  }

  sendNotification(method: string, params: SimValue): void {
    this.send({ jsonrpc: '2.0', method, params });
  }

  terminate(): void {
    this.ws.terminate();
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  /** SoftHardSemaphore: SOFT calls run, up to HARD wait, beyond that the call is refused. */
  async acquire(): Promise<void> {
    if (this.running < SEMAPHORE_SOFT) {
      this.running += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running += 1;
  }

  release(): void {
    this.running -= 1;
    const next = this.waiting.shift();
    if (next) next();
  }
}

export class RpcServer implements ServerStats {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Connection>();
  private readonly calls = new Map<string, number>();
  private readonly unauthCalls = new Map<string, number[]>();
  private nextConnId = 1;
  private readonly paths: Set<string>;

  constructor(
    private readonly ctx: SimContext,
    private readonly registry: Registry,
    private readonly http: http.Server | https.Server,
    private readonly secure: boolean,
  ) {
    this.paths = new Set(['/api/current', ...apiVersions(ctx.version, ctx.build).map((v) => `/api/${v}`)]);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: LIMIT_EXTENDED + 65536 });
    http.on('request', (req, res) => this.onHttp(req, res));
    http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  connections(): number {
    return [...this.conns].filter((c) => c.open).length;
  }

  callCount(method?: string): number {
    if (method !== undefined) return this.calls.get(method) ?? 0;
    let total = 0;
    for (const n of this.calls.values()) total += n;
    return total;
  }

  /**
   * middlewared restarts: every connection drops, the port refuses connections for `downMs`, and the new
   * process knows no jobs and no sessions (ids from 1 again). Engine state (Incus, ZFS) stays as it is.
   */
  async restart(downMs: number): Promise<void> {
    const address = this.http.address() as AddressInfo;
    this.ctx.jobs.restart();
    for (const conn of this.conns) conn.terminate();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await listen(this.http, address.port, address.address);
  }

  async close(): Promise<void> {
    for (const conn of this.conns) conn.terminate();
    this.wss.close();
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections(); // idle keep-alive HTTP sockets would otherwise hold close() open
    await closed;
  }

  // ------------------------------------------------------------------ HTTP

  private onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: SimValue) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(stringify(body));
    };
    if (req.method === 'GET' && path === '/api/versions')
      return json(200, apiVersions(this.ctx.version, this.ctx.build));
    if (req.method === 'GET' && path === '/api/boot_id' && this.ctx.version !== '25.04')
      return json(200, this.ctx.bootId);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('404: Not Found');
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0];
    if (!this.paths.has(path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, path));
  }

  private onConnection(ws: WebSocket, apiPath: string): void {
    // "Secure" = TLS or a loopback peer (utils/origin.py). The server only listens on loopback, so only the
    // treatAsRemote switch can make a plain ws:// connection insecure.
    const conn = new Connection(this.nextConnId++, ws, this.secure || !this.ctx.auth.treatAsRemote, apiPath);
    this.conns.add(conn);
    this.ctx.events.attach(conn);
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('close', () => {
      this.conns.delete(conn);
      this.ctx.events.detach(conn);
    });
    ws.on('error', () => undefined);
  }

  // ------------------------------------------------------------------ envelope

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      conn.close(1003, 'Invalid websocket message type: <WSMsgType.BINARY: 2>');
      return;
    }
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Buffer.concat(data as Buffer[]).toString('utf8');
    if (!conn.session && text.length > LIMIT_ANONYMOUS) {
      conn.close(1007, 'Anonymous connection max message length is 8 kB');
      return;
    }
    if (text.length > LIMIT_EXTENDED) {
      conn.close(1009, 'Max message length is 64 kB');
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      conn.send({ jsonrpc: '2.0', error: { code: -32700, message: (error as Error).message }, id: null });
      return;
    }
    if (Array.isArray(parsed)) {
      conn.send({
        jsonrpc: '2.0',
        error: { code: -32700, message: 'Batch messages are not supported at this time' },
        id: null,
      });
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) {
      conn.send({ jsonrpc: '2.0', error: { code: -32700, message: 'Invalid Message Format' }, id: null });
      return;
    }
    const message = parsed as Record<string, unknown>;
    const method = message.method;
    if (!(typeof method === 'string' && EXTENDED_METHODS.has(method)) && text.length > LIMIT_AUTHENTICATED) {
      conn.close(1009, 'Max message length is 64 kB');
      return;
    }
    const hasId = 'id' in message;
    const envelopeError = validateEnvelope(message);
    if (envelopeError) {
      if (hasId)
        conn.send({
          jsonrpc: '2.0',
          error: { code: -32600, message: envelopeError },
          id: decode(message.id),
        });
      return;
    }
    const id = hasId ? (message.id as SimValue) : undefined;
    const spec = this.registry.get(method as string);
    if (!spec) {
      if (hasId)
        conn.send({
          jsonrpc: '2.0',
          error: { code: -32601, message: 'Method does not exist' },
          id: id ?? null,
        });
      return;
    }
    const params = (message.params === undefined ? [] : decode(message.params)) as SimValue[];
    void this.call(conn, id, spec, params);
  }

  // ------------------------------------------------------------------ calls

  private async call(
    conn: Connection,
    id: SimValue | undefined,
    spec: MethodSpec,
    params: SimValue[],
  ): Promise<void> {
    this.calls.set(spec.name, (this.calls.get(spec.name) ?? 0) + 1);
    const reply = async (body: { result: SimValue } | { error: RpcErrorBody }) => {
      const delay = this.ctx.faults.replyDelayMs(spec.name);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (id === undefined) return; // a notification gets no reply
      const message: SimValue =
        'result' in body
          ? { jsonrpc: '2.0', result: body.result, id }
          : { jsonrpc: '2.0', error: body.error as unknown as SimValue, id };
      const rewrite = this.ctx.faults.rewriterFor(spec.name);
      if (rewrite) conn.sendRaw(rewrite(stringify(message)));
      else conn.send(message);
    };
    const tooMany = {
      error: { code: -32000, message: `Maximum number of concurrent calls (${SEMAPHORE_HARD}) has exceeded` },
    };
    if (this.ctx.faults.takeTooMany(spec.name) || conn.inFlight >= SEMAPHORE_HARD) {
      await reply(tooMany);
      return;
    }
    conn.inFlight += 1;
    await conn.acquire();
    try {
      const result = await this.invoke(conn, id, spec, params);
      await reply({ result });
    } catch (error) {
      await reply({ error: toRpcError(error) });
    } finally {
      conn.release();
      conn.inFlight -= 1;
    }
  }

  /** Unauthenticated calls: 20 per 60 s per method (all clients share the loopback address). */
  private async rateLimited(method: string): Promise<void> {
    const now = Date.now();
    const recent = (this.unauthCalls.get(method) ?? []).filter((t) => now - t < RATE_WINDOW_MS);
    recent.push(now);
    this.unauthCalls.set(method, recent);
    if (recent.length > RATE_MAX_CALLS) {
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
      throw new CallError('Rate Limit Exceeded', ERRNO.EBUSY);
    }
  }

  private async invoke(
    conn: Connection,
    id: SimValue | undefined,
    spec: MethodSpec,
    args: SimValue[],
  ): Promise<SimValue> {
    if (spec.noAuth && spec.rateLimit !== false && !conn.session && this.ctx.rateLimit)
      await this.rateLimited(spec.name);
    if (!spec.noAuth) {
      if (!conn.session) throw new CallError('Not authenticated', ERRNO.ENOTAUTHENTICATED);
      if (this.ctx.faults.takeExpire()) {
        conn.session = null;
        throw new CallError('Not authenticated', ERRNO.ENOTAUTHENTICATED);
      }
    }
    if (missingOnEndpoint(this.ctx, conn.apiPath, spec.name)) {
      const dot = spec.name.lastIndexOf('.');
      throw new CallError(
        `Method '${spec.name.slice(dot + 1)}' not found in '${spec.name.slice(0, dot)}'`,
        ERRNO.ENOMETHOD,
      );
    }
    const env = { ctx: this.ctx, conn, messageId: id };
    const faults = this.ctx.faults;
    if (!spec.job) {
      const failure = faults.takeCallFailure(spec.name);
      if (failure !== null) throw new CallError(failure, ERRNO.EFAULT);
      const result = await spec.handler(env, args);
      // The call ran; its reply is lost (a closed socket sends nothing).
      if (faults.takeDrop(spec.name, true)) conn.terminate();
      const downMs = faults.takeRestart(spec.name, true);
      if (downMs !== null) await this.restart(downMs);
      return result;
    }

    let lock: string | null = null;
    if (spec.job.lock) {
      try {
        lock = spec.job.lock(args);
      } catch {
        throw new CallError(
          'Error handling job lock. This is most likely caused by invalid call arguments.',
          ERRNO.EINVAL,
        );
      }
    }
    const duration = this.ctx.jobDurationMs;
    const job = this.ctx.jobs.submit({
      method: spec.name,
      arguments: args,
      credentials: credentialsOf(conn, this.ctx.version),
      messageId: id,
      lock,
      abortable: spec.job.abortable ?? false,
      run: async (jobCtx) => {
        if (spec.name !== 'core.job_wait') {
          if (faults.takeDrop(spec.name)) setTimeout(() => conn.terminate(), Math.max(1, duration / 3));
          const downMs = faults.takeRestart(spec.name);
          if (downMs !== null) setTimeout(() => void this.restart(downMs), Math.max(1, duration / 3));
          const failure = faults.takeFailure() ?? faults.takeCallFailure(spec.name);
          if (failure !== null) {
            await jobCtx.sleep(duration / 2);
            throw new CallError(failure, ERRNO.EFAULT);
          }
        }
        return spec.handler({ ...env, job: jobCtx }, args);
      },
    });
    if (conn.legacyJobs) return job.id;
    await job.done;
    if (job.state === 'SUCCESS') return job.result;
    if (job.state === 'ABORTED') throw new CallError('Job aborted', ERRNO.EFAULT);
    if (job.cause instanceof ValidationErrors || job.cause instanceof CallError) throw job.cause;
    if (job.cause instanceof JobAborted) throw new CallError('Job aborted', ERRNO.EFAULT);
    throw job.cause ?? new CallError(job.failure?.error ?? 'Job failed');
  }
}

/** Python's isinstance(id, None | int | str): booleans are ints there. */
function validId(id: unknown): SimValue {
  return id === null ||
    typeof id === 'string' ||
    typeof id === 'boolean' ||
    (typeof id === 'number' && Number.isInteger(id))
    ? id
    : null;
}

/** RpcWebSocketHandler.validate_message, same order and wording. */
function validateEnvelope(message: Record<string, unknown>): string | null {
  if (!('jsonrpc' in message)) return "Missing 'jsonrpc' member";
  if (message.jsonrpc !== '2.0') return "'jsonrpc' member must be of type string and must be exactly '2.0'";
  if ('id' in message && validId(message.id) !== message.id)
    return "'id' member must be of type null, string or number";
  if (!('method' in message)) return "Missing 'method' member";
  if (typeof message.method !== 'string' || message.method === '')
    return "'method' member must be of type string";
  if ('params' in message && !Array.isArray(message.params)) return "'params' member must be of type array";
  return null;
}

export async function listen(
  server: http.Server | https.Server,
  port: number,
  host: string,
): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}
