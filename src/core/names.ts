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

/**
 * Host names are case-insensitive, so `Agent` beside `agent` would give two SSH hosts that clash: the name of an
 * existing sandbox that equals `name` ignoring case (exactly equal included), if any.
 */
export function nameClash(name: string, existing: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  for (const other of existing) if (other.toLowerCase() === lower) return other;
  return undefined;
}

/** The sentence for a clash found by nameClash(). */
export function nameClashProblem(name: string, other: string, where: string): string {
  return other === name
    ? `A sandbox named "${name}" exists already on ${where}.`
    : `"${other}" exists already on ${where}; names that differ only in case clash (host names ignore case).`;
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

/** What a server can give one sandbox at most, where its API says (TrueNAS system.info, Incus /1.0/resources). */
export interface ServerLimits {
  cpus?: number;
  memoryMiB?: number;
}

export function cpuProblem(cpu: string, limits?: ServerLimits): string | undefined {
  if (!/^[1-9][0-9]{0,3}$/.test(cpu)) return 'CPU must be a whole number of cores, such as 2.';
  if (limits?.cpus !== undefined && Number(cpu) > limits.cpus)
    return `The server has ${limits.cpus} CPU core${limits.cpus === 1 ? '' : 's'}; ask for at most ${limits.cpus}.`;
  return undefined;
}

/** memoryProblem() plus the server's physical memory, when known. */
export function memoryLimitProblem(mib: number, limits?: ServerLimits): string | undefined {
  const problem = memoryProblem(mib);
  if (problem) return problem;
  if (limits?.memoryMiB !== undefined && mib > limits.memoryMiB)
    return `The server has ${formatMiB(limits.memoryMiB)} of memory; ask for at most that.`;
  return undefined;
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  m: 1,
  mb: 1,
  mi: 1,
  mib: 1,
  g: 1024,
  gb: 1024,
  gi: 1024,
  gib: 1024,
  t: 1024 * 1024,
  tb: 1024 * 1024,
  ti: 1024 * 1024,
  tib: 1024 * 1024,
};

/**
 * Memory as typed: `2048` (MiB), `512M`, `4G`, `4 GiB`, `1.5G`. Binary units throughout (the tree shows GiB), so
 * `4G` and `4 GiB` are both 4096 MiB. Returns MiB, or the problem.
 */
export function parseMemory(text: string): { mib: number } | { problem: string } {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const factor = m ? MEMORY_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || factor === undefined)
    return { problem: 'Memory is a size such as 2048 (MiB), 512M, 4G or 4 GiB.' };
  const mib = Number(m[1]) * factor;
  if (!Number.isInteger(mib)) return { problem: `${text.trim()} is not a whole number of MiB.` };
  return { mib };
}

/** MiB as the tree shows it: whole GiB as GiB, else MiB. */
export function formatMiB(mib: number): string {
  return mib >= 1024 && mib % 1024 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}
