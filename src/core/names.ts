// Client-side validation of names and labels, so bad input never reaches the server.
import { ValidationError } from './errors';
import { INSTANCE_PREFIX } from './sandbox';

const NAME_MAX = 63 - INSTANCE_PREFIX.length;

/** Incus instance name rules applied to the short name: the full `px-<name>` must also be a valid instance name. */
export function sandboxNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'A sandbox name cannot be empty.';
  if (name.length > NAME_MAX)
    return `A sandbox name can have at most ${NAME_MAX} characters (it becomes px-<name>).`;
  if (!/^[A-Za-z0-9-]+$/.test(name)) return 'A sandbox name may only contain letters, digits and hyphens.';
  if (/^[0-9]/.test(name)) return 'A sandbox name cannot start with a digit.';
  if (name.startsWith('-')) return 'A sandbox name cannot start with a hyphen.';
  if (name.endsWith('-')) return 'A sandbox name cannot end with a hyphen.';
  return undefined;
}

export function validateSandboxName(name: string): void {
  const problem = sandboxNameProblem(name);
  if (problem) throw new ValidationError(problem, [{ field: 'name', message: problem }]);
}

/**
 * Checkpoint labels become ZFS snapshot names and Incus snapshot names: keep to the intersection of both
 * (letters, digits, `-`, `_`, `.`, `:`; no `/` or `@`; first character alphanumeric).
 */
export function checkpointLabelProblem(label: string): string | undefined {
  if (label.length === 0) return 'A checkpoint label cannot be empty.';
  if (label.length > 63) return 'A checkpoint label can have at most 63 characters.';
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(label))
    return 'A checkpoint label must start with a letter or digit and contain only letters, digits, ".", "_", ":" and "-".';
  return undefined;
}

export function validateCheckpointLabel(label: string): void {
  const problem = checkpointLabelProblem(label);
  if (problem) throw new ValidationError(problem, [{ field: 'label', message: problem }]);
}

/** The default label, `px-YYYYMMDD-HHMMSS` in UTC. */
export function defaultCheckpointLabel(now: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `px-${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}` +
    `-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`
  );
}

/** Memory in MiB: whole number, at least 128 MiB (smaller sandboxes cannot boot systemd + sshd reliably). */
export function memoryProblem(mib: number): string | undefined {
  if (!Number.isInteger(mib)) return 'Memory must be a whole number of MiB.';
  if (mib < 128) return 'Memory must be at least 128 MiB.';
  if (mib > 1024 * 1024) return 'Memory must be at most 1 TiB.';
  return undefined;
}

export function cpuProblem(cpu: string): string | undefined {
  if (!/^[1-9][0-9]{0,3}$/.test(cpu)) return 'CPU must be a whole number of cores, such as 2.';
  return undefined;
}
