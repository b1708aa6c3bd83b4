// TrueNAS 26 (libvirt LXC under container.*): the shapes the middleware sends and the pure mappings from them
// to our model. No I/O here, so every rule is unit-testable. Facts: ../shared/docs/truenas-26.md.
import { isIP } from 'node:net';
import { ValidationError } from '../../core/errors';
import type { Checkpoint, Sandbox, SandboxStatus, StopOptions } from '../../core/sandbox';
import { INSTANCE_PREFIX, shortName } from '../../core/sandbox';

/** `status` of a ContainerEntry (§1.2): `state` is RUNNING, SUSPENDED (RC1) or STOPPED. */
export interface ContainerStatus {
  state: string;
  pid?: number | null;
  domain_state?: string | null;
}

export interface ContainerDevice {
  id: number;
  container: number;
  attributes: { dtype: string; nic_attach?: string | null; mac?: string | null; [key: string]: unknown };
}

/** The ContainerEntry fields we read (§1.2); the rest pass through untouched. */
export interface ContainerEntry {
  id: number;
  name: string;
  uuid?: string | null;
  description?: string | null;
  dataset: string;
  cpuset?: string | null;
  autostart?: boolean;
  devices?: ContainerDevice[];
  default_network?: string | null;
  status: ContainerStatus;
}

/** A row of zfs.resource.snapshot.query (§4.1): properties are `{raw, value, source}`. */
export interface ResourceSnapshot {
  name: string;
  dataset: string;
  snapshot_name: string;
  createtxg?: number;
  properties?: Record<string, { raw?: string; value?: unknown } | undefined> | null;
}

/** The registry as container.image.query_registry gives it (§6). */
export interface RegistryImage {
  name: string;
  versions: { version: string }[];
}

/** Where the boot hook reports the sandbox's addresses: one empty file per address (§2 option 1). */
export const ADDRESS_DIR = '/var/lib/pixels/address';
/** Written by the client before a start it makes: what is listed next to it is from an earlier boot. */
export const STALE_MARKER = 'stale';
/** systemd's rc-local generator runs an executable /etc/rc.local at boot (Debian, Ubuntu). */
export const BOOT_HOOK_PATH = '/etc/rc.local';
/** Temporary snapshots a clone from the current state is made from; never shown as checkpoints. */
export const CLONE_SNAPSHOT_PREFIX = 'px-clone-';

export function mapContainerStatus(status: ContainerStatus | undefined): SandboxStatus {
  switch ((status?.state ?? '').toUpperCase()) {
    case 'RUNNING':
      return 'running';
    case 'STOPPED':
      return 'stopped';
    case 'SUSPENDED':
      return 'frozen';
    default:
      return 'unknown';
  }
}

/** `<pool>/.truenas_containers/containers/<name>` → `<pool>` (the pool may itself contain no `/`). */
export function poolOfDataset(dataset: string): string {
  const at = dataset.indexOf('/.truenas_containers/');
  return at > 0 ? dataset.slice(0, at) : dataset.split('/')[0];
}

/** The dataset libvirt expects for a container (§3: the root comes from pool + name, not from `dataset`). */
export function containerDataset(pool: string, instance: string): string {
  return `${pool}/.truenas_containers/containers/${instance}`;
}

/** The host path of the container's root filesystem, mounted whether or not it runs (§3). */
export function rootfsPath(pool: string, instance: string): string {
  return `/mnt/.truenas_containers/${pool}/containers/${instance}`;
}

export interface ReportedAddress {
  ipv4?: string;
  ipv6?: string;
}

/**
 * The addresses the boot hook reported, from the names in ADDRESS_DIR. A listing with the stale marker is from
 * an earlier boot (the hook clears the directory first); names that are not addresses are ignored, so a sandbox
 * cannot make us show anything else.
 */
export function addressFromListing(names: readonly string[]): ReportedAddress | undefined {
  if (names.includes(STALE_MARKER)) return undefined;
  const v4 = names.filter((n) => isIP(n) === 4).sort();
  const v6 = names.filter((n) => isIP(n) === 6 && !n.toLowerCase().startsWith('fe80')).sort();
  if (!v4.length && !v6.length) return undefined;
  return { ipv4: v4[0], ipv6: v6[0] };
}

export function containerToSandbox(
  entry: ContainerEntry,
  extra: { address?: ReportedAddress; checkpoints?: Checkpoint[]; checkpointsUnavailable?: string } = {},
): Sandbox {
  const status = mapContainerStatus(entry.status);
  const running = status === 'running';
  return {
    name: shortName(entry.name),
    instanceName: entry.name,
    status,
    ipv4: running ? extra.address?.ipv4 : undefined,
    ipv6: running ? extra.address?.ipv6 : undefined,
    image: entry.description || undefined,
    cpu: entry.cpuset ?? undefined,
    checkpoints: extra.checkpoints,
    ...(extra.checkpointsUnavailable ? { checkpointsUnavailable: extra.checkpointsUnavailable } : {}),
  };
}

/** Only `px-` containers are ours (a migrated 25.10 sandbox keeps its name, §10). */
export function isOurs(entry: Pick<ContainerEntry, 'name'>): boolean {
  return entry.name.startsWith(INSTANCE_PREFIX);
}

/** A snapshot property's parsed value as a number (`value`, else `raw`). */
function numberProperty(s: ResourceSnapshot, prop: string): number | undefined {
  const p = s.properties?.[prop];
  if (!p) return undefined;
  const n = typeof p.value === 'number' ? p.value : Number(p.raw);
  return Number.isFinite(n) ? n : undefined;
}

/** `creation` is seconds since the epoch in `raw`; `value` may already be parsed. */
export function snapshotCreated(s: ResourceSnapshot): Date {
  const p = s.properties?.creation;
  const v = p?.value;
  if (v && typeof v === 'object' && typeof (v as { $date?: unknown }).$date === 'number')
    return new Date((v as { $date: number }).$date);
  const seconds = Number(p?.raw ?? (typeof v === 'number' ? v : NaN));
  if (Number.isFinite(seconds)) return new Date(seconds * 1000);
  const text = typeof v === 'string' ? Date.parse(v) : NaN;
  return new Date(text);
}

/** Our checkpoints from snapshot rows, newest first (by txg, the order ZFS made them). */
export function checkpointsOf(sandbox: string, snaps: readonly ResourceSnapshot[]): Checkpoint[] {
  return snaps
    .filter((s) => !s.snapshot_name.startsWith(CLONE_SNAPSHOT_PREFIX))
    .map((s, i) => ({ s, i }))
    .sort((a, b) => (b.s.createtxg ?? 0) - (a.s.createtxg ?? 0) || b.i - a.i)
    .map(({ s }) => ({
      sandbox,
      label: s.snapshot_name,
      sizeBytes: numberProperty(s, 'referenced'),
      createdAt: snapshotCreated(s),
    }));
}

/** Snapshot rows grouped by dataset. */
export function byDataset(snaps: readonly ResourceSnapshot[]): Map<string, ResourceSnapshot[]> {
  const out = new Map<string, ResourceSnapshot[]>();
  for (const s of snaps) {
    const list = out.get(s.dataset) ?? [];
    list.push(s);
    out.set(s.dataset, list);
  }
  return out;
}

/**
 * 26 has only a CPU set: a count N (what 25.x took) pins the first N CPUs; a set ("0-3,8") passes as it is.
 */
export function cpusetFor(cpu: string): string {
  const text = cpu.trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n <= 1 ? '0' : `0-${n - 1}`;
  }
  return text;
}

/**
 * container.stop options: without `force_after_timeout` the job succeeds with the container still running
 * when the guest ignores the shutdown (§1.4), so a stop always forces after the container's own timeout.
 */
export function stopOptions(options?: StopOptions): { force: boolean; force_after_timeout: boolean } {
  return { force: options?.force ?? false, force_after_timeout: true };
}

/** The RC1 guard (§4.2): `'<path>' is a protected path.` (EACCES), anywhere in an error's message chain. */
export function isProtectedPathRefusal(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/is a protected path/.test(e.message)) return true;
  }
  return false;
}

/** The reason shown where checkpoints would be, when the server refuses snapshots of container datasets. */
export function checkpointsRefusedReason(version: string): string {
  return (
    `Checkpoints are not available: TrueNAS ${version} protects container datasets from the snapshot API ` +
    '("is a protected path"). Turn on the setting "Checkpoints through a host job" to take them with a ' +
    'one-off cron job on the NAS instead.'
  );
}

/** Release numbers the 25.x aliases use (`debian/12`), as the registry's codenames. */
const CODENAMES: Record<string, string> = {
  'debian/11': 'bullseye',
  'debian/12': 'bookworm',
  'debian/13': 'trixie',
  'ubuntu/22.04': 'jammy',
  'ubuntu/24.04': 'noble',
};

/**
 * The registry product and version for an image the user named: an exact product (`debian:bookworm:amd64:default`,
 * optionally `@<version>`), or an alias `os/release` (what 25.x used), which picks `<os>:<release>:<arch>:default`.
 * Without a version the newest (the registry's last) is used, as the middleware's own tests do.
 */
export function resolveImage(
  requested: string,
  registry: readonly RegistryImage[],
  arch = 'amd64',
): { name: string; version: string } {
  const text = requested.trim();
  const [wanted, pinned] = text.includes('@') ? text.split('@', 2) : [text, undefined];
  let product: RegistryImage | undefined;
  if (wanted.includes(':')) {
    product = registry.find((p) => p.name === wanted);
  } else {
    const alias = wanted.toLowerCase();
    const os = alias.split('/')[0];
    const release = CODENAMES[alias] ?? alias.split('/')[1];
    if (os && release) {
      const candidates = registry.filter((p) => p.name.startsWith(`${os}:${release}:`));
      product =
        candidates.find((p) => p.name === `${os}:${release}:${arch}:default`) ??
        candidates.find((p) => p.name.endsWith(':default'));
    }
  }
  if (!product) {
    const known = registry
      .map((p) => p.name)
      .filter((n) => n.endsWith(`:${arch}:default`))
      .slice(0, 8);
    const problem = `The image "${text}" is not in the server's image registry${known.length ? ` (for example: ${known.join(', ')})` : ''}.`;
    throw new ValidationError(problem, [{ field: 'image', message: problem }]);
  }
  const versions = product.versions.map((v) => v.version);
  const version = pinned ?? versions[versions.length - 1];
  if (!version || !versions.includes(version)) {
    const problem = pinned
      ? `The image "${product.name}" has no version "${pinned}".`
      : `The image "${product.name}" has no version to download.`;
    throw new ValidationError(problem, [{ field: 'image', message: problem }]);
  }
  return { name: product.name, version };
}

/**
 * The first-boot hook (§5: there is no exec API, so everything the client needs from inside is done at boot):
 * report the addresses into ADDRESS_DIR (cleared first, so the stale marker goes), and make sure sshd runs,
 * installing it once when the image lacks it. It runs on every boot, in the background, so a slow network does
 * not hold up the boot.
 */
export function bootHookScript(): string {
  return `#!/bin/sh
# Pixels boot hook (TrueNAS 26 has no exec API): report this sandbox's addresses, make sure sshd runs.
report() {
  for i in $(seq 1 120); do
    v4=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
    v6=$(ip -6 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
    if [ -n "$v4$v6" ]; then
      rm -rf ${ADDRESS_DIR}.new && mkdir -p ${ADDRESS_DIR}.new
      for a in $v4 $v6; do : > "${ADDRESS_DIR}.new/$a"; done
      rm -rf ${ADDRESS_DIR} && mv ${ADDRESS_DIR}.new ${ADDRESS_DIR}
      [ -n "$v4" ] && return 0
    fi
    sleep 1
  done
}
sshd_up() {
  if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
    if command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server
    elif command -v apk >/dev/null 2>&1; then
      apk add --no-cache openssh-server
    fi
  fi
  systemctl start ssh 2>/dev/null || systemctl start sshd 2>/dev/null || service ssh start 2>/dev/null || /usr/sbin/sshd
}
(report; sshd_up) >/var/log/pixels-boot.log 2>&1 &
exit 0
`;
}

/**
 * sshd serves only the key we pin: a clone keeps its source's other host keys (file_receive cannot delete), and
 * with a HostKey line sshd loads no default keys. Debian's sshd_config includes sshd_config.d/*.conf first.
 */
export const SSHD_HOSTKEY_DROPIN = '/etc/ssh/sshd_config.d/00-pixels-hostkey.conf';
export const SSHD_HOSTKEY_DROPIN_TEXT = 'HostKey /etc/ssh/ssh_host_ed25519_key\n';

/** A fresh machine-id (32 hex digits, as systemd writes it). */
export function machineIdText(random: Buffer): string {
  if (random.length < 16) throw new RangeError('A machine-id needs 16 random bytes.');
  return `${random.subarray(0, 16).toString('hex')}\n`;
}
