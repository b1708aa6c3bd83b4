// Incus checks, whenever it rewrites an instance's backup.yaml (at the end of a snapshot create or delete, a
// restore), that the instance has as many snapshot records as snapshot volume records.
// A snapshot being made at that moment has the first and not yet the second, so the other operation fails with
// this message and is reverted by Incus (internal/server/storage/backend.go, GenerateInstanceBackupConfig;
// instance/drivers/driver_common.go, snapshotCommon). Two windows checkpointing one sandbox at once hit it.
// A refused snapshot create or restore left nothing behind (Incus reverts it), so it is made again once the other
// snapshot is recorded; a refused snapshot delete had already deleted it (driver_lxc.go, Delete).
const SNAPSHOT_RACE = /Instance snapshot record count doesn't match instance snapshot volume record count/;

/** Pauses between attempts: the other snapshot's two records are written milliseconds apart. */
const DELAYS_MS = [100, 250, 500, 1000, 2000];

export function isSnapshotRace(err: unknown): boolean {
  return err instanceof Error && SNAPSHOT_RACE.test(err.message);
}

/** Runs `attempt`, again after a pause each time it fails only because a snapshot of the instance was being made. */
export async function retryingSnapshotRace<T>(
  attempt: () => Promise<T>,
  onRetry: (attemptNumber: number) => void = () => undefined,
  delaysMs: readonly number[] = DELAYS_MS,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isSnapshotRace(err) || n >= delaysMs.length) throw err;
      onRetry(n + 1);
      await new Promise((r) => setTimeout(r, delaysMs[n]));
    }
  }
}
