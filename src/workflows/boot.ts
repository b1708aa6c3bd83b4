// Provisioning and the egress policy install systemd units, so systemd must be up first.
import { CancelledError, TimeoutError } from '../core/errors';
import type { Executor } from '../guest/index';

/** Waits for systemd to say "running" (or "degraded"), bounded at 90 s; cancellable. */
export async function waitBooted(exec: Executor, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + 90_000;
  let last = 'nothing yet';
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new CancelledError();
    try {
      const r = await exec('timeout 20 systemctl is-system-running --wait 2>&1 || true', {
        timeoutMs: 30_000,
      });
      last = r.output.trim().split('\n').pop() ?? '';
      if (/^(running|degraded)$/.test(last)) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new TimeoutError(`The sandbox did not finish booting within 90 s (systemd said: ${last}).`);
}
