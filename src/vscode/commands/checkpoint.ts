// Checkpoints: create (label input, generated default), restore (modal: which newer checkpoints go), delete.
import * as vscode from 'vscode';
import { AlreadyExistsError, CancelledError, DependentClonesError } from '../../core/errors';
import { checkpointLabelProblem, defaultCheckpointLabel, validateCheckpointLabel } from '../../core/names';
import type { Checkpoint } from '../../core/sandbox';
import { CommandIds } from '../commandIds';
import { askDependentClones, confirmDeleteCheckpoint, confirmRestore } from '../confirm';
import { answersOf, resolveCheckpoint, resolveSandbox } from '../pick';
import { withProgress } from '../progress';
import type { Services } from '../services';
import { cloneSandbox } from './clone';
import { registerCommand } from './register';
import { destroySandbox } from './sandbox';

export async function createCheckpoint(services: Services, arg: unknown): Promise<Checkpoint | undefined> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, { placeHolder: 'Checkpoint which sandbox?' });
  const backend = await services.registry.backend(target.serverId);
  // Known before the first keystroke, so a label in use is refused while typing, not after a round trip.
  const existing = new Set(
    (target.sandbox?.checkpoints ?? (await backend.listCheckpoints(target.name))).map((c) => c.label),
  );
  const problem = (v: string) =>
    checkpointLabelProblem(v) ??
    (existing.has(v) ? `"${target.name}" has a checkpoint "${v}" already; choose another label.` : undefined);
  let label = typeof a.label === 'string' ? a.label : undefined;
  if (label === undefined) {
    label = await vscode.window.showInputBox({
      title: `Create Checkpoint of "${target.name}"`,
      prompt: 'Checkpoint label',
      value: defaultCheckpointLabel(),
      validateInput: problem,
      ignoreFocusOut: true,
    });
    if (label === undefined) throw new CancelledError();
  }
  validateCheckpointLabel(label);
  if (existing.has(label)) throw new AlreadyExistsError(problem(label)!);
  const checkpoint = await withProgress(
    `Checkpointing "${target.name}"`,
    false,
    () => backend.createCheckpoint(target.name, label),
    vscode.ProgressLocation.Window,
  );
  services.log.info(`created checkpoint ${label} of ${target.name}`);
  await services.refresh.refreshNow(target.serverId);
  return checkpoint;
}

export async function restoreCheckpoint(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveCheckpoint(services, a, 'Restore which checkpoint?');
  const index = target.checkpoints.findIndex((c) => c.label === target.label);
  const newer = target.checkpoints.slice(0, index).map((c) => c.label);
  if (!(await confirmRestore(target.name, target.label, newer, a.confirm))) return false;
  const backend = await services.registry.backend(target.serverId);
  const caps = await backend.capabilities();
  const restore = () =>
    withProgress(`Restoring "${target.name}" to "${target.label}"`, caps.cancel, (op) =>
      backend.restoreCheckpoint(target.name, target.label, op),
    );
  try {
    await restore();
  } catch (err) {
    // Refused before anything was stopped: offer what can be done instead of only the error.
    if (!(err instanceof DependentClonesError)) throw err;
    const choice = await askDependentClones(
      err.message,
      target.label,
      err.otherDatasets.length ? [] : err.dependents,
      a.dependents,
    );
    // Destroying needs to know what to destroy (Incus on ZFS does not say).
    if (choice === undefined || (choice === 'destroy' && !err.dependents.length)) throw err;
    if (choice === 'clone') {
      // The sandbox itself stays as it is: nothing was restored.
      await cloneSandbox(services, {
        server: target.serverId,
        name: target.name,
        label: target.label,
        newName: a.newName,
      });
      return false;
    }
    for (const dependent of err.dependents)
      await destroySandbox(services, { server: target.serverId, name: dependent, confirm: true });
    await restore();
  }
  services.log.info(
    `restored ${target.name} to ${target.label}${newer.length ? ` (removed ${newer.join(', ')})` : ''}`,
  );
  services.provisioning.forget(target.serverId, target.name);
  await services.refresh.refreshNow(target.serverId);
  // The restored state has its own policy (and maybe an older one): check that it holds.
  const status = await services.egressStatus.recheck(
    backend,
    target.serverId,
    target.name,
    `restoring "${target.label}"`,
    services.egress.get(target.serverId, target.name),
  );
  if (status) await services.egress.set(target.serverId, target.name, status.policy.mode);
  return true;
}

export async function deleteCheckpoint(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveCheckpoint(services, a, 'Delete which checkpoint?');
  if (!(await confirmDeleteCheckpoint(target.name, target.label, a.confirm))) return false;
  const backend = await services.registry.backend(target.serverId);
  await withProgress(
    `Deleting checkpoint "${target.label}"`,
    false,
    () => backend.deleteCheckpoint(target.name, target.label),
    vscode.ProgressLocation.Window,
  );
  services.log.info(`deleted checkpoint ${target.label} of ${target.name}`);
  await services.refresh.refreshNow(target.serverId);
  return true;
}

export function registerCheckpointCommands(services: Services): void {
  registerCommand(services, CommandIds.createCheckpoint, 'Create checkpoint', (arg) =>
    createCheckpoint(services, arg),
  );
  registerCommand(services, CommandIds.restoreCheckpoint, 'Restore checkpoint', (arg) =>
    restoreCheckpoint(services, arg),
  );
  registerCommand(services, CommandIds.deleteCheckpoint, 'Delete checkpoint', (arg) =>
    deleteCheckpoint(services, arg),
  );
}
