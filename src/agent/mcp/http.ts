// The MCP Streamable HTTP transport on loopback: one endpoint (/mcp) taking POSTed JSON-RPC messages and answering
// each request batch with one application/json body, or with an SSE stream when a tool call asks for progress
// (notifications/progress, then the answer); DELETE ends a session; GET (a server-to-client stream) is not
// offered (405), as the transport allows. Every request must carry the per-install bearer token (401
// otherwise) and, when a browser sends an Origin or Host, they must be loopback (403): a web page can neither
// read nor drive the sandboxes.
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentToolCatalog } from '../tools';
import {
  classify,
  errorResponse,
  INVALID_REQUEST,
  isInitialize,
  McpSession,
  PARSE_ERROR,
  SUPPORTED_PROTOCOL_VERSIONS,
  wantsProgress,
  type Incoming,
  type JsonRpcNotification,
  type JsonRpcResponse,
  type ServerIdentity,
} from './protocol';

export const MCP_PATH = '/mcp';
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const MAX_SESSIONS = 256;

export interface McpHttpOptions {
  catalog: AgentToolCatalog;
  /** The bearer token every request must carry. */
  token: string;
  identity: ServerIdentity;
  /** 0 picks a free port. */
  port: number;
  /** Loopback only: 127.0.0.1 (default) or ::1. */
  host?: '127.0.0.1' | '::1';
  onLog?: (line: string) => void;
  /** How long a call with a progress token may say nothing before a "still running" notification (tests). */
  progressHeartbeatMs?: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Loopback host names, with or without a port (Host header) or as an origin URL. */
function isLoopbackHostHeader(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return LOOPBACK_HOSTS.has(name.toLowerCase());
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      LOOPBACK_HOSTS.has(url.hostname.toLowerCase())
    );
  } catch {
    return false;
  }
}

export class McpHttpServer {
  private readonly server: http.Server;
  private readonly sessions = new Map<string, McpSession>();
  private readonly tokenDigest: Buffer;

  constructor(private readonly options: McpHttpOptions) {
    this.tokenDigest = digest(options.token);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log(`internal error: ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent) this.json(res, 500, errorResponse(null, -32603, 'Internal error'));
        else res.end();
      });
    });
    // Tool calls (exec) may run for minutes: no server-side request timeout.
    this.server.requestTimeout = 0;
  }

  /** Starts listening; resolves with the port. */
  listen(): Promise<number> {
    const host = this.options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  get port(): number | undefined {
    const address = this.server.address();
    return address && typeof address === 'object' ? address.port : undefined;
  }

  /** The endpoint clients are given. */
  url(): string {
    const host = (this.options.host ?? '127.0.0.1') === '::1' ? '[::1]' : '127.0.0.1';
    return `http://${host}:${this.port ?? this.options.port}${MCP_PATH}`;
  }

  async close(): Promise<void> {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  private log(line: string): void {
    this.options.onLog?.(line);
  }

  private json(
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
    res.end(text);
  }

  private authorized(req: http.IncomingMessage): boolean {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // Compared as digests: equal length, constant time, and the token's length is not told either.
    return !!match && timingSafeEqual(digest(match[1]!), this.tokenDigest);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const origin = req.headers.origin;
    if (
      (origin !== undefined && !isLoopbackOrigin(origin)) ||
      (req.headers.host && !isLoopbackHostHeader(req.headers.host))
    ) {
      this.log(`refused a request from origin ${origin ?? '(none)'} host ${req.headers.host ?? '(none)'}`);
      return this.json(
        res,
        403,
        errorResponse(null, INVALID_REQUEST, 'Forbidden: only loopback clients may use this server.'),
      );
    }
    if (url.pathname !== MCP_PATH)
      return this.json(
        res,
        404,
        errorResponse(null, INVALID_REQUEST, `Not found: the MCP endpoint is ${MCP_PATH}.`),
      );
    if (!this.authorized(req)) {
      this.log(`refused a ${req.method} without a valid token`);
      return this.json(
        res,
        401,
        errorResponse(
          null,
          INVALID_REQUEST,
          'Unauthorized: send the Pixels MCP token as "Authorization: Bearer <token>".',
        ),
        {
          'WWW-Authenticate': 'Bearer realm="pixels-mcp"',
        },
      );
    }
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !(SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(version))
      return this.json(
        res,
        400,
        errorResponse(
          null,
          INVALID_REQUEST,
          `Bad Request: unsupported MCP-Protocol-Version ${version} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}).`,
        ),
      );
    switch (req.method) {
      case 'POST':
        return this.post(req, res);
      case 'DELETE':
        return this.delete(req, res);
      default:
        // No server-initiated stream (GET) and no CORS (OPTIONS): the transport lets a server refuse with 405.
        res.writeHead(405, { Allow: 'POST, DELETE' });
        res.end();
    }
  }

  private session(req: http.IncomingMessage, res: http.ServerResponse): McpSession | undefined {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || !id) {
      this.json(
        res,
        400,
        errorResponse(
          null,
          INVALID_REQUEST,
          'Bad Request: the Mcp-Session-Id header is required after initialize.',
        ),
      );
      return undefined;
    }
    const session = this.sessions.get(id);
    // 404 tells the client to start a new session with initialize.
    if (!session) this.json(res, 404, errorResponse(null, -32001, 'Session not found: initialize again.'));
    return session;
  }

  private async delete(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const session = this.session(req, res);
    if (!session) return;
    session.close();
    this.sessions.delete(session.id);
    res.writeHead(200);
    res.end();
  }

  private readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          resolve(undefined);
          req.destroy();
        } else chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  private async post(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const accept = req.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream'))
      return this.json(
        res,
        406,
        errorResponse(
          null,
          INVALID_REQUEST,
          'Not Acceptable: the Accept header must list application/json and text/event-stream.',
        ),
      );
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/json')
      return this.json(
        res,
        415,
        errorResponse(null, INVALID_REQUEST, 'Unsupported Media Type: send application/json.'),
      );
    const body = await this.readBody(req);
    if (!body)
      return this.json(
        res,
        413,
        errorResponse(
          null,
          INVALID_REQUEST,
          `The request is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB.`,
        ),
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return this.json(
        res,
        400,
        errorResponse(null, PARSE_ERROR, 'Parse error: the body is not valid JSON.'),
      );
    }
    const batch = Array.isArray(parsed);
    const messages: Incoming[] = (batch ? (parsed as unknown[]) : [parsed]).map(classify);
    if (batch && messages.length === 0)
      return this.json(res, 400, errorResponse(null, INVALID_REQUEST, 'Invalid Request: an empty batch.'));

    let session: McpSession | undefined;
    const headers: Record<string, string> = {};
    if (messages.some(isInitialize)) {
      if (messages.length > 1)
        return this.json(
          res,
          400,
          errorResponse(null, INVALID_REQUEST, 'Invalid Request: initialize must be sent alone.'),
        );
      session = this.newSession();
      headers['Mcp-Session-Id'] = session.id;
    } else {
      session = this.session(req, res);
      if (!session) return;
    }

    if (messages.some(wantsProgress)) return this.stream(res, session, messages, headers);

    const responses: JsonRpcResponse[] = [];
    const pending: Promise<void>[] = [];
    for (const message of messages) {
      if (message.kind === 'invalid')
        responses.push(errorResponse(message.id, INVALID_REQUEST, `Invalid Request: ${message.message}`));
      else if (message.kind === 'notification') session.notify(message.method, message.params);
      else if (message.kind === 'request')
        pending.push(
          session.request(message.id, message.method, message.params).then((r) => void responses.push(r)),
        );
    }
    await Promise.all(pending);
    // Only notifications and responses: accepted, nothing to answer.
    if (responses.length === 0) {
      res.writeHead(202, headers);
      res.end();
      return;
    }
    this.json(res, 200, batch ? responses : responses[0], headers);
  }

  /**
   * Answers as an SSE stream: progress notifications as the calls run, each response when it is ready, then the
   * stream ends (the transport's text/event-stream answer to a POST). A client that goes away does not cancel
   * anything (the specification: disconnection is not cancellation); what is left to say is dropped.
   */
  private async stream(
    res: http.ServerResponse,
    session: McpSession,
    messages: Incoming[],
    headers: Record<string, string>,
  ): Promise<void> {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      ...headers,
    });
    res.flushHeaders();
    const send = (message: JsonRpcResponse | JsonRpcNotification) => {
      if (!res.writableEnded && !res.destroyed)
        res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    };
    const pending: Promise<void>[] = [];
    for (const message of messages) {
      if (message.kind === 'invalid')
        send(errorResponse(message.id, INVALID_REQUEST, `Invalid Request: ${message.message}`));
      else if (message.kind === 'notification') session.notify(message.method, message.params);
      else if (message.kind === 'request')
        pending.push(session.request(message.id, message.method, message.params, send).then(send));
    }
    await Promise.all(pending);
    res.end();
  }

  private newSession(): McpSession {
    if (this.sessions.size >= MAX_SESSIONS) {
      // The least recently used goes; its client gets 404 and initializes again.
      const oldest = [...this.sessions.values()].sort((a, b) => a.lastUsed - b.lastUsed)[0]!;
      oldest.close();
      this.sessions.delete(oldest.id);
    }
    const session = new McpSession(
      randomUUID(),
      this.options.catalog,
      this.options.identity,
      this.options.progressHeartbeatMs,
    );
    this.sessions.set(session.id, session);
    return session;
  }
}
