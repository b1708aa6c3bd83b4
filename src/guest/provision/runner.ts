// Runs the provisioning steps one by one over an Executor and reports each step's state and log lines as they
// happen. One round trip first reads every marker, so a clone of a provisioned sandbox costs a single call.
// A failing or timed-out step ends the run with the step and the tail of its log: never an endless wait.
import { CancelledError, PixelsError, TimeoutError } from '../../core/errors';
import type { Executor } from '../executor';
import { GUEST_PATHS } from '../paths';
import { heredocDelimiter } from '../shell';
import type { ProvisionStep, StepId } from './steps';

export type StepState = 'pending' | 'running' | 'done' | 'failed';

export type ProvisionEvent =
  | { type: 'plan'; steps: Array<{ id: StepId; title: string }> }
  | {
      type: 'step';
      id: StepId;
      title: string;
      state: StepState;
      /** Done earlier (marker found): nothing ran. */
      alreadyDone?: boolean;
      durationMs?: number;
      error?: string;
    }
  | { type: 'log'; id: StepId; line: string };

export interface StepOutcome {
  id: StepId;
  state: 'done' | 'failed';
  alreadyDone: boolean;
  durationMs: number;
}

/** A step failed or timed out. `logTail` holds its last lines. */
export class ProvisionStepError extends PixelsError {
  constructor(
    readonly step: StepId,
    readonly title: string,
    readonly exitCode: number | undefined,
    readonly timedOut: boolean,
    readonly logTail: string[],
    options?: { cause?: unknown; egress?: string },
  ) {
    const why = timedOut
      ? 'timed out'
      : exitCode === undefined
        ? 'could not run'
        : `failed (exit code ${exitCode})`;
    const last = logTail.length ? `: ${logTail[logTail.length - 1]}` : '';
    const egress = options?.egress ? ` (${options.egress})` : '';
    super(timedOut ? 'timeout' : 'server', `Provisioning step "${title}" ${why}${last}${egress}`, options);
    this.egress = options?.egress;
  }

  /** What the sandbox's egress is after the failure ("the allowlist egress policy is in force ..."). */
  readonly egress?: string;

  /** The same failure, with the egress state after it. */
  withEgress(egress: string): ProvisionStepError {
    return new ProvisionStepError(this.step, this.title, this.exitCode, this.timedOut, this.logTail, {
      cause: this.cause,
      egress,
    });
  }
}

export interface RunOptions {
  onEvent?: (event: ProvisionEvent) => void;
  signal?: AbortSignal;
  /** Lines of log kept for the failure report (default 30). */
  tailLines?: number;
  /** Extra time the host waits beyond a step's own timeout before giving up on the connection (default 20 s). */
  graceMs?: number;
}

const S = GUEST_PATHS.provisionState;
const L = GUEST_PATHS.provisionLogs;
const TIMEOUT_EXIT_CODES = new Set([124, 137]);

/** The script that runs one step: marker check, the body under `timeout`, its log kept in the sandbox. */
export function wrapStep(step: ProvisionStep): string {
  const delimiter = heredocDelimiter(step.body);
  const seconds = Math.max(1, Math.ceil(step.timeoutMs / 1000));
  // The host decides whether the steps around the downloads run (see ProvisionStep.sources), not their marker.
  const markerCheck = step.sources
    ? ''
    : `if [ "$(cat ${S}/${step.id}.done 2>/dev/null)" = ${step.hash} ]; then echo "step ${step.id}: already done"; exit 0; fi\n`;
  return `set -uo pipefail
mkdir -p ${S} ${L} && chmod 0700 ${S} && chmod 0750 ${L}
${markerCheck}rm -f ${S}/${step.id}.done
cat > ${S}/${step.id}.sh <<'${delimiter}'
${step.body}
${delimiter}
# The step marks itself done, in the same process tree: a step killed half-way (its connection lost, stopped,
# timed out) leaves no marker and runs again next time.
finish='bash ${S}/${step.id}.sh && echo ${step.hash} > ${S}/${step.id}.done'
if [ -d /run/systemd/system ] && command -v systemd-run > /dev/null; then
  # A transient unit: on timeout (and when the step ends) systemd kills every process the step started,
  # even those in other sessions (runuser -c) or in the background, so nothing lingers or holds the log open.
  # A run whose connection was lost may have left its unit behind: stop it; this run's unit has a name of its
  # own, so a unit still winding down cannot block it.
  systemctl stop 'pixels-provision-${step.id}_*.service' 2> /dev/null || true
  unit=pixels-provision-${step.id}_$$
  systemd-run --quiet --unit="$unit" --wait --pipe -p RuntimeMaxSec=${seconds} -p TimeoutStopSec=5 \\
    -E HOME=/root -E PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    bash -c "$finish" < /dev/null 2>&1 | tee ${L}/${step.id}.log
  rc=\${PIPESTATUS[0]}
  if [ "$(systemctl show -P Result "$unit" 2> /dev/null)" = timeout ]; then rc=124; fi
  systemctl reset-failed "$unit" 2> /dev/null || true
else
  timeout -k 5 ${seconds} bash -c "$finish" < /dev/null 2>&1 | tee ${L}/${step.id}.log
  rc=\${PIPESTATUS[0]}
fi
# systemd counts a step stopped from outside (SIGTERM) as a clean exit: only the marker says it finished.
if [ "$rc" = 0 ] && [ "$(cat ${S}/${step.id}.done 2>/dev/null)" != ${step.hash} ]; then rc=143; fi
exit "$rc"
`;
}

/**
 * Stops every step still running in the sandbox: after a failure, in particular a lost connection, which leaves
 * the step's unit running on the far side (systemd-run's client dies with the session, the unit does not).
 */
export const STOP_STEPS_SCRIPT = `systemctl stop 'pixels-provision-*.service' 2> /dev/null || true`;

/** Which steps are already done in the sandbox (their marker holds the current hash). */
export async function doneSteps(exec: Executor, steps: ProvisionStep[]): Promise<Set<StepId>> {
  const result = await exec(
    `for f in ${S}/*.done; do [ -f "$f" ] && printf '%s %s\\n' "$(basename "$f" .done)" "$(cat "$f")"; done; true`,
    { timeoutMs: 30_000 },
  );
  const markers = new Map<string, string>();
  for (const line of result.output.split('\n')) {
    const [id, hash] = line.trim().split(/\s+/);
    if (id && hash) markers.set(id, hash);
  }
  const done = new Set(steps.filter((s) => markers.get(s.id) === s.hash).map((s) => s.id));
  // The provisioning sources are opened and closed again whenever a downloading step is to run.
  if (steps.some((s) => s.downloads && !done.has(s.id)))
    for (const s of steps) if (s.sources) done.delete(s.id);
  return done;
}

export async function runProvision(
  exec: Executor,
  steps: ProvisionStep[],
  options: RunOptions = {},
): Promise<StepOutcome[]> {
  const emit = options.onEvent ?? (() => {});
  const tailLines = options.tailLines ?? 30;
  emit({ type: 'plan', steps: steps.map(({ id, title }) => ({ id, title })) });
  for (const s of steps) emit({ type: 'step', id: s.id, title: s.title, state: 'pending' });
  const done = await doneSteps(exec, steps);
  const outcomes: StepOutcome[] = [];
  for (const step of steps) {
    if (options.signal?.aborted) throw new CancelledError('Provisioning was cancelled.');
    if (done.has(step.id)) {
      emit({ type: 'step', id: step.id, title: step.title, state: 'done', alreadyDone: true, durationMs: 0 });
      outcomes.push({ id: step.id, state: 'done', alreadyDone: true, durationMs: 0 });
      continue;
    }
    emit({ type: 'step', id: step.id, title: step.title, state: 'running' });
    const started = Date.now();
    const tail: string[] = [];
    let partial = '';
    const pushLine = (line: string) => {
      tail.push(line);
      if (tail.length > tailLines) tail.shift();
      emit({ type: 'log', id: step.id, line });
    };
    const onOutput = (chunk: string) => {
      const lines = (partial + chunk).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) pushLine(line);
    };
    let exitCode: number | undefined;
    let failure: unknown;
    try {
      const result = await exec(wrapStep(step), {
        timeoutMs: step.timeoutMs + (options.graceMs ?? 20_000),
        onOutput,
        signal: options.signal,
      });
      exitCode = result.exitCode;
    } catch (err) {
      failure = err;
    }
    if (partial) pushLine(partial);
    const durationMs = Date.now() - started;
    if (failure instanceof CancelledError) throw failure;
    if (failure === undefined && exitCode === 0) {
      emit({ type: 'step', id: step.id, title: step.title, state: 'done', durationMs });
      outcomes.push({ id: step.id, state: 'done', alreadyDone: false, durationMs });
      continue;
    }
    const timedOut =
      failure instanceof TimeoutError || (exitCode !== undefined && TIMEOUT_EXIT_CODES.has(exitCode));
    if (timedOut)
      pushLine(`(step "${step.title}" stopped after its ${Math.round(step.timeoutMs / 1000)} s timeout)`);
    else if (failure) pushLine(`(${failure instanceof Error ? failure.message : String(failure)})`);
    const error = new ProvisionStepError(step.id, step.title, exitCode, timedOut, [...tail], {
      cause: failure,
    });
    emit({ type: 'step', id: step.id, title: step.title, state: 'failed', durationMs, error: error.message });
    throw error;
  }
  return outcomes;
}
