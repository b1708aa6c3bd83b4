// Checkpoints: create (label input, generated default), restore (modal: which newer checkpoints go), delete.
import * as vscode from 'vscode';
import { CancelledError, DependentClonesError } from '../../core/errors';
import { checkpointLabelProblem, defaultCheckpointLabel } from '../../core/names';
import type { Checkpoint } from '../../core/sandbox';
import {
  checkpointClash,
  createCheckpoint as createWorkflow,
  deleteCheckpoint as deleteWorkflow,
} from '../../workflows/checkpoints';
import { destroySandbox as destroyWorkflow } from '../../workflows/destroy';
import { restoreCheckpoint as restoreWorkflow } from '../../workflows/restore';
import { CommandIds } from '../commandIds';
import { askDependentClones, confirmDeleteCheckpoint, confirmRestore } from '../confirm';
import { answersOf, resolveCheckpoint, resolveSandbox } from '../pick';
import type { Services } from '../services';
import { workflowContext } from '../workflowContext';
import { cloneSandbox } from './clone';
import { registerCommand } from './register';

export async function createCheckpoint(services: Services, arg: unknown): Promise<Checkpoint | undefined> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, { placeHolder: 'Checkpoint which sandbox?' });
  const ctx = await workflowContext(services, target.serverId);
  // Known before the first keystroke, so a label in use is refused while typing, not after a round trip.
  const existing = new Set(
    (target.sandbox?.checkpoints ?? (await ctx.backend.listCheckpoints(target.name))).map((c) => c.label),
  );
  const problem = (v: string) => checkpointLabelProblem(v) ?? checkpointClash(target.name, v, existing);
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
  return createWorkflow(ctx, target.name, label, existing);
}

export async function restoreCheckpoint(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveCheckpoint(services, a, 'Restore which checkpoint?');
  const index = target.checkpoints.findIndex((c) => c.label === target.label);
  const newer = target.checkpoints.slice(0, index).map((c) => c.label);
  if (!(await confirmRestore(target.name, target.label, newer, a.confirm))) return false;
  const ctx = await workflowContext(services, target.serverId);
  const request = { name: target.name, label: target.label, newer };
  try {
    await restoreWorkflow(ctx, request);
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
    for (const dependent of err.dependents) await destroyWorkflow(ctx, { name: dependent });
    await restoreWorkflow(ctx, request);
  }
  return true;
}

export async function deleteCheckpoint(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveCheckpoint(services, a, 'Delete which checkpoint?');
  if (!(await confirmDeleteCheckpoint(target.name, target.label, a.confirm))) return false;
  await deleteWorkflow(await workflowContext(services, target.serverId), target.name, target.label);
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
