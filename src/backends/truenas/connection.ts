// One WebSocket carrying JSON-RPC 2.0: requests with ids, concurrent calls, per-call timeouts, server
// notifications, ping keepalive. It knows nothing about login or jobs (see client.ts).
import * as tls from 'node:tls';
import WebSocket from 'ws';
import { ConnectionError, SecurityError, TimeoutError } from '../../core/errors';
import type { Logger } from '../../core/log';
import { redact } from '../../core/log';
import { describeSocketError, endpointLabel } from '../../core/certificate';
import { ConnectionDroppedError, JsonRpcErrorObject, RpcCallError } from './errors';
import { judgePeer, TlsVerdict } from './tls';

export interface ConnectionOptions {
  url: string;
  /** Hostname used for certificate checks and messages. */
  host: string;
  /** SHA-256 pin for a self-signed certificate. */
  tlsFingerprint?: string;
  connectTimeoutMs: number;
  /** Interval of WebSocket control pings; a missing pong within the same interval closes the socket. */
  pingIntervalMs: number;
  /** Calls in flight at once; the rest wait here (the server answers -32000 above 20 per connection). */
  maxInFlight?: number;
  log: Logger;
}

export interface Notification {
  method: string;
  params: unknown;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

let nextConnectionSerial = 1;

/** The "socket path" of the ws+unix upgrade request: a marker only, never opened (see RpcConnection.open). */
const OWN_TLS_SOCKET = 'pixels-own-tls-socket';

export class RpcConnection {
  private pending = new Map<string, Pending>();
  private nextId = 1;
  private closed = false;
  private pingTimer?: NodeJS.Timeout;
  private awaitingPong = false;
  private closeListeners: ((reason: string) => void)[] = [];
  private notificationListener: (n: Notification) => void = () => {};
  private inFlight = 0;
  private readonly queue: (() => void)[] = [];
  readonly serial = nextConnectionSerial++;

  private constructor(
    private readonly ws: WebSocket,
    private readonly options: ConnectionOptions,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) =>
      this.onClosed(`closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`),
    );
    ws.on('error', (err) => this.onClosed(`error: ${err.message}`));
    ws.on('pong', () => (this.awaitingPong = false));
    this.pingTimer = setInterval(() => this.keepalive(), options.pingIntervalMs);
    this.pingTimer.unref();
  }

  /** Opens the socket; for wss:// the peer certificate is judged before the promise resolves (before any call). */
  static open(options: ConnectionOptions): Promise<RpcConnection> {
    return new Promise((resolve, reject) => {
      let verdict: TlsVerdict | undefined;
      const url = new URL(options.url);
      const secure = url.protocol === 'wss:';
      const wsOptions: WebSocket.ClientOptions = {
        handshakeTimeout: options.connectTimeoutMs,
        perMessageDeflate: false,
        maxPayload: 64 * 1024 * 1024,
      };
      let address = options.url;
      if (secure) {
        // We open the TLS socket ourselves and judge the certificate (CA + hostname, or the pin) in
        // `secureConnect`, before a byte of HTTP is sent; a bad verdict destroys the socket, so no JSON-RPC message
        // (and no key) is ever sent.
        const host = url.hostname.replace(/^\[|\]$/g, '');
        wsOptions.createConnection = (() => {
          const socket = tls.connect({
            host,
            port: url.port ? Number(url.port) : 443,
            rejectUnauthorized: false,
            servername: isIpLiteral(host) ? '' : host,
          });
          socket.once('secureConnect', () => {
            verdict = judgePeer(socket, options.host, options.tlsFingerprint);
            if (!verdict.ok) socket.destroy(verdict.error);
          });
          return socket;
        }) as unknown as WebSocket.ClientOptions['createConnection'];
        // Inside VS Code, every http(s).request an extension makes gets the editor's proxy agent, which opens its
        // own socket and so would skip createConnection. Requests to a unix socket path are left alone: so the
        // upgrade goes out as ws+unix (the marker "path" is never opened, createConnection ignores it) with the
        // real Host header. Were a socket ever made by someone else, the 'upgrade' check below still judges it.
        wsOptions.headers = { Host: url.host };
        wsOptions.rejectUnauthorized = false;
        address = `ws+unix:${OWN_TLS_SOCKET}:${url.pathname}${url.search}`;
      }
      let settled = false;
      const ws = new WebSocket(address, wsOptions);
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        if (verdict && !verdict.ok) return reject(verdict.error);
        if (err instanceof ConnectionError) return reject(err);
        reject(
          new ConnectionError(`Cannot connect to ${where(options)}: ${redact(describeSocketError(err))}.`, {
            cause: err,
          }),
        );
      };
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) =>
        fail(
          new ConnectionError(
            `The server at ${where(options)} answered HTTP ${res.statusCode} instead of a WebSocket: ` +
              'is it TrueNAS SCALE 25.04 or newer (the API at /api/current)?',
          ),
        ),
      );
      ws.once('close', () => fail(new Error('connection closed during the handshake')));
      ws.once('upgrade', (res) => {
        if (!secure || verdict) return; // judged at secureConnect, on our own socket
        const socket = res.socket as tls.TLSSocket;
        verdict =
          typeof socket.getPeerCertificate === 'function'
            ? judgePeer(socket, options.host, options.tlsFingerprint)
            : { ok: false, error: new SecurityError(`The connection to ${where(options)} is not TLS.`) };
        if (!verdict.ok) fail(verdict.error);
      });
      ws.once('open', () => {
        if (settled) return;
        if (secure && !(verdict && verdict.ok)) {
          return fail(verdict && !verdict.ok ? verdict.error : new Error('TLS peer was not verified'));
        }
        settled = true;
        ws.removeAllListeners();
        const conn = new RpcConnection(ws, options);
        options.log.debug(`truenas: connected to ${options.host} (connection #${conn.serial})`);
        resolve(conn);
      });
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  onNotification(listener: (n: Notification) => void): void {
    this.notificationListener = listener;
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  /**
   * Sends one request. Rejects with RpcCallError for a JSON-RPC error, TimeoutError after `timeoutMs`,
   * ConnectionDroppedError when the socket goes away (`sent` tells whether the server may have got it).
   */
  async call(method: string, params: unknown[], timeoutMs: number): Promise<unknown> {
    const limit = this.options.maxInFlight ?? 16;
    if (this.inFlight >= limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.inFlight++;
    try {
      return await this.send(method, params, timeoutMs);
    } finally {
      this.inFlight--;
      this.queue.shift()?.();
    }
  }

  private send(method: string, params: unknown[], timeoutMs: number): Promise<unknown> {
    if (!this.isOpen) {
      return Promise.reject(
        new ConnectionDroppedError(`The connection to ${this.options.host} is closed.`, false),
      );
    }
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const entry: Pending = { method, resolve, reject };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(
            new TimeoutError(
              `${this.options.host} did not answer ${method} within ${Math.round(timeoutMs / 100) / 10} s.`,
            ),
          );
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      const text = JSON.stringify({ jsonrpc: '2.0', id, method, params });
      this.options.log.trace(`truenas → ${redact(text).slice(0, 500)}`);
      this.ws.send(text, (err) => {
        if (err && this.pending.delete(id)) {
          if (entry.timer) clearTimeout(entry.timer);
          reject(new ConnectionDroppedError(`Could not send ${method} to ${this.options.host}.`, false));
        }
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.ws.close(1000);
    this.onClosed('closed by client');
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  private keepalive(): void {
    if (!this.isOpen) return;
    if (this.awaitingPong) {
      this.options.log.warn(`truenas: ${this.options.host} did not answer a ping; reconnecting`);
      this.ws.terminate();
      this.onClosed('ping timeout');
      return;
    }
    this.awaitingPong = true;
    this.ws.ping();
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return;
    let msg: {
      id?: string | number | null;
      method?: string;
      params?: unknown;
      result?: unknown;
      error?: JsonRpcErrorObject;
    };
    const text = data.toString();
    try {
      msg = JSON.parse(text);
    } catch {
      // Not JSON-RPC any more: which call it answered cannot be known, so every call on this socket would wait
      // for its timeout. The connection is dropped instead; each pending call fails at once, naming its method.
      this.options.log.warn('truenas: the server sent a message that is not JSON; dropping the connection');
      this.ws.terminate();
      this.onClosed('the server sent a message that is not JSON');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.options.log.warn(
        'truenas: the server sent a message that is not a JSON-RPC object; dropping the connection',
      );
      this.ws.terminate();
      this.onClosed('the server sent a message that is not a JSON-RPC object');
      return;
    }
    if (typeof msg.method === 'string' && msg.id === undefined) {
      this.notificationListener({ method: msg.method, params: msg.params });
      return;
    }
    const id = msg.id === null || msg.id === undefined ? undefined : String(msg.id);
    const entry = id === undefined ? undefined : this.pending.get(id);
    if (!entry || id === undefined) {
      if (msg.error)
        this.options.log.warn(`truenas: server error without a call: ${redact(JSON.stringify(msg.error))}`);
      return;
    }
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (msg.error) {
      this.options.log.trace(`truenas ← ${id} error ${redact(JSON.stringify(msg.error)).slice(0, 500)}`);
      entry.reject(new RpcCallError(entry.method, msg.error.code, msg.error.message, msg.error.data));
    } else {
      this.options.log.trace(`truenas ← ${id} ${preview(text, 300)}`);
      entry.resolve(msg.result);
    }
  }

  private onClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(
        new ConnectionDroppedError(
          `The connection to ${this.options.host} dropped during ${p.method}.`,
          true,
        ),
      );
    }
    for (const l of this.closeListeners) l(reason);
  }
}

function isIpLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}

/** "wss://host:443 (TLS)": what was tried, for every connection error. */
function where(options: ConnectionOptions): string {
  const url = new URL(options.url);
  const secure = url.protocol === 'wss:';
  return endpointLabel(options.host, url.port ? Number(url.port) : secure ? 443 : 80, secure);
}

/**
 * The start of a frame for the trace log, redacted. Only a bounded head is redacted (a 20,000-snapshot answer is
 * megabytes: re-serialising and scanning all of it for 300 characters cost more than parsing it); the head reaches
 * far enough past the cut that a secret or key starting before it is whole, and so redacted.
 */
export function preview(text: string, length: number): string {
  return redact(text.slice(0, length + 16_384)).slice(0, length);
}
