// "Create Sandbox and Open…" (pixels create --console): the create steps, provisioning with live progress, then
// Open in Sandbox (this window or a new one) or a terminal, in one flow. A failed provisioning step stops the flow
// there and offers Retry (resumes at that step) or Destroy, so nothing half-made is left unless the user says so.
import * as vscode from 'vscode';
import { CancelledError } from '../../core/errors';
import type { Sandbox } from '../../core/sandbox';
import { CommandIds } from '../commandIds';
import { reportErrorAndAsk } from '../errors';
import { answersOf } from '../pick';
import { ProvisioningFailed } from '../../workflows/provision';
import type { Services } from '../services';
import { provisionSandbox } from './provision';
import { registerCommand } from './register';
import { createSandbox, destroySandbox } from './sandbox';

export type OpenChoice = 'window' | 'newWindow' | 'terminal';

const OPEN_CHOICES: { label: string; description: string; value: OpenChoice }[] = [
  { label: '$(window) Open in Sandbox', description: 'this window, through Remote-SSH', value: 'window' },
  { label: '$(empty-window) Open in a New Window', description: 'through Remote-SSH', value: 'newWindow' },
  { label: '$(terminal) Open Terminal', description: 'a login shell in the sandbox', value: 'terminal' },
];

/** Retry / Destroy after a failed provisioning step, until it succeeds or the user stops. */
async function recoverProvisioning(
  services: Services,
  failure: ProvisioningFailed,
): Promise<Sandbox | undefined> {
  const target = { server: failure.serverId, name: failure.sandboxName };
  let err: unknown = failure;
  for (;;) {
    const choice = await reportErrorAndAsk(services.log, 'Create sandbox', err, ['Retry', 'Destroy Sandbox']);
    if (choice === 'Retry') {
      try {
        await provisionSandbox(services, target);
        return await (await services.registry.backend(failure.serverId)).get(failure.sandboxName);
      } catch (next) {
        if (!(next instanceof ProvisioningFailed)) throw next;
        err = next;
        continue;
      }
    }
    if (choice === 'Destroy Sandbox') await destroySandbox(services, { ...target, confirm: true });
    // Dismissed: the sandbox stays, its failed step is shown in the tree with "Retry Provisioning".
    return undefined;
  }
}

async function chooseOpen(name: string, given: unknown): Promise<OpenChoice> {
  if (given === 'window' || given === 'newWindow' || given === 'terminal') return given;
  const pick = await vscode.window.showQuickPick(OPEN_CHOICES, {
    title: `Sandbox "${name}" is ready`,
    placeHolder: 'Open it how?',
    ignoreFocusOut: true,
  });
  if (!pick) throw new CancelledError();
  return pick.value;
}

/**
 * Test answers: everything createSandbox takes, plus `open` ('window' | 'newWindow' | 'terminal') and
 * `requireRemoteSsh`. Returns what the open step returned (the remote URI, or the terminal).
 */
export async function createAndOpen(services: Services, arg: unknown): Promise<unknown> {
  const a = answersOf(arg);
  let sandbox: Sandbox | undefined;
  let serverId: string | undefined;
  try {
    sandbox = await createSandbox(services, { ...a, announce: false }, (id) => (serverId = id));
  } catch (err) {
    if (!(err instanceof ProvisioningFailed)) throw err;
    sandbox = await recoverProvisioning(services, err);
  }
  if (!sandbox || !serverId) return undefined;
  const how = await chooseOpen(sandbox.name, a.open);
  const target = { server: serverId, name: sandbox.name, requireRemoteSsh: a.requireRemoteSsh };
  if (how === 'terminal') return vscode.commands.executeCommand(CommandIds.openTerminal, target);
  return vscode.commands.executeCommand(
    how === 'newWindow' ? CommandIds.openInSandboxNewWindow : CommandIds.openInSandbox,
    target,
  );
}

export function registerCreateAndOpenCommand(services: Services): void {
  registerCommand(services, CommandIds.createAndOpen, 'Create sandbox and open', (arg) =>
    createAndOpen(services, arg),
  );
}
