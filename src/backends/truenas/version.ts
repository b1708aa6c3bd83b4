// Which API family a TrueNAS server speaks, from `system.version`.
import { UnsupportedError } from '../../core/errors';

export type ApiFamily = 'virt-25.04' | 'virt-25.10' | 'container-26';

export interface TrueNASVersion {
  /** The string as the server sent it, e.g. "TrueNAS-25.04.2.6" or "25.10.1". */
  raw: string;
  major: number;
  minor: number;
  /** "25.04.2.6" */
  display: string;
}

/** Parses "TrueNAS-25.04.2.6", "TrueNAS-SCALE-24.10.2", "25.10.1", "26.0.0-BETA.3". */
export function parseVersion(raw: string): TrueNASVersion {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[A-Za-z0-9.]+)?/.exec(raw);
  if (!m) throw new UnsupportedError(`The server reported an unrecognised version "${raw.slice(0, 80)}".`);
  const parts = [m[1], m[2], m[3], m[4]].filter((p) => p !== undefined);
  return {
    raw,
    major: Number(m[1]),
    minor: Number(m[2]),
    display: parts.join('.') + (m[5] ?? ''),
  };
}

/**
 * 25.04.x: virt.* + zfs.snapshot.*; 25.10+ (before 26): virt.* + pool.snapshot.*; 26 and later (early nightlies
 * said 26.04, releases say 26.0.0): libvirt LXC containers under container.* + zfs.resource.snapshot.*.
 */
export function apiFamily(version: TrueNASVersion): ApiFamily {
  const { major, minor } = version;
  if (major >= 26) return 'container-26';
  if (major < 25 || (major === 25 && minor < 4)) {
    throw new UnsupportedError(
      `TrueNAS ${version.display} has no Incus containers (virt.*); Pixels needs TrueNAS 25.04 or later.`,
    );
  }
  return major === 25 && minor < 10 ? 'virt-25.04' : 'virt-25.10';
}

/** The 25.x Incus families (virt.*), as opposed to 26's containers. */
export type VirtFamily = Exclude<ApiFamily, 'container-26'>;

export function isVirtFamily(family: ApiFamily): family is VirtFamily {
  return family !== 'container-26';
}
