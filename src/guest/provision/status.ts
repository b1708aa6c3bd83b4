// "Show Provisioning Status": what provisioning left in a sandbox, whoever ran it. Ours leaves step markers; the
// pixels CLI runs its steps as zmx sessions named px-* and touches /root/.pixels-provisioned when all are done
// (pixels-reference §5.6; `pixels status` reads the same). One script reads both, as root.
import { GUEST_PATHS } from '../paths';

export const PIXELS_CLI_SENTINEL = '/root/.pixels-provisioned';
export const PIXELS_CLI_SCRIPT = '/usr/local/bin/pixels-provision.sh';

/** Prints `key=value` lines, and zmx's own lines prefixed `zmx:`. */
export function provisioningStatusScript(): string {
  return [
    `printf 'markers='; (cd ${GUEST_PATHS.provisionState} 2>/dev/null && ls -1 -- *.done 2>/dev/null | sed 's/\\.done$//' | tr '\\n' ' '); echo`,
    `test -f ${PIXELS_CLI_SENTINEL} && echo cli-sentinel=1`,
    `test -x ${PIXELS_CLI_SCRIPT} && echo cli-script=1`,
    'if command -v zmx >/dev/null 2>&1; then echo zmx=1; (unset XDG_RUNTIME_DIR; zmx list 2>&1) | sed "s/^/zmx:/"; fi',
    'true',
  ].join('\n');
}

export interface CliStep {
  name: string;
  state: 'running' | 'done' | 'failed';
  exitCode?: number;
}

export interface ProvisioningStatus {
  /** Steps of our provisioning that are done (markers). */
  markers: string[];
  /** The pixels CLI's steps (zmx sessions named px-*), when it provisioned this sandbox. */
  cliSteps: CliStep[];
  cliSentinel: boolean;
  cliScript: boolean;
  zmx: boolean;
}

/**
 * `zmx list` lines: `name=<n>\t<k>=<v>…`; zmx 0.5.0 says `ended` and `exit_code`, 0.4 said `session_name`,
 * `task_ended_at` and `task_exit_code`. A session that ended with exit code 0 is done, with another failed.
 */
function parseZmx(lines: string[]): CliStep[] {
  const steps: CliStep[] = [];
  for (const line of lines) {
    if (!/^(name|session_name)=/.test(line)) continue;
    const fields = new Map(
      line.split('\t').map((kv) => {
        const at = kv.indexOf('=');
        return at < 0 ? [kv, ''] : [kv.slice(0, at), kv.slice(at + 1)];
      }),
    );
    const name = fields.get('name') ?? fields.get('session_name') ?? '';
    if (!name.startsWith('px-')) continue;
    const ended = fields.get('ended') ?? fields.get('task_ended_at');
    const exit = fields.get('exit_code') ?? fields.get('task_exit_code');
    const code = exit !== undefined && /^-?\d+$/.test(exit) ? Number(exit) : undefined;
    if (!ended || ended === '0') steps.push({ name, state: 'running' });
    else steps.push({ name, state: code === 0 ? 'done' : 'failed', exitCode: code });
  }
  return steps;
}

export function parseProvisioningStatus(output: string): ProvisioningStatus {
  const lines = output.split('\n');
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
  return {
    markers: (value('markers') ?? '').split(/\s+/).filter(Boolean),
    cliSteps: parseZmx(lines.filter((l) => l.startsWith('zmx:')).map((l) => l.slice(4))),
    cliSentinel: value('cli-sentinel') === '1',
    cliScript: value('cli-script') === '1',
    zmx: value('zmx') === '1',
  };
}

/** One line per fact, in the words of `pixels status` for the CLI's part. */
export function describeProvisioningStatus(s: ProvisioningStatus): string[] {
  const lines: string[] = [];
  if (s.markers.length) lines.push(`Pixels for VS Code: done ${s.markers.join(', ')}`);
  if (s.cliSteps.length)
    for (const step of s.cliSteps)
      lines.push(
        `pixels CLI step ${step.name}: ${step.state}${step.exitCode !== undefined ? ` (exit ${step.exitCode})` : ''}`,
      );
  else if (s.cliSentinel) lines.push('pixels CLI: Provisioning complete');
  else if (s.cliScript)
    lines.push(`pixels CLI: Provisioning in progress${s.zmx ? '' : ' (zmx not installed)'}`);
  if (lines.length === 0) lines.push('No provisioning steps found');
  return lines;
}
