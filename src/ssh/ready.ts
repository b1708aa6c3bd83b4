// Readiness: poll until the sandbox has an address, its sshd answers with the pinned host key and our login
// works — within one deadline, and with a TimeoutError that says what was seen last (pixels waits forever).
import {
  CancelledError,
  ConnectionError,
  NotAuthenticatedError,
  SecurityError,
  TimeoutError,
} from '../core/errors';
import { connect, isJumpHostFailure, networkErrorCode, targetLabel, type SshTarget } from './connect';
import type { SshPool } from './pool';

export interface WaitForSshOptions {
  /** Overall deadline (default 120 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Pause between attempts (default 500 ms). */
  intervalMs?: number;
  /** When given, the successful connection stays open in the pool (the next exec/terminal is instant). */
  pool?: SshPool;
  /** Shown in messages when the target is still unknown, e.g. "sandbox dev". */
  label?: string;
}

/** A target, or a function that finds it (undefined while the sandbox has no IP address yet). */
export type TargetSource = SshTarget | (() => Promise<SshTarget | undefined>);

function describe(err: unknown): string {
  if (err instanceof SecurityError) return err.message;
  if (err instanceof NotAuthenticatedError)
    return 'sshd answered with the right host key but our login was refused';
  if (err instanceof TimeoutError) return 'the SSH handshake timed out';
  if (err instanceof ConnectionError) {
    const code = networkErrorCode(err);
    if (code === 'ECONNREFUSED') return 'connection refused (sshd not listening yet)';
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `host unreachable (${code})`;
    if (code === 'ETIMEDOUT') return 'the TCP connection timed out';
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves once SSH to the target works; TimeoutError on expiry, CancelledError when aborted. */
export async function waitForSsh(
  source: TargetSource,
  options: number | WaitForSshOptions = {},
): Promise<void> {
  const opts: WaitForSshOptions = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const interval = opts.intervalMs ?? 500;
  const deadline = Date.now() + timeoutMs;
  let lastSeen = 'nothing yet';
  let label = opts.label ?? (typeof source === 'function' ? 'the sandbox' : targetLabel(source));
  for (;;) {
    if (opts.signal?.aborted) throw new CancelledError();
    const target = typeof source === 'function' ? await source() : source;
    if (!target) {
      lastSeen = 'no IP address yet';
    } else {
      label = opts.label ?? targetLabel(target);
      const remaining = Math.max(1, deadline - Date.now());
      try {
        if (opts.pool) {
          await opts.pool.connect(target);
        } else {
          const client = await connect(target, {
            readyTimeoutMs: Math.min(remaining, 10_000),
            keepaliveIntervalMs: 0,
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
          client.end();
        }
        return;
      } catch (err) {
        // A jump host that refuses us will not change its mind while we wait.
        if (err instanceof CancelledError || isJumpHostFailure(err)) throw err;
        // An attempt cut short by our own deadline says less than what the previous attempt saw.
        const cutShort = err instanceof TimeoutError && remaining < 1000 && lastSeen !== 'nothing yet';
        if (!cutShort) lastSeen = describe(err);
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new TimeoutError(
        `SSH to ${label} was not ready within ${Math.round(timeoutMs / 1000)} s; last seen: ${lastSeen}.`,
      );
    }
    await sleep(Math.min(interval, left), opts.signal);
  }
}
