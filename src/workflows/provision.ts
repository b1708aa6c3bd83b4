// Provisioning a running sandbox again ("Provision Sandbox…", "Retry Provisioning"): steps already done are
// skipped, so a retry resumes where it stopped. ProvisioningFailed is the typed failure create and clone share.
import { PixelsError } from '../core/errors';
import type { StepOutcome } from '../guest/index';
import type { WorkflowContext } from './context';

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
