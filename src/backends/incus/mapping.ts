// Incus objects -> domain objects (pure functions, unit-tested).
import { DependentClonesError, PixelsError, ValidationError } from '../../core/errors';
import { INSTANCE_PREFIX, shortName } from '../../core/sandbox';
import type { Checkpoint, Sandbox, SandboxStatus } from '../../core/sandbox';
import type { IncusInstance, IncusInstanceState, IncusSnapshot } from './types';

export function isSandboxInstance(name: string): boolean {
  return name.startsWith(INSTANCE_PREFIX) && name.length > INSTANCE_PREFIX.length;
}

export function mapStatus(status: string | undefined): SandboxStatus {
  switch ((status ?? '').toLowerCase()) {
    case 'running':
      return 'running';
    case 'stopped':
      return 'stopped';
    case 'starting':
      return 'starting';
    case 'stopping':
      return 'stopping';
    case 'frozen':
    case 'freezing':
      return 'frozen';
    case 'error':
      return 'error';
    default:
      return 'unknown';
  }
}

/** "512MiB", "1GiB", "2GB", "1073741824" -> MiB. */
export function parseMemoryMiB(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'B').toUpperCase();
  const factor: Record<string, number> = {
    B: 1,
    KB: 1e3,
    MB: 1e6,
    GB: 1e9,
    TB: 1e12,
    KIB: 1024,
    MIB: 1024 ** 2,
    GIB: 1024 ** 3,
    TIB: 1024 ** 4,
  };
  return Math.round((n * (factor[unit] ?? 1)) / 1024 ** 2);
}

/** First global-scope address of the family on any interface but loopback. */
export function globalAddress(
  state: IncusInstanceState | null | undefined,
  family: 'inet' | 'inet6',
): string | undefined {
  for (const [ifname, nic] of Object.entries(state?.network ?? {})) {
    if (ifname === 'lo') continue;
    const a = nic.addresses?.find((x) => x.family === family && x.scope === 'global');
    if (a) return a.address;
  }
  return undefined;
}

export function toCheckpoint(sandbox: string, snap: IncusSnapshot): Checkpoint {
  // Snapshot names arrive bare ("snap0") with recursion, or as "inst/snap0" in some answers.
  const label = snap.name.includes('/') ? snap.name.slice(snap.name.lastIndexOf('/') + 1) : snap.name;
  return {
    sandbox,
    label,
    sizeBytes: typeof snap.size === 'number' && snap.size >= 0 ? snap.size : undefined,
    createdAt: new Date(snap.created_at),
  };
}

export function newestFirst(checkpoints: Checkpoint[]): Checkpoint[] {
  return [...checkpoints].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

export function toSandbox(inst: IncusInstance, clustered: boolean): Sandbox {
  const name = shortName(inst.name);
  const config = inst.config ?? {};
  const expanded = inst.expanded_config ?? config;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) if (k.startsWith('user.')) labels[k.slice(5)] = v;
  const description =
    config['image.description'] ??
    ([config['image.os'], config['image.release'], config['image.architecture']].filter(Boolean).join(' ') ||
      undefined);
  const sandbox: Sandbox = {
    name,
    instanceName: inst.name,
    status: mapStatus(inst.state?.status ?? inst.status),
    ipv4: globalAddress(inst.state, 'inet'),
    ipv6: globalAddress(inst.state, 'inet6'),
    image: description,
    cpu: expanded['limits.cpu'] || undefined,
    memoryMiB: parseMemoryMiB(expanded['limits.memory']),
    createdAt: inst.created_at ? new Date(inst.created_at) : undefined,
    location: clustered && inst.location && inst.location !== 'none' ? inst.location : undefined,
    labels: Object.keys(labels).length ? labels : undefined,
  };
  if (inst.snapshots) sandbox.checkpoints = newestFirst(inst.snapshots.map((s) => toCheckpoint(name, s)));
  return sandbox;
}

/** Config for a clone: everything but the volatile keys that identify the source (MAC, idmap, uuid, ...). */
export function cloneConfig(source: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (k.startsWith('volatile.') && k !== 'volatile.base_image') continue;
    out[k] = v;
  }
  return out;
}

/**
 * Incus on a ZFS pool checks a restore before it stops anything (driver_zfs_volumes.go CanRestoreVolume) and
 * refuses it in two cases, with texts of its own: a copy of the instance made from its current state is a ZFS
 * clone of a hidden `copy-` snapshot newer than the target (Incus does not say which instance, so none is
 * named); or newer checkpoints exist and the pool keeps them (`zfs.remove_snapshots` unset). Other drivers
 * (btrfs, dir) copy instead of cloning and never refuse. Anything else: undefined.
 */
export function zfsRestoreRefusal(err: unknown, name: string, label: string): PixelsError | undefined {
  if (!(err instanceof PixelsError)) return undefined;
  if (/cannot be restored due to subsequent internal snapshot/.test(err.message)) {
    return new DependentClonesError(
      `Cannot restore "${name}" to "${label}": a sandbox was copied from a later state of "${name}" on this ` +
        `server's ZFS pool, and rolling back would destroy it (Incus does not say which one). Nothing was ` +
        `changed. Destroy the sandboxes cloned from "${name}" since "${label}", or clone "${label}" into a new ` +
        'sandbox instead.',
      name,
      label,
      [],
    );
  }
  if (/cannot be restored due to subsequent snapshot\(s\)/.test(err.message)) {
    return new ValidationError(
      `Cannot restore "${name}" to "${label}": this server's ZFS pool keeps newer checkpoints (Incus needs ` +
        `volume.zfs.remove_snapshots=true on the storage pool to roll back past them). Nothing was changed. ` +
        `Delete the checkpoints newer than "${label}" first, or clone "${label}" into a new sandbox instead.`,
      [{ field: 'label', message: 'newer checkpoints exist' }],
    );
  }
  return undefined;
}
