// Everything that runs inside a sandbox, and the host-side calls that put it there. vscode-free.
import { CancelledError } from '../core/errors';
import type { Executor } from './executor';
import { GUEST_PATHS } from './paths';
import { CLOSE_SOURCES_SCRIPT, provisionSteps } from './provision/steps';
import {
  ProvisionStepError,
  runProvision,
  STOP_STEPS_SCRIPT,
  type ProvisionEvent,
  type RunOptions,
  type StepOutcome,
} from './provision/runner';
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
  EXIT_NO_TMUX,
  EXIT_SESSION_EXISTS,
  INSTALL_TMUX_SCRIPT,
  LIST_SESSIONS_SCRIPT,
  WATCH_SECONDS,
  WATCH_SESSIONS_COMMAND,
  attachSessionCommand,
  envFileContent,
  parseSessionList,
  sessionNameProblem,
  startSessionScript,
  stopSessionCommand,
  suggestSessionName,
  type SessionInfo,
  type SessionKind,
  type SessionList,
} from './sessions';
export {
  FIND_REPOS_SCRIPT,
  MAX_COMPARED_FILES,
  fileHashesScript,
  parseFileHashes,
  parseRepoList,
} from './repos';
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
  describeProvisioningStatus,
  parseProvisioningStatus,
  provisioningStatusScript,
  type ProvisioningStatus,
} from './provision/status';
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
} from '../core/egressEntry';
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
  type EgressRecheck,
  type EgressStatus,
} from './egress/api';

/**
 * Provisions a sandbox: validates the options (nothing runs on bad input), then runs each step, reporting
 * pending / running / done / failed and the log lines. Throws ProvisionStepError with the failing step and the
 * tail of its log. Steps already done (re-run, clone) are reported done without running.
 */
export async function provision(
  exec: Executor,
  options: ProvisionOptions,
  onEvent?: (event: ProvisionEvent) => void,
  run: Omit<RunOptions, 'onEvent'> = {},
): Promise<StepOutcome[]> {
  const steps = provisionSteps(options);
  try {
    return await runProvision(exec, steps, { ...run, onEvent });
  } catch (err) {
    if (options.egress.mode === 'unrestricted') {
      // Nothing to close, but a step whose connection was lost still runs on the far side.
      await exec(STOP_STEPS_SCRIPT, { timeoutMs: 30_000 }).catch(() => undefined);
      throw err;
    }
    // Fail closed: the provisioning sources go, the chosen policy stays, and the error says what is in force.
    const egress = await closeSourcesAfterFailure(exec);
    if (err instanceof ProvisionStepError) throw err.withEgress(egress);
    if (err instanceof CancelledError) throw new CancelledError(`${err.message} (${egress})`, { cause: err });
    throw err;
  }
}

/**
 * Stops what still runs of the steps, removes the provisioning sources and re-applies the policy; returns what is in
 * force, checked in the sandbox.
 */
async function closeSourcesAfterFailure(exec: Executor): Promise<string> {
  try {
    const r = await exec(
      `${STOP_STEPS_SCRIPT}\n${CLOSE_SOURCES_SCRIPT}\n${GUEST_PATHS.egressScript} status`,
      {
        timeoutMs: 90_000,
      },
    );
    const field = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(r.output)?.[1]?.trim();
    const mode = field('mode');
    if (r.exitCode === 0 && field('enforced') === 'yes' && field('provisioning') === '0')
      return `the ${mode} egress policy is in force; the provisioning sources were removed`;
    const last = r.output.trim().split('\n').pop() ?? 'no output';
    return `the egress policy is NOT confirmed in force (exit code ${r.exitCode}: ${last})`;
  } catch (err) {
    return `the egress policy could not be checked (${err instanceof Error ? err.message : String(err)}); the provisioning sources expire by themselves`;
  }
}
