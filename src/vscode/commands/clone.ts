// Clone: a new sandbox from a sandbox's current state or from one of its checkpoints. The clone gets its own
// SSH host key when the source's key was pinned here (a clone must not share a host identity).
import * as vscode from 'vscode';
import { AlreadyExistsError, CancelledError, ValidationError } from '../../core/errors';
import { nameClash, nameClashProblem, sandboxNameProblem, validateSandboxName } from '../../core/names';
import type { Sandbox } from '../../core/sandbox';
import { CommandIds } from '../commandIds';
import { answersOf, resolveSandbox } from '../pick';
import { announceCreated } from './sandbox';
import { withProgress } from '../progress';
import type { Services } from '../services';
import { registerCommand } from './register';

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
  validateSandboxName(newName);
  const clash = clashProblem(newName);
  if (clash) throw new AlreadyExistsError(clash);
  const name = newName;
  const backend = await services.registry.backend(source.serverId);
  const caps = await backend.capabilities();
  const sourceKeyPinned = (await services.ssh.hostKey(source.serverId, source.name)) !== undefined;
  if (!caps.writesResolveInSandbox && !sourceKeyPinned) {
    // Refused before anything is made: the clone's identity can only be written safely over SSH here.
    throw new ValidationError(
      `Cannot clone "${source.name}" on this server yet: the clone's own hostname, machine-id and SSH host key ` +
        `are written over SSH (the TrueNAS file API follows symbolic links as root on the NAS), and SSH access to ` +
        `"${source.name}" is not set up from this machine. Run "Pixels: Set Up SSH Access…" on it first.`,
    );
  }
  const clone = await withProgress(`Cloning "${source.name}" to "${name}"`, caps.cancel, async (op, step) => {
    let made = await backend.clone({ sandbox: source.name, checkpoint }, name, op);
    if (sourceKeyPinned && caps.writeFiles) {
      try {
        // The clone gets its own host key (and keeps running if the source was running).
        await services.ssh.installAndBoot(
          backend,
          source.serverId,
          name,
          made.status === 'running',
          op,
          step,
          { from: source.name },
        );
        made = await backend.get(name);
      } catch (err) {
        // A clone with the source's host identity must not stay behind.
        step('cleaning up');
        await backend
          .destroy(name)
          .catch((e: unknown) => services.log.error(`cleanup of clone ${name} failed: ${String(e)}`));
        throw err;
      }
    }
    return made;
  });
  // Egress rules live inside the sandbox, so the clone has the source's mode.
  await services.egress.set(source.serverId, name, services.egress.get(source.serverId, source.name));
  services.log.info(`cloned ${source.name}${checkpoint ? `@${checkpoint}` : ''} to ${name}`);
  await services.refresh.refreshNow(source.serverId);
  if (clone.status === 'running' && sourceKeyPinned && caps.writeFiles) {
    // A provisioned source: the clone's markers say every step is done except the SSH step (its host key is
    // new), so only that one runs; an unprovisioned source is left as it is.
    const sourceMode = services.provisioning.provisionedWith(source.serverId, source.name);
    let unreachable: unknown;
    const provisioned = await services.provisioning
      .isProvisioned(backend, source.serverId, name)
      .catch((err: unknown) => {
        services.log.warn(`clone ${name}: could not look for provisioning markers: ${String(err)}`);
        unreachable = err;
        return false;
      });
    // SSH did not come up for the marker check: the egress re-check would only wait for it a second time.
    if (unreachable !== undefined) {
      services.egressStatus.couldNotRecheck(source.serverId, name, 'cloning', unreachable);
      return { serverId: source.serverId, sandbox: clone };
    }
    if (provisioned) {
      await services.provisioning.rememberMode(source.serverId, name, sourceMode);
      await services.provisioning.provision(
        backend,
        source.serverId,
        name,
        services.egress.get(source.serverId, name) ?? 'unrestricted',
      );
    }
    const status = await services.egressStatus.recheck(
      backend,
      source.serverId,
      name,
      'cloning',
      services.egress.get(source.serverId, name),
    );
    if (status) await services.egress.set(source.serverId, name, status.policy.mode);
  }
  return { serverId: source.serverId, sandbox: clone };
}

export function registerCloneCommands(services: Services): void {
  registerCommand(services, CommandIds.clone, 'Clone sandbox', (arg) => cloneSandbox(services, arg));
}
