// Jobs as middleware runs them (job.py): integer ids from 1, a lock queue per lock name, and the core.get_jobs
// event sequence: ADDED (WAITING) -> CHANGED (RUNNING) -> CHANGED per progress change -> on success CHANGED
// (SUCCESS, progress 100) and one more CHANGED from the finally block; on failure/abort one CHANGED.
import type { SimVersion } from './context.js';
import type { SimObject, SimValue } from './ejson.js';
import { toJobFailure, type JobFailure } from './errors.js';
import type { EventHub } from './events.js';

export type JobState = 'WAITING' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'ABORTED';

export class JobAborted extends Error {
  constructor() {
    super('Job aborted');
  }
}

export interface JobRunContext {
  readonly id: number;
  /** set_progress: percent null keeps the current percent; an event is sent only on a change */
  progress(percent: number | null, description: string, extra?: SimValue): void;
  /** waits, and throws JobAborted if the job was aborted meanwhile */
  sleep(ms: number): Promise<void>;
  readonly aborted: boolean;
}

export interface JobSpec {
  method: string;
  arguments: SimValue[];
  credentials: SimObject | null;
  messageId: SimValue | undefined;
  lock: string | null;
  abortable: boolean;
  run(ctx: JobRunContext): Promise<SimValue>;
}

export class Job {
  state: JobState = 'WAITING';
  progress = { percent: 0 as number | null, description: '', extra: null as SimValue };
  result: SimValue = null;
  failure: JobFailure | null = null;
  /** the exception that failed the job (legacy_jobs=false replies are built from it) */
  cause: unknown = null;
  readonly timeStarted = new Date();
  timeFinished: Date | null = null;
  abortRequested = false;
  /** forgotten by a middleware restart: runs on (Incus finishes what it began) but is no longer reported */
  orphaned = false;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  wake: (() => void) | null = null;

  constructor(
    readonly id: number,
    readonly spec: JobSpec,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  finish(): void {
    this.resolveDone();
  }

  get finished(): boolean {
    return this.state === 'SUCCESS' || this.state === 'FAILED' || this.state === 'ABORTED';
  }

  toObject(version: SimVersion): SimObject {
    const obj: SimObject = { id: this.id };
    if (version !== '25.04') {
      obj.message_ids =
        this.spec.messageId === undefined || this.spec.messageId === null ? [] : [this.spec.messageId];
    }
    Object.assign(obj, {
      method: this.spec.method,
      arguments: this.spec.arguments,
      transient: false,
      description: null,
      abortable: this.spec.abortable,
      logs_path: null,
      logs_excerpt: null,
      progress: {
        percent: this.progress.percent,
        description: this.progress.description,
        extra: this.progress.extra,
      },
      result: this.result,
      result_encoding_error: null,
      error: this.failure?.error ?? null,
      exception: this.failure?.exception ?? null,
      exc_info: this.failure ? (this.failure.excInfo as unknown as SimValue) : null,
      state: this.state,
      time_started: this.timeStarted,
      time_finished: this.timeFinished,
      credentials: this.spec.credentials,
    });
    return obj;
  }
}

export class JobManager {
  private nextId = 1;
  private readonly jobs = new Map<number, Job>();
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    private readonly version: SimVersion,
    private readonly events: EventHub,
  ) {}

  get(id: number): Job | undefined {
    return this.jobs.get(id);
  }

  list(): Job[] {
    return [...this.jobs.values()];
  }

  /** Queues a job (ADDED event at once) and runs it when its lock is free. */
  submit(spec: JobSpec): Job {
    const job = new Job(this.nextId++, spec);
    this.jobs.set(job.id, job);
    this.emit(job, 'ADDED');
    const previous = spec.lock ? (this.locks.get(spec.lock) ?? Promise.resolve()) : Promise.resolve();
    const mine = previous.then(() => this.run(job));
    if (spec.lock) {
      const lock = spec.lock;
      const tail = mine.then(() => undefined);
      this.locks.set(lock, tail);
      void tail.then(() => {
        if (this.locks.get(lock) === tail) this.locks.delete(lock);
      });
    }
    return job;
  }

  /**
   * middlewared restarted: every job is forgotten and ids start from 1 again. What a running job began goes on
   * (the Incus operation or ZFS change under it does not stop with middlewared), unseen.
   */
  restart(): void {
    for (const job of this.jobs.values()) job.orphaned = true;
    this.jobs.clear();
    this.locks.clear();
    this.nextId = 1;
  }

  /** core.job_abort: WAITING/RUNNING jobs end ABORTED (at their next wait point when running). */
  abort(job: Job): void {
    if (job.finished) return;
    job.abortRequested = true;
    if (job.state === 'WAITING') {
      this.end(job, 'ABORTED'); // never started: ends now, and run() skips it when its lock frees
      return;
    }
    job.wake?.();
  }

  private async run(job: Job): Promise<void> {
    if (job.finished) return;
    job.state = 'RUNNING';
    this.emit(job, 'CHANGED');
    const ctx: JobRunContext = {
      id: job.id,
      progress: (percent, description, extra = null) => {
        const next = { percent: percent ?? job.progress.percent, description, extra };
        if (
          next.percent === job.progress.percent &&
          next.description === job.progress.description &&
          JSON.stringify(next.extra) === JSON.stringify(job.progress.extra)
        ) {
          return;
        }
        job.progress = next;
        this.emit(job, 'CHANGED');
      },
      sleep: (ms) =>
        new Promise<void>((resolve, reject) => {
          if (job.abortRequested) {
            reject(new JobAborted());
            return;
          }
          const timer = setTimeout(() => {
            job.wake = null;
            resolve();
          }, ms);
          job.wake = () => {
            clearTimeout(timer);
            job.wake = null;
            reject(new JobAborted());
          };
        }),
      get aborted() {
        return job.abortRequested;
      },
    };
    try {
      const result = await job.spec.run(ctx);
      if (job.abortRequested) throw new JobAborted();
      job.result = result;
      job.state = 'SUCCESS';
      job.timeFinished = new Date();
      if (job.progress.percent !== 100) {
        job.progress = { percent: 100, description: '', extra: job.progress.extra };
        this.emit(job, 'CHANGED');
      }
      this.emit(job, 'CHANGED');
      job.finish();
    } catch (error) {
      if (error instanceof JobAborted) {
        this.end(job, 'ABORTED');
        return;
      }
      job.cause = error;
      job.failure = toJobFailure(error);
      this.end(job, 'FAILED');
    }
  }

  private end(job: Job, state: 'FAILED' | 'ABORTED'): void {
    job.state = state;
    job.timeFinished = new Date();
    this.emit(job, 'CHANGED');
    job.finish();
  }

  private emit(job: Job, type: 'ADDED' | 'CHANGED'): void {
    if (job.orphaned) return;
    this.events.send('core.get_jobs', type, { id: job.id, fields: job.toObject(this.version) });
  }
}
