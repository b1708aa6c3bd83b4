// The MCP server's protocol side: JSON-RPC 2.0 messages, the lifecycle (initialize with version negotiation,
// notifications/initialized), ping, tools/list and tools/call over the agent tool catalog, and cancellation.
// Transport-free: McpHttpServer feeds it parsed messages of one session. Tool failures are tool results with
// isError (the model sees them and can correct itself); malformed requests and unknown methods or tools are
// JSON-RPC errors, as the specification divides them.
import { toolErrorMessage, type AgentToolCatalog } from '../tools';

/** Newest first; the first is what we offer a client asking for a version we do not know. */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;
export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;

export type JsonRpcId = string | number;

export interface JsonRpcError {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: { code: number; message: string; data?: unknown };
}

export interface JsonRpcResult {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: Record<string, unknown>;
}

export type JsonRpcResponse = JsonRpcError | JsonRpcResult;

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params: Record<string, unknown>;
}

/** Sends a notification to the client before the answer (the transport streams them). */
export type Emit = (notification: JsonRpcNotification) => void;

/** With no other news for this long, a long call says it is still running (clients reset their timeout on it). */
export const PROGRESS_HEARTBEAT_MS = 15_000;

/** The progress token of a request (params._meta.progressToken), when the client asked for progress. */
export function progressToken(params: Record<string, unknown>): string | number | undefined {
  const meta = params._meta;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const token = (meta as Record<string, unknown>).progressToken;
  return typeof token === 'string' || (typeof token === 'number' && Number.isFinite(token))
    ? token
    : undefined;
}

/** A request the transport should answer as a stream: a tool call whose client asked for progress. */
export function wantsProgress(message: Incoming): boolean {
  return (
    message.kind === 'request' &&
    message.method === 'tools/call' &&
    progressToken(message.params) !== undefined
  );
}

/** One message as it arrived, sorted by kind. */
export type Incoming =
  | { kind: 'request'; id: JsonRpcId; method: string; params: Record<string, unknown> }
  | { kind: 'notification'; method: string; params: Record<string, unknown> }
  | { kind: 'response' }
  | { kind: 'invalid'; id: JsonRpcId | null; message: string };

export function errorResponse(id: JsonRpcId | null, code: number, message: string): JsonRpcError {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
}

/** Sorts one JSON value into a request, notification, response, or an invalid message (with its id if any). */
export function classify(message: unknown): Incoming {
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    return { kind: 'invalid', id: null, message: 'A JSON-RPC message must be an object.' };
  const m = message as Record<string, unknown>;
  const id = isId(m.id) ? m.id : null;
  if (m.jsonrpc !== '2.0') return { kind: 'invalid', id, message: 'jsonrpc must be "2.0".' };
  if (m.method === undefined && ('result' in m || 'error' in m) && isId(m.id)) return { kind: 'response' };
  if (typeof m.method !== 'string') return { kind: 'invalid', id, message: 'method must be a string.' };
  if (
    m.params !== undefined &&
    (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params))
  )
    return { kind: 'invalid', id, message: 'params must be an object.' };
  const params = (m.params ?? {}) as Record<string, unknown>;
  if (!('id' in m)) return { kind: 'notification', method: m.method, params };
  if (!isId(m.id))
    return { kind: 'invalid', id: null, message: 'id must be a string or an integer (not null).' };
  return { kind: 'request', id: m.id, method: m.method, params };
}

export function isInitialize(message: Incoming): boolean {
  return message.kind === 'request' && message.method === 'initialize';
}

export interface ServerIdentity {
  name: string;
  title: string;
  version: string;
  instructions: string;
}

/** One client's session: its negotiated version and its requests in flight (for notifications/cancelled). */
export class McpSession {
  protocolVersion: string = LATEST_PROTOCOL_VERSION;
  initialized = false;
  lastUsed = Date.now();
  private readonly inFlight = new Map<JsonRpcId, AbortController>();

  constructor(
    readonly id: string,
    private readonly catalog: AgentToolCatalog,
    private readonly identity: ServerIdentity,
    private readonly heartbeatMs = PROGRESS_HEARTBEAT_MS,
  ) {}

  /** Handles a notification (nothing is answered). */
  notify(method: string, params: Record<string, unknown>): void {
    if (method === 'notifications/initialized') this.initialized = true;
    if (method === 'notifications/cancelled' && isId(params.requestId))
      this.inFlight.get(params.requestId)?.abort();
  }

  /** Answers one request. Never throws: every failure becomes a JSON-RPC error or an isError tool result. */
  async request(
    id: JsonRpcId,
    method: string,
    params: Record<string, unknown>,
    emit?: Emit,
  ): Promise<JsonRpcResponse> {
    this.lastUsed = Date.now();
    try {
      switch (method) {
        case 'initialize':
          return this.ok(id, this.initialize(params));
        case 'ping':
          return this.ok(id, {});
        case 'tools/list':
          return this.ok(id, { tools: this.listTools() });
        case 'tools/call':
          return await this.callTool(id, params, emit);
        default:
          return errorResponse(id, METHOD_NOT_FOUND, `Method not found: ${method}`);
      }
    } catch (err) {
      return errorResponse(id, INTERNAL_ERROR, toolErrorMessage(err));
    }
  }

  /** Ends the session: requests still running are cancelled. */
  close(): void {
    for (const controller of this.inFlight.values()) controller.abort();
    this.inFlight.clear();
  }

  private ok(id: JsonRpcId, result: Record<string, unknown>): JsonRpcResult {
    return { jsonrpc: '2.0', id, result };
  }

  private initialize(params: Record<string, unknown>): Record<string, unknown> {
    const asked = params.protocolVersion;
    // The client's version when we support it; otherwise ours, and the client decides whether to go on.
    this.protocolVersion =
      typeof asked === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(asked)
        ? asked
        : LATEST_PROTOCOL_VERSION;
    return {
      protocolVersion: this.protocolVersion,
      capabilities: { tools: { listChanged: false } },
      serverInfo: { name: this.identity.name, title: this.identity.title, version: this.identity.version },
      instructions: this.identity.instructions,
    };
  }

  private listTools(): Record<string, unknown>[] {
    return this.catalog.tools.map((t) => ({
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: t.inputSchema,
      annotations: {
        title: t.title,
        readOnlyHint: t.readOnly,
        destructiveHint: t.destructive,
        idempotentHint: t.idempotent,
        // Sandboxes are on the user's own servers, not the open internet.
        openWorldHint: false,
      },
    }));
  }

  private async callTool(
    id: JsonRpcId,
    params: Record<string, unknown>,
    emit?: Emit,
  ): Promise<JsonRpcResponse> {
    const name = params.name;
    if (typeof name !== 'string')
      return errorResponse(id, INVALID_PARAMS, 'tools/call needs params.name (a string).');
    if (!this.catalog.tool(name))
      return errorResponse(id, INVALID_PARAMS, `Unknown tool: ${name}. tools/list names the tools.`);
    const args = params.arguments;
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args)))
      return errorResponse(id, INVALID_PARAMS, 'params.arguments must be an object.');
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    const progress = this.progressSink(params, emit, name);
    try {
      const result = await this.catalog.call(name, args ?? {}, {
        signal: controller.signal,
        progress: progress?.report,
      });
      const structured = (typeof result === 'object' && result !== null ? result : { result }) as Record<
        string,
        unknown
      >;
      return this.ok(id, {
        content: [{ type: 'text', text: JSON.stringify(structured, null, 2) }],
        structuredContent: structured,
        isError: false,
      });
    } catch (err) {
      // Errors of the call itself (bad arguments included) go back to the model as a result it can act on.
      return this.ok(id, { content: [{ type: 'text', text: toolErrorMessage(err) }], isError: true });
    } finally {
      progress?.stop();
      this.inFlight.delete(id);
    }
  }

  /**
   * notifications/progress for a call whose client sent a progress token: each step the tool reports, and a
   * "still running" line when nothing was said for a while (an exec of a long command reports nothing else).
   * The progress value only grows, as the specification requires; there is no total (steps are not known ahead).
   */
  private progressSink(
    params: Record<string, unknown>,
    emit: Emit | undefined,
    tool: string,
  ): { report: (message: string) => void; stop: () => void } | undefined {
    const token = progressToken(params);
    if (token === undefined || !emit) return undefined;
    const started = Date.now();
    let count = 0;
    let last = started;
    let stopped = false;
    const report = (message: string) => {
      if (stopped) return;
      last = Date.now();
      emit({
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: token, progress: ++count, message },
      });
    };
    const timer = setInterval(() => {
      if (Date.now() - last >= this.heartbeatMs)
        report(`${tool}: still running (${Math.round((Date.now() - started) / 1000)} s)`);
    }, this.heartbeatMs / 3);
    timer.unref();
    return {
      report,
      stop: () => {
        stopped = true;
        clearInterval(timer);
      },
    };
  }
}
