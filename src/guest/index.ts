// Everything that runs inside a sandbox, and the host-side calls that put it there. vscode-free.
import type { Executor } from './executor';
import { runProvision, type ProvisionEvent, type RunOptions, type StepOutcome } from './provision/runner';
import { provisionSteps } from './provision/steps';
import type { ProvisionOptions } from './provision/options';

export {
  backendExecutor,
  executorFor,
  sshExecutor,
  type Executor,
  type ScriptOptions,
  type ScriptResult,
} from './executor';
export { GUEST_PATHS, PIXEL_USER } from './paths';
export { resolveEnv, expandEnv, type ResolvedEnv } from './env';
export {
  DEFAULT_PACKAGES,
  DEFAULT_SOURCES,
  DEFAULT_TOOLS,
  type DownloadSources,
  type ProvisionOptions,
  type SetupScript,
  type ToolSpec,
} from './provision/options';
export { provisionSteps, type ProvisionStep, type StepId } from './provision/steps';
export { ProvisionTracker, type StepView } from './provision/progress';
export {
  ProvisionStepError,
  runProvision,
  type ProvisionEvent,
  type StepOutcome,
  type StepState,
} from './provision/runner';
export {
  egressEntryProblem,
  normalizeEgressEntry,
  parseEgressEntry,
  type EgressEntry,
} from './egress/validate';
export { AGENT_PRESET, agentPresetEntries, type PresetGroup } from './egress/presets';
export {
  EGRESS_MODES,
  buildPolicy,
  effectiveEntries,
  egressSummary,
  isEgressMode,
  validateEgressMode,
  withAllowed,
  withDenied,
  withMode,
  type EgressPolicy,
  type PolicySettings,
} from './egress/policy';
export {
  allowEgress,
  applyEgress,
  denyEgress,
  recheckEgress,
  setEgressMode,
  showEgress,
  type EgressStatus,
} from './egress/api';

/**
 * Provisions a sandbox: validates the options (nothing runs on bad input), then runs each step, reporting
 * pending / running / done / failed and the log lines. Throws ProvisionStepError with the failing step and the
 * tail of its log. Steps already done (re-run, clone) are reported done without running.
 */
export function provision(
  exec: Executor,
  options: ProvisionOptions,
  onEvent?: (event: ProvisionEvent) => void,
  run: Omit<RunOptions, 'onEvent'> = {},
): Promise<StepOutcome[]> {
  const steps = provisionSteps(options);
  return runProvision(exec, steps, { ...run, onEvent });
}
