// "Provision Sandbox…" (also the "Retry Provisioning" of a failed run): runs src/guest provisioning in a running
// sandbox whose host key is pinned here. Steps already done are skipped, so a retry resumes where it stopped.
import * as vscode from 'vscode';
import type { StepOutcome } from '../../guest/index';
import { CommandIds } from '../commandIds';
import { changeExecutor } from '../../workflows/egressTracker';
import { loadGuest } from '../../core/lazy';
import { answersOf, resolveSandbox } from '../pick';
import type { Services } from '../services';
import { workflowContext } from '../workflowContext';
import { provisionSandbox as provisionWorkflow } from '../../workflows/provision';
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
  const run = services.provisioning.run(target.serverId, target.name);
  let lines: string[];
  if (run?.active || run?.failed) {
    // This session's own run is the freshest word (and the tree shows its steps).
    lines = run.steps.map((s) => `${s.title}: ${s.alreadyDone ? 'done earlier' : s.state}`);
  } else {
    const backend = await services.registry.backend(target.serverId);
    const guest = await loadGuest();
    const exec = await changeExecutor(backend, target.serverId, target.name, services.ssh);
    const r = await exec(guest.provisioningStatusScript(), { timeoutMs: 30_000 });
    lines = guest.describeProvisioningStatus(guest.parseProvisioningStatus(r.output));
  }
  for (const line of lines) services.log.info(`provisioning status of ${target.name}: ${line}`);
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
