// "Provision Sandbox…" (also the "Retry Provisioning" of a failed run): runs src/guest provisioning in a running
// sandbox whose host key is pinned here. Steps already done are skipped, so a retry resumes where it stopped.
import type { EgressMode } from '../../core/sandbox';
import type { StepOutcome } from '../../guest/index';
import { CommandIds } from '../commandIds';
import { answersOf, resolveSandbox } from '../pick';
import type { Services } from '../services';
import { registerCommand } from './register';

export async function provisionSandbox(services: Services, arg: unknown): Promise<StepOutcome[]> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, {
    placeHolder: 'Provision which sandbox?',
    states: ['running'],
  });
  const backend = await services.registry.backend(target.serverId);
  // The initial policy only counts for a sandbox without one: the egress step keeps an existing policy file.
  const egress: EgressMode =
    services.egress.get(target.serverId, target.name) ?? services.registry.settings.defaults.egress;
  const outcomes = await services.provisioning.provision(backend, target.serverId, target.name, egress);
  services.egressStatus.invalidate(target.serverId, target.name);
  const ran = outcomes.filter((o) => !o.alreadyDone).map((o) => o.id);
  services.log.info(
    `sandbox ${target.name}: provisioned (${ran.length ? `ran ${ran.join(', ')}` : 'every step was done already'})`,
  );
  await services.refresh.refreshNow(target.serverId);
  return outcomes;
}

export function registerProvisionCommands(services: Services): void {
  registerCommand(services, CommandIds.provisionSandbox, 'Provision sandbox', (arg) =>
    provisionSandbox(services, arg),
  );
}
