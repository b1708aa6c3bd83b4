// Create and delete a checkpoint (restore, which re-checks egress, is its own workflow: restore.ts).
import { AlreadyExistsError } from '../core/errors';
import { validateCheckpointLabel } from '../core/names';
import type { Checkpoint } from '../core/sandbox';
import type { WorkflowContext } from './context';

/** The problem of `label` as a new checkpoint of `name`, given its existing labels. */
export function checkpointClash(
  name: string,
  label: string,
  existing: ReadonlySet<string>,
): string | undefined {
  return existing.has(label)
    ? `"${name}" has a checkpoint "${label}" already; choose another label.`
    : undefined;
}

export async function createCheckpoint(
  ctx: WorkflowContext,
  name: string,
  label: string,
  /** Its checkpoint labels, when known; read from the server otherwise. */
  existing?: ReadonlySet<string>,
): Promise<Checkpoint> {
  validateCheckpointLabel(label);
  const labels = existing ?? new Set((await ctx.backend.listCheckpoints(name)).map((c) => c.label));
  const clash = checkpointClash(name, label, labels);
  if (clash) throw new AlreadyExistsError(clash);
  const checkpoint = await ctx.run(
    `Checkpointing "${name}"`,
    false,
    () => ctx.backend.createCheckpoint(name, label),
    true,
  );
  ctx.log.info(`created checkpoint ${label} of ${name}`);
  await ctx.changed();
  return checkpoint;
}

export async function deleteCheckpoint(ctx: WorkflowContext, name: string, label: string): Promise<void> {
  await ctx.run(
    `Deleting checkpoint "${label}"`,
    false,
    () => ctx.backend.deleteCheckpoint(name, label),
    true,
  );
  ctx.log.info(`deleted checkpoint ${label} of ${name}`);
  await ctx.changed();
}
