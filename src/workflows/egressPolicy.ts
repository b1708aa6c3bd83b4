// Reading and changing a running sandbox's egress policy (Show Egress Policy, Set Egress Mode, Allow / Deny
// Domain): one src/guest call inside the sandbox as root, then the tracker, the remembered mode and the host guard
// follow what the sandbox says.
import type { HostGuardState } from '../core/backend';
import { ValidationError } from '../core/errors';
import { loadGuest } from './lazy';
import type { EgressStatus } from '../guest/index';
import type { WorkflowContext } from './context';
import { changeExecutor } from './egressTracker';

/** What the sandbox says, plus the host guard as put in line with it (or why it could not be). */
export type EgressReport = EgressStatus & { hostGuard?: HostGuardState; hostGuardProblem?: string };

/**
 * Reads the policy from inside the sandbox (quiet phase `Reading the egress policy of "<name>"`) and puts the host
 * guard in line with it (it may have changed where we could not see it). A host guard that cannot follow does not
 * hide the sandbox's own policy: `hostGuardProblem` says why.
 */
export async function readEgress(ctx: WorkflowContext, name: string): Promise<EgressReport> {
  const { backend, serverId } = ctx;
  const guest = await loadGuest();
  const status = await ctx.run(
    `Reading the egress policy of "${name}"`,
    false,
    async () => guest.showEgress(await changeExecutor(backend, serverId, name, ctx.ssh)),
    true,
  );
  ctx.egressStatus.set(serverId, name, status);
  let hostGuard: HostGuardState | undefined;
  let hostGuardProblem: string | undefined;
  try {
    hostGuard = await ctx.egressStatus.syncHostGuard(backend, serverId, name, status.policy);
  } catch (err) {
    hostGuardProblem = err instanceof Error ? err.message : String(err);
    ctx.log.warn(hostGuardProblem);
  }
  return { ...status, hostGuard, hostGuardProblem };
}

async function changed(ctx: WorkflowContext, name: string, status: EgressStatus): Promise<void> {
  ctx.egressStatus.set(ctx.serverId, name, status);
  await ctx.egress.set(ctx.serverId, name, status.policy.mode);
  ctx.log.info(
    `sandbox ${name}: egress ${status.policy.mode}, ${status.effective.length} allowed, enforced=${status.enforced}`,
  );
  await ctx.egressStatus.syncHostGuard(ctx.backend, ctx.serverId, name, status.policy);
}

/**
 * Sets the mode (phase `Setting egress of "<name>" to <mode>`). ValidationError for a mode that is not one of
 * ours, and when the policy does not hold afterwards.
 */
export async function setEgress(ctx: WorkflowContext, name: string, mode: string): Promise<EgressStatus> {
  const guest = await loadGuest();
  const valid = guest.validateEgressMode(mode);
  const status = await ctx.run(`Setting egress of "${name}" to ${valid}`, false, async () =>
    guest.setEgressMode(await changeExecutor(ctx.backend, ctx.serverId, name, ctx.ssh), valid, {
      presetExtra: ctx.egressInputs().agentExtra,
    }),
  );
  await changed(ctx, name, status);
  if (status.policy.mode !== 'unrestricted' && !status.enforced)
    throw new ValidationError(`The "${valid}" egress policy could not be enforced inside "${name}".`);
  return status;
}

/** Throws ValidationError with the reason when `entry` is not a domain, an address or a CIDR range. */
export async function checkEgressEntry(entry: string): Promise<string> {
  const guest = await loadGuest();
  const value = entry.trim();
  const problem = guest.egressEntryProblem(value);
  if (problem) throw new ValidationError(problem);
  return value;
}

/** Adds an entry to the allow list (phase `Allowing <entry> in "<name>"`). */
export async function allowEgress(ctx: WorkflowContext, name: string, entry: string): Promise<EgressStatus> {
  const guest = await loadGuest();
  const value = await checkEgressEntry(entry);
  const status = await ctx.run(`Allowing ${value} in "${name}"`, false, async () =>
    guest.allowEgress(await changeExecutor(ctx.backend, ctx.serverId, name, ctx.ssh), value),
  );
  await changed(ctx, name, status);
  return status;
}

/** Removes an entry from the allow list (phase `Denying <entry> in "<name>"`). */
export async function denyEgress(ctx: WorkflowContext, name: string, entry: string): Promise<EgressStatus> {
  const guest = await loadGuest();
  const value = await checkEgressEntry(entry);
  const status = await ctx.run(`Denying ${value} in "${name}"`, false, async () =>
    guest.denyEgress(await changeExecutor(ctx.backend, ctx.serverId, name, ctx.ssh), value),
  );
  await changed(ctx, name, status);
  return status;
}
