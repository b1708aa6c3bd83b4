// "Provision Sandbox…" (also the "Retry Provisioning" of a failed run): runs src/guest provisioning in a running
// sandbox whose host key is pinned here. Steps already done are skipped, so a retry resumes where it stopped.
import * as vscode from 'vscode';
import type { StepOutcome } from '../../guest/index';
import { CommandIds } from '../commandIds';
import { answersOf, resolveSandbox } from '../pick';
import type { Services } from '../services';
import { workflowContext } from '../workflowContext';
import { provisioningStatus, provisionSandbox as provisionWorkflow } from '../../workflows/provision';
import { registerCommand } from './register';

export async function provisionSandbox(services: Services, arg: unknown): Promise<StepOutcome[]> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, {
    placeHolder: 'Provision which sandbox?',
    states: ['running'],
  });
  return provisionWorkflow(await workflowContext(services, target.serverId), target.name);
}

/**
 * What provisioning left in a running sandbox, ours or the pixels CLI's (its zmx sessions and sentinel), read as
 * root: through the exec API, or over SSH when its host key is pinned here.
 */
export async function showProvisioningStatus(services: Services, arg: unknown): Promise<string[]> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, {
    placeHolder: 'Provisioning status of which sandbox?',
    states: ['running'],
  });
  const lines = await provisioningStatus(await workflowContext(services, target.serverId), target.name);
  if (a.show !== false)
    void vscode.window
      .showInformationMessage(`Provisioning of "${target.name}": ${lines.join('; ')}`, 'Show Logs')
      .then((choice) => choice && services.log.show());
  return lines;
}

export function registerProvisionCommands(services: Services): void {
  registerCommand(services, CommandIds.showProvisioningStatus, 'Show provisioning status', (arg) =>
    showProvisioningStatus(services, arg),
  );
  registerCommand(services, CommandIds.provisionSandbox, 'Provision sandbox', (arg) =>
    provisionSandbox(services, arg),
  );
}
