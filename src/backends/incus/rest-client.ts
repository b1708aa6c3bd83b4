// The Incus REST API over the local unix socket or over HTTPS with a client certificate and a pinned server
// certificate. One keep-alive agent per client, so every call reuses the same connection(s).
import http from 'node:http';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from '../../core/log';
import type { ReplyCheck } from '../../core/reply-shape';
import { silentLogger } from '../../core/log';
import {
  AlreadyExistsError,
  CancelledError,
  ConnectionError,
  NotAuthorizedError,
  NotFoundError,
  PixelsError,
  SecurityError,
  ServerError,
  ValidationError,
} from '../../core/errors';

export const DEFAULT_SOCKET = '/var/lib/incus/unix.socket';

export interface RestClientOptions {
  /** Unix socket path (used when `url` is absent). */
  socketPath?: string;
  /** https://host:8443 */
  url?: string;
  /** PEM contents (not paths) for HTTPS. */
  clientCert?: string;
  clientKey?: string;
  serverCert?: string;
  project?: string;
  /** Per-request timeout for ordinary calls (operation waits pass their own). */
  timeoutMs?: number;
}

/** The standard Incus response envelope. */
export interface IncusEnvelope<T = unknown> {
  type: 'sync' | 'async' | 'error';
  status?: string;
  status_code?: number;
  operation?: string;
  error_code?: number;
  error?: string;
  metadata: T;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body (file uploads); `body` is ignored when set. */
  raw?: Buffer;
  headers?: Record<string, string>;
  query?: Record<string, string | undefined>;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The shape of `metadata` the caller reads; another shape is a ServerError naming the request. */
  expect?: ReplyCheck;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** SHA-256 fingerprint as lowercase hex without colons. */
export function certFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

export class IncusRestClient {
  readonly project: string;
  private readonly agent: http.Agent;
  private readonly base: { socketPath?: string; host?: string; port?: number; https: boolean };
  /** A cluster's online members (host, port), over HTTPS: where calls go when the current one refuses them. */
  private members: { host: string; port: number }[] = [];
  private readonly tls?: { cert: string; key: string; ca: string; pinned: string };

  constructor(
    readonly options: RestClientOptions,
    private readonly log: Logger = silentLogger,
  ) {
    this.project = options.project ?? 'default';
    if (options.url) {
      const url = new URL(options.url);
      if (url.protocol !== 'https:')
        throw new SecurityError(`Incus remote ${options.url} must use https://.`);
      if (!options.clientCert || !options.clientKey)
        throw new ValidationError(
          'An Incus HTTPS remote needs a client certificate and key (client_cert, client_key).',
        );
      if (!options.serverCert)
        throw new SecurityError(
          `The Incus server certificate for ${url.host} is not pinned: set server_cert to its PEM file ` +
            '(for example ~/.config/incus/servercerts/<remote>.crt).',
        );
      this.tls = {
        cert: options.clientCert,
        key: options.clientKey,
        ca: options.serverCert,
        pinned: certFingerprint(options.serverCert),
      };
      this.base = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 8443), https: true };
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets: 8,
        ...this.tlsOptions(),
      });
    } else {
      this.base = { socketPath: options.socketPath ?? DEFAULT_SOCKET, https: false };
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    }
  }

  /** Human description of where we talk to, for messages. */
  get endpoint(): string {
    return this.base.socketPath
      ? `unix socket ${this.base.socketPath}`
      : `https://${this.base.host}:${this.base.port}`;
  }

  /**
   * The cluster's online members' addresses (their `url` in /1.0/cluster/members). Every member presents the
   * cluster's certificate, so the pinned one holds for each. Over a unix socket there is no other member to use.
   */
  setClusterMembers(urls: string[]): void {
    if (!this.base.https) return;
    this.members = urls.flatMap((u) => {
      try {
        const url = new URL(u);
        return url.protocol === 'https:'
          ? [{ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 8443) }]
          : [];
      } catch {
        return [];
      }
    });
  }

  /**
   * After `err`: when it is a connection the member refused or could not be reached at (nothing was sent, so any
   * request may be repeated), moves to the next known member and says true.
   */
  failover(err: unknown): boolean {
    const e = err as { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code;
    if (!code || !['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return false;
    const at = this.members.findIndex((m) => m.host === this.base.host && m.port === this.base.port);
    const next = this.members[(at + 1) % this.members.length];
    if (!next || (next.host === this.base.host && next.port === this.base.port)) return false;
    this.log.info(
      `incus: ${this.endpoint} refused the connection; using cluster member ${next.host}:${next.port}`,
    );
    this.base.host = next.host;
    this.base.port = next.port;
    return true;
  }

  /** TLS options shared by the HTTPS agent and the events websocket: our cert, and only the pinned server cert. */
  tlsOptions(): https.AgentOptions {
    if (!this.tls) return {};
    const pinned = this.tls.pinned;
    return {
      cert: this.tls.cert,
      key: this.tls.key,
      ca: this.tls.ca,
      rejectUnauthorized: true,
      // The chain is already verified against the pinned certificate as the only CA; Incus certificates rarely
      // name the host we dial, so the pin (exact SHA-256 match) replaces the hostname check.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const got = (cert.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
        if (got !== pinned)
          return new SecurityError(
            `The Incus server presented certificate ${got}, not the pinned ${pinned}.`,
          );
        return undefined;
      },
    };
  }

  /** URL + ws options for a websocket on this server (`ws+unix:` for the socket). */
  websocketTarget(
    path: string,
    query: Record<string, string> = {},
  ): { url: string; options: Record<string, unknown> } {
    const qs = this.queryString(query);
    if (this.base.socketPath) return { url: `ws+unix://${this.base.socketPath}:${path}${qs}`, options: {} };
    return {
      url: `wss://${this.hostForUrl()}:${this.base.port}${path}${qs}`,
      options: { ...this.tlsOptions() },
    };
  }

  private hostForUrl(): string {
    const h = this.base.host ?? 'localhost';
    return h.includes(':') ? `[${h}]` : h;
  }

  private queryString(query: Record<string, string | undefined>): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
    if (this.project !== 'default' && !params.has('project')) params.set('project', this.project);
    const s = params.toString();
    return s ? `?${s}` : '';
  }

  /** A request whose reply is the standard envelope; error envelopes become typed errors. */
  async call<T>(method: string, path: string, options: RequestOptions = {}): Promise<IncusEnvelope<T>> {
    const env = this.envelope<T>(await this.rawOnAnyMember(method, path, options), method, path);
    const problem = options.expect?.(env.metadata);
    if (problem)
      throw new ServerError(`Incus answered ${method} ${path} with a reply Pixels cannot use: ${problem}.`);
    return env;
  }

  /**
   * The standard envelope of a raw response (for callers that also need its status or headers, e.g. an ETag);
   * error envelopes become typed errors.
   */
  envelope<T>(res: RawResponse, method: string, path: string): IncusEnvelope<T> {
    let envelope: IncusEnvelope<T>;
    try {
      envelope = JSON.parse(res.body.toString('utf8')) as IncusEnvelope<T>;
    } catch {
      throw new ServerError(`Incus answered ${method} ${path} with HTTP ${res.status} and no JSON.`);
    }
    if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope))
      throw new ServerError(
        `Incus answered ${method} ${path} with HTTP ${res.status} and no response envelope.`,
      );
    if (envelope.type === 'error' || res.status >= 400) {
      const reason = typeof envelope.error === 'string' ? envelope.error.slice(0, 500) : `HTTP ${res.status}`;
      throw mapIncusError(res.status || envelope.error_code || 500, reason);
    }
    return envelope;
  }

  /** raw(), moved to another cluster member (each at most once) while members refuse the connection. */
  private async rawOnAnyMember(method: string, path: string, options: RequestOptions): Promise<RawResponse> {
    for (let tries = 0; ; tries++) {
      try {
        return await this.raw(method, path, options);
      } catch (err) {
        if (tries >= this.members.length || !this.failover(err)) throw err;
      }
    }
  }

  /** A request returning status, headers and the raw body (file downloads, exec logs). */
  raw(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    const body =
      options.raw ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
    const headers: Record<string, string> = { ...options.headers };
    if (body && !options.raw) headers['Content-Type'] = 'application/json';
    if (body) headers['Content-Length'] = String(body.length);
    const fullPath = path + this.queryString(options.query ?? {});
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 60_000;
    this.log.trace(`incus ${method} ${fullPath}`);
    return new Promise<RawResponse>((resolve, reject) => {
      if (options.signal?.aborted) return reject(new CancelledError());
      const common = { method, path: fullPath, headers, agent: this.agent };
      const req = this.base.socketPath
        ? http.request({ ...common, socketPath: this.base.socketPath })
        : https.request({ ...common, host: this.base.host, port: this.base.port, ...this.tlsOptions() });
      const onAbort = () => req.destroy(new CancelledError());
      options.signal?.addEventListener('abort', onAbort, { once: true });
      req.setTimeout(timeoutMs, () =>
        req.destroy(
          new ConnectionError(
            `Incus (${this.endpoint}) did not answer ${method} ${path} within ${timeoutMs / 1000} s.`,
          ),
        ),
      );
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.transportError(err, `${method} ${path}`)));
        // A reply cut short (the connection closed before Content-Length bytes came) is not a reply.
        res.on('aborted', () =>
          reject(
            this.transportError(
              Object.assign(new Error('aborted'), { code: 'ECONNRESET' }),
              `${method} ${path}`,
            ),
          ),
        );
        res.on('end', () => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.on('error', (err) => {
        options.signal?.removeEventListener('abort', onAbort);
        reject(this.transportError(err, `${method} ${path}`));
      });
      req.end(body);
    });
  }

  /** Socket and TLS failures explained in one sentence each. */
  transportError(err: unknown, during?: string): PixelsError {
    if (err instanceof PixelsError) return err;
    const e = err as NodeJS.ErrnoException;
    const where = this.endpoint;
    // A connection that broke under a request says which one (reaching the socket at all is not about one).
    const under = during ? ` during ${during}` : '';
    switch (e.code) {
      case 'EACCES':
      case 'EPERM':
        return new NotAuthorizedError(
          `Permission denied on the Incus ${where}: your user needs to be in the incus-admin group ` +
            '(sudo usermod -aG incus-admin $USER, then log in again), or point the socket setting at a socket you may use.',
          { cause: err },
        );
      case 'ENOENT':
        return new ConnectionError(`There is no Incus ${where}: is incusd running on this machine?`, {
          cause: err,
        });
      case 'ECONNREFUSED':
        return new ConnectionError(`Incus refused the connection on ${where}: is incusd running?`, {
          cause: err,
        });
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new ConnectionError(`Cannot resolve the Incus host of ${where}.`, { cause: err });
      case 'ETIMEDOUT':
      case 'ECONNRESET':
      case 'EPIPE':
        return new ConnectionError(`The connection to Incus (${where}) failed${under}: ${e.code}.`, {
          cause: err,
        });
    }
    if (e.code && /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL/.test(e.code))
      return new SecurityError(
        `The Incus server at ${where} failed TLS verification (${e.code}); check server_cert.`,
        {
          cause: err,
        },
      );
    return new ConnectionError(
      `The connection to Incus (${where}) failed${under}: ${e.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Incus error envelope -> typed error. `status` is the HTTP status (or the envelope's error_code). */
export function mapIncusError(status: number, message: string): PixelsError {
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  const sentence = /[.!?]$/.test(text) ? text : `${text}.`;
  if (status === 404) return new NotFoundError(sentence);
  if (status === 409 || /already exists/i.test(message)) return new AlreadyExistsError(sentence);
  if (status === 403) return new NotAuthorizedError(`Incus refused: ${sentence}`);
  if (status === 400) return new ValidationError(`Incus rejected the request: ${sentence}`);
  return new ServerError(`Incus: ${sentence}`);
}
