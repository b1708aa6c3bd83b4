// A deliberately dumb JSON-RPC client for the simulator's own tests: raw frames in, raw frames out, so the tests
// check the wire format itself (it is not the production client).
import { WebSocket, type ClientOptions } from 'ws';

export type Frame = Record<string, unknown>;

export interface RpcReply {
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: Record<string, unknown> };
}

export class RawClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;
  private readonly waiters = new Set<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(frame)) {
          this.waiters.delete(waiter);
          waiter.resolve(frame);
        }
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  static async connect(url: string, options: ClientOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(url, options);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawClient(ws);
  }

  /** Sends a text frame as is. */
  sendText(text: string): void {
    this.ws.send(text);
  }

  /** Waits for the first frame (already received or future) that matches. */
  waitFor(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: (f: Frame) => (clearTimeout(timer), resolve(f)) };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a frame`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async request(method: string, params?: unknown[], timeoutMs = 5000): Promise<RpcReply> {
    const id = this.nextId++;
    const message: Frame = { jsonrpc: '2.0', id, method };
    if (params !== undefined) message.params = params;
    this.ws.send(JSON.stringify(message));
    return (await this.waitFor(
      (f) => f.id === id && ('result' in f || 'error' in f),
      timeoutMs,
    )) as unknown as RpcReply;
  }

  /** Calls and returns the result, or throws with the error object in the message. */
  async call<T = unknown>(method: string, params?: unknown[], timeoutMs?: number): Promise<T> {
    const reply = await this.request(method, params, timeoutMs);
    if (reply.error) throw new Error(`${method}: ${JSON.stringify(reply.error)}`);
    return reply.result as T;
  }

  async login(apiKey: string, username = 'truenas_admin'): Promise<void> {
    const result = await this.call<{ response_type: string }>('auth.login_ex', [
      { mechanism: 'API_KEY_PLAIN', username, api_key: apiKey },
    ]);
    if (result.response_type !== 'SUCCESS') throw new Error(`login failed: ${result.response_type}`);
  }

  /** collection_update events received so far for a collection. */
  events(collection: string): Frame[] {
    return this.frames
      .filter((f) => f.method === 'collection_update')
      .map((f) => f.params as Frame)
      .filter((p) => p.collection === collection);
  }

  /** Waits until the job with this id reaches SUCCESS/FAILED/ABORTED (from core.get_jobs events). */
  async jobEnd(id: number, timeoutMs = 5000): Promise<Frame> {
    const frame = await this.waitFor((f) => {
      if (f.method !== 'collection_update') return false;
      const p = f.params as Frame;
      const fields = p.fields as Frame | undefined;
      return (
        p.collection === 'core.get_jobs' &&
        p.id === id &&
        !!fields &&
        ['SUCCESS', 'FAILED', 'ABORTED'].includes(String(fields.state))
      );
    }, timeoutMs);
    return (frame.params as Frame).fields as Frame;
  }

  close(): void {
    this.ws.close();
  }
}
