// Job tracking: a job method returns an id; its end arrives as `core.get_jobs` collection_update events (or
// from polling core.get_jobs after a reconnect). The state machine is here, independent of sockets.
import { CancelledError, ConnectionError } from '../../core/errors';
import type { PixelsError } from '../../core/errors';
import type { ProgressReport } from '../../core/sandbox';
import { JobFailure, mapJobFailure } from './errors';

export type JobState = 'WAITING' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'ABORTED';

export interface JobRecord extends JobFailure {
  id: number;
  method?: string;
  arguments?: unknown[];
  state: JobState;
  progress?: { percent?: number | null; description?: string | null } | null;
  result?: unknown;
}

/** What a job was started with: a record with the same id but another method or arguments is not ours. */
export interface JobIdentity {
  method: string;
  arguments: unknown[];
}

/** A stable text form of a JSON value (object keys sorted), to compare arguments. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Whether a job record can be the job started with `identity` (fields a record lacks cannot tell). */
function belongsTo(job: JobRecord, identity: JobIdentity | undefined): boolean {
  if (!identity) return true;
  if (job.method !== undefined && job.method !== identity.method) return false;
  if (Array.isArray(job.arguments) && canonical(job.arguments) !== canonical(identity.arguments))
    return false;
  return true;
}

interface Waiter {
  context: string;
  identity?: JobIdentity;
  resolve: (result: unknown) => void;
  reject: (err: PixelsError) => void;
  onProgress?: (p: ProgressReport) => void;
  lastProgress?: string;
  aborted: boolean;
}

export function isTerminal(state: string): boolean {
  return state === 'SUCCESS' || state === 'FAILED' || state === 'ABORTED';
}

/**
 * Waiters by job id. Events for ids nobody waits for yet are remembered (bounded), because a fast job can
 * finish before its id reaches us.
 */
export class JobTracker {
  private waiters = new Map<number, Waiter>();
  private early = new Map<number, JobRecord>();
  private static readonly EARLY_LIMIT = 200;

  /**
   * Starts waiting for `id`; resolves with the job result, rejects with a typed error. With `identity`, a record
   * of another job under the same id (ids start from 1 again when middlewared restarts) is never taken for ours.
   */
  wait(
    id: number,
    context: string,
    onProgress?: (p: ProgressReport) => void,
    identity?: JobIdentity,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { context, identity, resolve, reject, onProgress, aborted: false });
      const seen = this.early.get(id);
      if (seen) {
        this.early.delete(id);
        if (belongsTo(seen, identity)) this.update(seen);
      }
    });
  }

  /** Forgets remembered ends: the server restarted, so the ids they carry now name other jobs. */
  forgetEarly(): void {
    this.early.clear();
  }

  /** Ids still waited for (polled after a reconnect). */
  pendingIds(): number[] {
    return [...this.waiters.keys()];
  }

  isWaiting(id: number): boolean {
    return this.waiters.has(id);
  }

  /** Marks a job as aborted by us, so ABORTED becomes a CancelledError. */
  markAborted(id: number): void {
    const w = this.waiters.get(id);
    if (w) w.aborted = true;
  }

  /** Fails one waiter (e.g. its job vanished from the server). */
  fail(id: number, err: PixelsError): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.reject(err);
  }

  /** Feeds a job object (event `fields` or a core.get_jobs row). Partial objects must at least carry `state`. */
  update(job: JobRecord): void {
    const w = this.waiters.get(job.id);
    if (!w) {
      if (isTerminal(job.state)) {
        this.early.set(job.id, job);
        if (this.early.size > JobTracker.EARLY_LIMIT) {
          const oldest = this.early.keys().next().value;
          if (oldest !== undefined) this.early.delete(oldest);
        }
      }
      return;
    }
    if (!belongsTo(job, w.identity)) {
      this.waiters.delete(job.id);
      w.reject(
        new ConnectionError(
          `${w.context}: job ${job.id} on the server is another job now (the server restarted); the outcome is unknown.`,
        ),
      );
      return;
    }
    if (job.progress && w.onProgress) {
      const percent = typeof job.progress.percent === 'number' ? job.progress.percent : undefined;
      const description = job.progress.description || undefined;
      const key = `${percent}|${description}`;
      if (key !== w.lastProgress && (percent !== undefined || description !== undefined)) {
        w.lastProgress = key;
        try {
          w.onProgress({ percent, description });
        } catch {
          // A failing progress listener must not break job tracking.
        }
      }
    }
    switch (job.state) {
      case 'SUCCESS':
        this.waiters.delete(job.id);
        w.resolve(job.result);
        return;
      case 'FAILED':
        this.waiters.delete(job.id);
        w.reject(mapJobFailure(job, w.context));
        return;
      case 'ABORTED':
        this.waiters.delete(job.id);
        w.reject(
          w.aborted
            ? new CancelledError(`${w.context} was cancelled.`)
            : mapJobFailure({ ...job, error: job.error || 'the job was aborted on the server' }, w.context),
        );
        return;
      default:
        return;
    }
  }

  /** Rejects every waiter (client disposed). */
  failAll(err: PixelsError): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of all) w.reject(err);
  }
}
