// Putting an egress policy into a freshly booted sandbox (create without provisioning; with provisioning the
// policy is provisioning's first step).
import { ServerError } from '../core/errors';
import { loadGuest } from './lazy';
import type { EgressMode, OperationOptions } from '../core/sandbox';
import type { Executor } from '../guest/index';
import { waitBooted } from './boot';
import type { WorkflowContext } from './context';

/**
 * Applies the egress policy inside a freshly booted sandbox, as root: through the server's exec API when it has
 * one (Incus), else over SSH with the key just installed (TrueNAS), after waiting for sshd. Throws ServerError when
 * the policy does not hold afterwards; the host guard follows it.
 */
export async function applyEgressPolicy(
  ctx: WorkflowContext,
  name: string,
  mode: EgressMode,
  op: OperationOptions,
  step: (message: string) => void,
): Promise<void> {
  const guest = await loadGuest();
  const { backend, serverId } = ctx;
  let exec: Executor;
  if (backend.exec) {
    exec = guest.backendExecutor(backend, name);
  } else {
    step('waiting for SSH');
    const target = await ctx.ssh.readyTarget(backend, serverId, name, op.signal, 'root');
    exec = guest.sshExecutor(await ctx.ssh.pool(), target);
  }
  step('waiting for the sandbox to finish booting');
  await waitBooted(exec, op.signal);
  step(`applying the "${mode}" egress policy`);
  const inputs = ctx.egressInputs();
  const status = await guest.applyEgress(
    exec,
    guest.buildPolicy(mode, inputs.allow, { presetExtra: inputs.agentExtra }),
  );
  if (status.policy.mode !== mode || (mode !== 'unrestricted' && !status.enforced))
    throw new ServerError(`The "${mode}" egress policy could not be enforced inside "${name}".`);
  ctx.egressStatus.set(serverId, name, status);
  ctx.log.info(`sandbox ${name}: egress ${mode} enforced (${status.effective.length} allowed entries)`);
  step('host guard');
  await ctx.egressStatus.syncHostGuard(backend, serverId, name, status.policy);
}
