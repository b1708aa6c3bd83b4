// Background operations: every async call returns /1.0/operations/<id>; we wait on it with the server-side
// long poll (/wait), report progress from operation events, and cancel it when the caller aborts.
import {
  CancelledError,
  ConnectionError,
  NotFoundError,
  AlreadyExistsError,
  PixelsError,
  ServerError,
} from '../../core/errors';
import type { OperationOptions } from '../../core/sandbox';
import type { IncusEventStream } from './events';
import type { IncusEnvelope, IncusRestClient, RawResponse, RequestOptions } from './rest-client';
import { mapIncusError } from './rest-client';
import { OPERATION_REPLY } from './replies';

export interface IncusOperation {
  id: string;
  class?: string;
  description?: string;
  created_at?: string;
  status: string;
  status_code: number;
  err?: string;
  may_cancel?: boolean;
  metadata?: Record<string, unknown> | null;
  resources?: Record<string, string[]> | null;
}

/** Long-poll slice: the /wait request returns after this many seconds even if the operation still runs. */
const WAIT_SLICE_SEC = 25;
/** Broken connections a wait survives (each waited for again after a short pause). */
const LOST_WAITS = 3;
/** How Incus says a /wait slice ran out while the operation goes on. */
const SLICE_OVER = /deadline exceeded/i;

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
      const sentAt = Date.now();
      try {
        const started = await this.client.call<IncusOperation>(method, path, request);
        opId = started.metadata?.id ?? idOf(started);
      } catch (err) {
        // The request may have reached incusd and only its reply been lost: then the work goes on there, and
        // reporting a failure would leave it behind (a sandbox or a checkpoint the user was told was not made).
        // Incus lists an operation for a few seconds after it ends, with the instance it acts on.
        const resource = resourceOf(path, request);
        if (!(err instanceof ConnectionError) || !resource) throw err;
        const found = await this.findStarted(method, resource, sentAt).catch(() => undefined);
        if (!found) throw err;
        opId = found;
      }
      return await this.wait(opId, op?.signal);
    } finally {
      unsubscribe?.();
    }
  }

  /**
   * Waits until operation `id` ends, in server-side slices of WAIT_SLICE_SEC: an operation may run for any
   * length of time (a long command, a big image download); only the caller's signal ends the wait early.
   * A failed operation becomes a typed error.
   */
  async wait(id: string, signal?: AbortSignal): Promise<IncusOperation> {
    let lostWaits = 0;
    let garbledReplies = 0;
    for (;;) {
      if (signal?.aborted) {
        await this.cancel(id);
        throw new CancelledError();
      }
      const sliceStart = Date.now();
      let res: RawResponse;
      try {
        res = await this.client.raw('GET', `/1.0/operations/${id}/wait`, {
          query: { timeout: String(WAIT_SLICE_SEC) },
          timeoutMs: (WAIT_SLICE_SEC + 10) * 1000,
          signal,
        });
      } catch (err) {
        if (err instanceof CancelledError) await this.cancel(id);
        // A wait only reads: when its connection breaks, the operation goes on in incusd and is waited for
        // again, rather than reporting a failure for work the server is still doing.
        if (err instanceof ConnectionError && lostWaits < LOST_WAITS) {
          lostWaits += 1;
          await pause(500 * lostWaits, signal);
          continue;
        }
        throw err;
      }
      let env: IncusEnvelope<IncusOperation>;
      try {
        env = waitReply(res, id);
      } catch (err) {
        // Garbage instead of a reply: the operation is unaffected by it, so it is asked again (a few times) rather
        // than reported as failed while incusd goes on making what it was asked for.
        if (err instanceof ServerError && garbledReplies < LOST_WAITS) {
          garbledReplies += 1;
          await pause(500 * garbledReplies, signal);
          continue;
        }
        throw err;
      }
      let o: IncusOperation | undefined;
      if (env.type === 'error' || res.status >= 400) {
        const message = env.error ?? `HTTP ${res.status}`;
        if (!SLICE_OVER.test(message)) throw mapIncusError(res.status >= 400 ? res.status : 500, message);
        // Incus 6 answers a wait whose slice ran out with this error (LXD returned the running operation), but
        // also a wait on an operation that itself failed on a deadline (a stop that timed out): the
        // operation's own state tells which. One look per slice.
        o = await this.state(id);
        if (!o) throw operationError(message); // already gone: it ended with that error
      } else o = env.metadata;
      const ended = outcome(o);
      if (ended) return ended;
      // Still running: wait another slice; a server that ends slices early must not cause a busy loop.
      if (Date.now() - sliceStart < 1000) await pause(1000, signal);
    }
  }

  /**
   * The id of the operation a request whose reply was lost started: one that does what `method` does, on
   * `resource` (or something of it), created after the request went out. Clocks may differ: an operation from up
   * to a minute before counts when it is the only one.
   */
  private async findStarted(method: string, resource: string, sentAt: number): Promise<string | undefined> {
    const env = await this.client.call<Record<string, IncusOperation[] | null>>('GET', '/1.0/operations', {
      query: { recursion: '1' },
    });
    const all = Object.values(env.metadata ?? {}).flatMap((list) => (Array.isArray(list) ? list : []));
    const created = (o: IncusOperation) => Date.parse(o.created_at ?? '');
    const candidates = all.filter(
      (o) =>
        o.class === 'task' &&
        created(o) >= sentAt - 60_000 &&
        Object.values(o.resources ?? {}).some((list) => list.some((r) => actsOn(r, resource))) &&
        OPERATION_VERBS[method]?.test(o.description ?? '') !== false,
    );
    const recent = candidates.filter((o) => created(o) >= sentAt - 2000);
    // Only an unambiguous match: waiting on somebody else's operation would report their outcome as ours.
    if (recent.length === 1) return recent[0].id;
    return candidates.length === 1 ? candidates[0].id : undefined;
  }

  /** The operation as it is now, or undefined when Incus no longer knows it. */
  private async state(id: string): Promise<IncusOperation | undefined> {
    const res = await this.client.raw('GET', `/1.0/operations/${id}`);
    if (res.status === 404) return undefined;
    const env = parseEnvelope<IncusOperation>(res);
    if (env.type === 'error' || res.status >= 400)
      throw mapIncusError(res.status >= 400 ? res.status : 500, env.error ?? `HTTP ${res.status}`);
    const problem = OPERATION_REPLY(env.metadata);
    if (problem)
      throw new ServerError(
        `Incus answered GET /1.0/operations/${id} with a reply Pixels cannot use: ${problem}.`,
      );
    return env.metadata;
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

/**
 * The resource a request that starts an operation acts on, as Incus names it in the operation's resources: the
 * new snapshot for a snapshot, the instance otherwise (from the path, or the body of a create).
 */
function resourceOf(path: string, request: RequestOptions): string | undefined {
  const body = request.body as { name?: unknown } | undefined;
  const m = /^\/1\.0\/instances\/([^/?]+)(\/snapshots)?$/.exec(path);
  if (m && m[2] && typeof body?.name === 'string')
    return `/1.0/instances/${m[1]}/snapshots/${encodeURIComponent(body.name)}`;
  const instance = /^\/1\.0\/instances\/([^/?]+)/.exec(path);
  if (instance) return `/1.0/instances/${instance[1]}`;
  if (path === '/1.0/instances' && typeof body?.name === 'string')
    return `/1.0/instances/${encodeURIComponent(body.name)}`;
  return undefined;
}

/** A resource URL of an operation names `url` or something of it (a snapshot of the instance, ...). */
function actsOn(resource: string, url: string): boolean {
  const path = resource.split('?')[0];
  return path === url || path.startsWith(`${url}/`);
}

/** What Incus's operation descriptions say for each kind of request (Incus 6: "Creating instance", ...). */
const OPERATION_VERBS: Record<string, RegExp> = {
  POST: /^(Creating|Snapshotting|Migrating|Renaming|Copying)/i,
  PUT: /^(Restoring|Updating|Starting|Stopping|Restarting|Freezing|Unfreezing)/i,
  DELETE: /^Deleting/i,
};

function idOf(env: IncusEnvelope<unknown>): string {
  const m = /\/1\.0\/operations\/([^/?]+)/.exec(env.operation ?? '');
  if (!m) throw new ServerError('Incus started an operation without telling which one.');
  return m[1];
}

/** The finished operation, a typed error for a failed or cancelled one, or undefined while it runs. */
function outcome(o: IncusOperation): IncusOperation | undefined {
  if (o.status_code >= 400 || o.status === 'Failure') throw operationError(o.err || 'the operation failed');
  if (o.status === 'Cancelled') throw new CancelledError('The Incus operation was cancelled.');
  if (o.status === 'Success' || o.status_code === 200) return o;
  return undefined;
}

function parseEnvelope<T>(res: RawResponse): IncusEnvelope<T> {
  let env: unknown;
  try {
    env = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new ServerError(
      `Incus answered an operation wait (GET /1.0/operations) with HTTP ${res.status} and no JSON.`,
    );
  }
  if (typeof env !== 'object' || env === null || Array.isArray(env))
    throw new ServerError(
      `Incus answered an operation wait (GET /1.0/operations) with HTTP ${res.status} and no envelope.`,
    );
  return env as IncusEnvelope<T>;
}

/** The envelope of a /wait reply: an error envelope as it is, a success only with a usable operation in it. */
function waitReply(res: RawResponse, id: string): IncusEnvelope<IncusOperation> {
  const env = parseEnvelope<IncusOperation>(res);
  if (env.type === 'error' || res.status >= 400) return env;
  const problem = OPERATION_REPLY(env.metadata);
  if (problem)
    throw new ServerError(
      `Incus answered GET /1.0/operations/${id}/wait with a reply Pixels cannot use: ${problem}.`,
    );
  return env;
}

/** Sleeps `ms`, or less when `signal` aborts (the caller's loop then sees the abort). */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
