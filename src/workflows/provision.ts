// Provisioning a running sandbox again ("Provision Sandbox…", "Retry Provisioning"): steps already done are
// skipped, so a retry resumes where it stopped. ProvisioningFailed is the typed failure create and clone share.
import { PixelsError } from '../core/errors';
import { loadGuest } from './lazy';
import type { StepOutcome } from '../guest/index';
import type { WorkflowContext } from './context';
import { changeExecutor } from './egressTracker';

/** Provisioning failed at a step: the message names it and ends with the last lines of its log. */
export class ProvisioningFailed extends PixelsError {
  constructor(
    readonly serverId: string,
    readonly sandboxName: string,
    readonly step: string,
    readonly title: string,
    readonly logTail: string[],
    cause: PixelsError,
  ) {
    const tail = logTail
      .filter((l) => l.trim())
      .slice(-3)
      .join(' / ');
    super(
      cause.kind,
      `Provisioning "${sandboxName}" stopped at step "${title}": ${cause.message}${tail ? ` — log: ${tail}` : ''}`,
      { cause },
    );
  }
}

/**
 * Provisions a running sandbox whose host key is pinned here. The initial egress policy only counts for a sandbox
 * without one (the remembered mode, else the default): the egress step keeps an existing policy file.
 */
export async function provisionSandbox(ctx: WorkflowContext, name: string): Promise<StepOutcome[]> {
  const { backend, serverId } = ctx;
  const egress = ctx.egress.get(serverId, name) ?? ctx.egressInputs().defaultMode;
  const outcomes = await ctx.provisioning.provision(backend, serverId, name, egress, ctx.run);
  ctx.egressStatus.invalidate(serverId, name);
  const ran = outcomes.filter((o) => !o.alreadyDone).map((o) => o.id);
  ctx.log.info(
    `sandbox ${name}: provisioned (${ran.length ? `ran ${ran.join(', ')}` : 'every step was done already'})`,
  );
  await ctx.changed();
  return outcomes;
}

/**
 * What provisioning left in a running sandbox, ours or the pixels CLI's (its zmx sessions and sentinel), one line
 * per step. This session's own run (active or failed) is the freshest word; otherwise it is read as root inside.
 */
export async function provisioningStatus(ctx: WorkflowContext, name: string): Promise<string[]> {
  const run = ctx.provisioning.run(ctx.serverId, name);
  let lines: string[];
  if (run?.active || run?.failed) {
    lines = run.steps.map((s) => `${s.title}: ${s.alreadyDone ? 'done earlier' : s.state}`);
  } else {
    const guest = await loadGuest();
    const exec = await changeExecutor(ctx.backend, ctx.serverId, name, ctx.ssh);
    const r = await exec(guest.provisioningStatusScript(), { timeoutMs: 30_000 });
    lines = guest.describeProvisioningStatus(guest.parseProvisioningStatus(r.output));
  }
  for (const line of lines) ctx.log.info(`provisioning status of ${name}: ${line}`);
  return lines;
}
