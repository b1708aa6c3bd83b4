// Background operations: every async call returns /1.0/operations/<id>; we wait on it with the server-side
// long poll (/wait), report progress from operation events, and cancel it when the caller aborts.
import {
  CancelledError,
  NotFoundError,
  AlreadyExistsError,
  PixelsError,
  ServerError,
} from '../../core/errors';
import type { OperationOptions } from '../../core/sandbox';
import type { IncusEventStream } from './events';
import type { IncusEnvelope, IncusRestClient, RequestOptions } from './rest-client';

export interface IncusOperation {
  id: string;
  class?: string;
  status: string;
  status_code: number;
  err?: string;
  may_cancel?: boolean;
  metadata?: Record<string, unknown> | null;
  resources?: Record<string, string[]> | null;
}

/** Long-poll slice: the /wait request returns after this many seconds even if the operation still runs. */
const WAIT_SLICE_SEC = 25;

export function operationError(message: string): PixelsError {
  const sentence = /[.!?]$/.test(message) ? message : `${message}.`;
  if (/not found/i.test(message)) return new NotFoundError(sentence);
  if (/already exists/i.test(message)) return new AlreadyExistsError(sentence);
  return new ServerError(`Incus: ${sentence}`);
}

/** Turns the progress fields Incus puts into operation metadata into one line. */
function progressOf(meta: Record<string, unknown> | null | undefined): {
  percent?: number;
  description?: string;
} {
  if (!meta) return {};
  const p = meta.progress as { percent?: string; stage?: string } | undefined;
  if (p && typeof p === 'object') {
    const percent = p.percent !== undefined ? Number(p.percent) : undefined;
    return { percent: Number.isFinite(percent) ? percent : undefined, description: p.stage };
  }
  for (const [k, v] of Object.entries(meta)) {
    if (k.endsWith('_progress') && typeof v === 'string') {
      const m = /(\d+)%/.exec(v);
      return { percent: m ? Number(m[1]) : undefined, description: v };
    }
  }
  return {};
}

export class Operations {
  constructor(
    private readonly client: IncusRestClient,
    private readonly events: IncusEventStream,
  ) {}

  /** Sends a request that starts an operation and waits for it; returns the finished operation. */
  async run(
    method: string,
    path: string,
    request: RequestOptions,
    op?: OperationOptions,
  ): Promise<IncusOperation> {
    let unsubscribe: (() => void) | undefined;
    let opId: string | undefined;
    if (op?.onProgress) {
      // Subscribe first so no progress event is lost between the request and the wait.
      const onProgress = op.onProgress;
      unsubscribe = this.events.subscribe((event) => {
        if (event.type !== 'operation' || !opId) return;
        const meta = event.metadata as unknown as IncusOperation;
        if (meta.id !== opId) return;
        const report = progressOf(meta.metadata);
        if (report.description || report.percent !== undefined) onProgress(report);
      });
      await this.events.ensureOpen().catch(() => undefined);
    }
    try {
      if (op?.signal?.aborted) throw new CancelledError();
      // The starting request is not abortable: once sent, the server acts on it whatever we do, so we learn the
      // operation id and let wait() cancel it (or wait for its end) for a clean undo.
      const started = await this.client.call<IncusOperation>(method, path, request);
      opId = started.metadata?.id ?? idOf(started);
      return await this.wait(opId, op?.signal);
    } finally {
      unsubscribe?.();
    }
  }

  /** Waits until operation `id` ends; a failed operation becomes a typed error. */
  async wait(id: string, signal?: AbortSignal): Promise<IncusOperation> {
    for (;;) {
      if (signal?.aborted) {
        await this.cancel(id);
        throw new CancelledError();
      }
      let env: IncusEnvelope<IncusOperation>;
      try {
        env = await this.client.call<IncusOperation>('GET', `/1.0/operations/${id}/wait`, {
          query: { timeout: String(WAIT_SLICE_SEC) },
          timeoutMs: (WAIT_SLICE_SEC + 10) * 1000,
          signal,
        });
      } catch (err) {
        if (err instanceof CancelledError) {
          await this.cancel(id);
          throw err;
        }
        throw err;
      }
      const o = env.metadata;
      if (o.status_code >= 400 || o.status === 'Failure')
        throw operationError(o.err || 'the operation failed');
      if (o.status === 'Cancelled') throw new CancelledError('The Incus operation was cancelled.');
      if (o.status === 'Success' || o.status_code === 200) return o;
    }
  }

  /**
   * Asks Incus to cancel, then waits (bounded) until the operation has really ended, so the caller can clean up
   * what it made: most Incus operations cannot be cancelled and simply run to their end.
   */
  private async cancel(id: string): Promise<void> {
    await this.client.call('DELETE', `/1.0/operations/${id}`).catch(() => undefined);
    await this.client
      .call('GET', `/1.0/operations/${id}/wait`, { query: { timeout: '60' }, timeoutMs: 70_000 })
      .catch(() => undefined);
  }
}

function idOf(env: IncusEnvelope<unknown>): string {
  const m = /\/1\.0\/operations\/([^/?]+)/.exec(env.operation ?? '');
  if (!m) throw new ServerError('Incus started an operation without telling which one.');
  return m[1];
}
