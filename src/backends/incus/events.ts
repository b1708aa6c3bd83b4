// The /1.0/events websocket: one connection per backend, opened when the first listener subscribes and
// reopened with backoff while anyone listens. Lifecycle events refresh the tree; operation events carry
// progress for operations we are waiting on.
import WebSocket from 'ws';
import type { Logger } from '../../core/log';
import type { IncusRestClient } from './rest-client';

export interface IncusEvent {
  type: 'lifecycle' | 'operation' | string;
  timestamp?: string;
  location?: string;
  project?: string;
  metadata: Record<string, unknown>;
}

export type EventListener = (event: IncusEvent) => void;
export type ConnectionListener = (connected: boolean) => void;

export class IncusEventStream {
  private ws?: WebSocket;
  private listeners = new Set<EventListener>();
  private connectionListeners = new Set<ConnectionListener>();
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs = 500;
  private closed = false;
  private opened?: Promise<void>;

  constructor(
    private readonly client: IncusRestClient,
    private readonly log: Logger,
  ) {}

  /** Subscribes; the stream connects on the first subscriber and closes when the last one leaves. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    void this.ensureOpen().catch(() => undefined);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.disconnect();
    };
  }

  onConnection(listener: ConnectionListener): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Resolves once the websocket is open (so a caller can subscribe before it starts an operation). */
  ensureOpen(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('event stream closed'));
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve();
    if (this.opened) return this.opened;
    const { url, options } = this.client.websocketTarget('/1.0/events', { type: 'lifecycle,operation' });
    const ws = new WebSocket(url, options);
    this.ws = ws;
    this.opened = new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        this.retryDelayMs = 500;
        this.log.debug(`incus events: connected (${this.client.endpoint})`);
        for (const l of [...this.connectionListeners]) l(true);
        resolve();
      });
      ws.once('error', (err) => reject(this.client.transportError(err)));
    });
    ws.on('message', (data: WebSocket.RawData) => {
      let event: IncusEvent;
      try {
        event = JSON.parse(data.toString()) as IncusEvent;
      } catch {
        return;
      }
      for (const l of [...this.listeners]) l(event);
    });
    ws.on('error', (err) => this.log.debug(`incus events: ${err.message}`));
    ws.on('close', () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.opened = undefined;
      for (const l of [...this.connectionListeners]) l(false);
      if (!this.closed && this.listeners.size > 0) this.scheduleRetry();
    });
    return this.opened;
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed && this.listeners.size > 0)
        void this.ensureOpen().catch((err: unknown) => {
          // The member we were connected to is gone: another member of the cluster carries the same events.
          if (this.client.failover(err)) this.retryDelayMs = 500;
          this.scheduleRetry();
        });
    }, delay);
    this.retryTimer.unref?.();
  }

  private disconnect(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    this.opened = undefined;
    ws?.close();
  }

  dispose(): void {
    this.closed = true;
    this.listeners.clear();
    this.connectionListeners.clear();
    this.disconnect();
  }
}
