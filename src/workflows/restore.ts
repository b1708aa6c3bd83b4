// Restore: the sandbox goes back to a checkpoint (newer checkpoints go with it) → the provisioning run of the old
// state is forgotten → the egress policy of the restored state is re-checked (it may be an older one).
import { DependentClonesError } from '../core/errors';
import type { EgressRecheck } from '../guest/index';
import type { WorkflowContext } from './context';
import { destroySandbox } from './destroy';

export interface RestoreRequest {
  name: string;
  label: string;
  /** The checkpoints newer than `label` that go with the restore (for the log). */
  newer?: readonly string[];
  /**
   * Clones that depend on newer checkpoints block the restore (DependentClonesError, nothing stopped yet).
   * 'destroy': destroy them (the sandboxes the server named) and restore. Absent: the error is thrown.
   */
  dependents?: 'destroy';
}

/**
 * Restores and re-checks. Returns the egress status found after the restore (undefined when it could not be read:
 * the sandbox is stopped, or there is no way in). Throws DependentClonesError before anything was stopped when
 * clones depend on newer checkpoints, unless `dependents: 'destroy'` (the caller asked first; or clone instead).
 */
export async function restoreCheckpoint(
  ctx: WorkflowContext,
  request: RestoreRequest,
): Promise<EgressRecheck | undefined> {
  const { backend, serverId } = ctx;
  const { name, label } = request;
  const newer = request.newer ?? [];
  const caps = await backend.capabilities();
  const restore = () =>
    ctx.run(`Restoring "${name}" to "${label}"`, caps.cancel, (op) =>
      backend.restoreCheckpoint(name, label, op),
    );
  try {
    await restore();
  } catch (err) {
    // Destroying needs to know what to destroy (Incus on ZFS does not say; other datasets are not sandboxes).
    if (!(err instanceof DependentClonesError) || request.dependents !== 'destroy' || !err.dependents.length)
      throw err;
    for (const dependent of err.dependents) await destroySandbox(ctx, { name: dependent });
    await restore();
  }
  ctx.log.info(`restored ${name} to ${label}${newer.length ? ` (removed ${newer.join(', ')})` : ''}`);
  ctx.provisioning.forget(serverId, name);
  await ctx.changed();
  // The restored state has its own policy (and maybe an older one): check that it holds.
  const status = await ctx.egressStatus.recheck(
    backend,
    serverId,
    name,
    `restoring "${label}"`,
    ctx.egress.get(serverId, name),
  );
  if (status) await ctx.egress.set(serverId, name, status.policy.mode);
  return status;
}
