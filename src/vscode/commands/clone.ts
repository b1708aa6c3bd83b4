// Clone: a new sandbox from a sandbox's current state or from one of its checkpoints. The clone gets its own
// SSH host key when the source's key was pinned here (a clone must not share a host identity).
import * as vscode from 'vscode';
import { CancelledError } from '../../core/errors';
import { nameClash, nameClashProblem, sandboxNameProblem } from '../../core/names';
import type { Sandbox } from '../../core/sandbox';
import { cloneSandbox as cloneWorkflow } from '../../workflows/clone';
import { CommandIds } from '../commandIds';
import { answersOf, resolveSandbox } from '../pick';
import { choosePlacement } from '../placement';
import type { Services } from '../services';
import { workflowContext } from '../workflowContext';
import { registerCommand } from './register';
import { announceCreated } from './sandbox';

export async function cloneSandbox(services: Services, arg: unknown): Promise<Sandbox | undefined> {
  const clone = await cloneWithChecks(services, arg);
  if (!clone) return undefined;
  void vscode.commands.executeCommand('setContext', 'pixels.createdSandbox', true);
  announceCreated(services, clone.serverId, clone.sandbox.name, 'is ready (a clone)');
  return clone.sandbox;
}

async function cloneWithChecks(
  services: Services,
  arg: unknown,
): Promise<{ serverId: string; sandbox: Sandbox } | undefined> {
  const a = answersOf(arg);
  const source = await resolveSandbox(services, a, { placeHolder: 'Clone which sandbox?' });
  const checkpoint = typeof a.label === 'string' ? a.label : undefined;
  const serverLabel = services.registry.server(source.serverId).label;
  const names = services.store.sandboxes(source.serverId).map((s) => s.name);
  const clashProblem = (n: string) => {
    const other = nameClash(n, names);
    return other ? nameClashProblem(n, other, serverLabel) : undefined;
  };
  let newName = typeof a.newName === 'string' ? a.newName : undefined;
  if (newName === undefined) {
    newName = await vscode.window.showInputBox({
      title: `Clone "${source.name}"${checkpoint ? ` at checkpoint "${checkpoint}"` : ''}`,
      prompt: 'Name of the new sandbox',
      value: `${source.name}-clone`,
      validateInput: (v) => sandboxNameProblem(v) ?? clashProblem(v),
      ignoreFocusOut: true,
    });
    if (newName === undefined) throw new CancelledError();
  }
  const ctx = await workflowContext(services, source.serverId);
  const target = await choosePlacement(services, source.serverId, ctx.backend, a.target, `"${newName}"`);
  const sandbox = await cloneWorkflow(ctx, {
    source: source.name,
    checkpoint,
    name: newName,
    knownNames: names,
    target,
  });
  return { serverId: source.serverId, sandbox };
}

export function registerCloneCommands(services: Services): void {
  registerCommand(services, CommandIds.clone, 'Clone sandbox', (arg) => cloneSandbox(services, arg));
}
