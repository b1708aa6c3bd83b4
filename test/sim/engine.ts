// SimEngine: the state behind the simulated TrueNAS (what Incus + ZFS hold on a real box). The protocol layer
// (server.ts, methods/*) owns everything the middleware does: argument validation, error wording, jobs, events,
// and ZFS rules such as "rollback needs -r when newer snapshots exist" or "a snapshot with clones needs defer".
// An engine only stores and changes state, and throws EngineError when a primitive cannot be done.
//
// Two engines: MemoryEngine (engines/memory.ts, in memory) and IncusEngine (engines/incus.ts, real containers).
//
// Naming (the engine's DatasetLayout, chosen by the server before anything exists):
// - 'virt' (25.x, Incus): every instance `<name>` has a root dataset `<pool>/.ix-virt/containers/<name>`
//   (containerDataset()). Its mountpoint while mounted (while it runs) is
//   `/var/lib/incus/storage-pools/<pool>/containers/<name>` with the root filesystem in `rootfs/`.
// - 'container' (26, libvirt LXC): `<pool>/.truenas_containers/containers/<name>`, always mounted at
//   `/mnt/.truenas_containers/<pool>/containers/<name>`, the root filesystem at the dataset root.
// - Datasets outside `.ix-virt` are mounted at `/mnt/<dataset>`.
// - Snapshot ids are `<dataset>@<name>`.
// - File paths given to writeFile/readFile/statPath are relative to the dataset root, e.g. "rootfs/root/.ssh/x"
//   ('virt') or "root/.ssh/x" ('container'); rootfsPrefix() gives the part before the root filesystem.
//
// Every method is async; nothing returned may be mutated by the caller to change engine state (engines return
// copies).

export type InstanceStatus = 'RUNNING' | 'STOPPED' | 'STARTING' | 'STOPPING' | 'FROZEN' | 'ERROR' | 'UNKNOWN';

export interface ImageInfo {
  architecture: string;
  description: string;
  os: string;
  release: string;
  serial: string;
  type: string;
  variant: string;
}

export interface Address {
  type: 'INET' | 'INET6';
  address: string;
  netmask: number;
}

/** A device as the protocol layer validated it (virt.instance device dicts, without the profile/root ones). */
export type DeviceSpec = Record<string, string | number | boolean | null>;

export interface InstanceRecord {
  name: string;
  status: InstanceStatus;
  cpu: string | null;
  /** bytes, or null for no limit */
  memory: number | null;
  autostart: boolean;
  environment: Record<string, string>;
  image: ImageInfo;
  privilegedMode: boolean;
  storagePool: string;
  devices: DeviceSpec[];
  /** global-scope addresses; empty unless RUNNING */
  addresses: Address[];
  /** host PID of the container's init while it runs, else null */
  pid: number | null;
  createdAt: Date;
}

export interface CreateInstanceSpec {
  name: string;
  /** Incus image alias, e.g. "ubuntu/24.04" */
  image: string;
  cpu: string | null;
  memory: number | null;
  environment: Record<string, string>;
  /** stored as the instance's autostart flag only: the protocol layer starts the instance itself */
  autostart: boolean;
  privilegedMode: boolean;
  storagePool: string;
  devices: DeviceSpec[];
  /**
   * virt.global.config `bridge` when the instance was created: the default profile's NIC parent. Null or absent:
   * the automatic bridge, which a stock NAS NATs (a laptop cannot reach instances on it).
   */
  defaultBridge?: string | null;
  /** the snapshot the root dataset is a clone of (26: the cached image's `@image`), or none */
  origin?: string | null;
}

export interface InstancePatch {
  cpu?: string | null;
  memory?: number | null;
  environment?: Record<string, string>;
  autostart?: boolean;
  privilegedMode?: boolean;
  /** 26: the NIC devices and default bridge, applied when the domain is (re)defined at start */
  devices?: DeviceSpec[];
  defaultBridge?: string | null;
}

export interface DatasetRecord {
  /** e.g. "tank/.ix-virt/containers/px-web" */
  name: string;
  /** snapshot id this dataset was cloned from, or null */
  origin: string | null;
  createdAt: Date;
  /** mounted right now (an instance dataset only while its instance runs; others always) */
  mounted: boolean;
  mountpoint: string;
  usedBytes: number;
  referencedBytes: number;
}

export interface SnapshotRecord {
  /** "<dataset>@<name>" */
  id: string;
  dataset: string;
  name: string;
  /** ZFS transaction group; increases with every change on the pool */
  createtxg: number;
  creation: Date;
  usedBytes: number;
  referencedBytes: number;
  /** datasets cloned from this snapshot */
  clones: string[];
}

export interface FileWriteOptions {
  append: boolean;
  /** permission bits, or null to keep/default (0o644) */
  mode: number | null;
  /** -1 = keep/default (0) */
  uid: number;
  gid: number;
}

export interface FileStat {
  type: 'FILE' | 'DIRECTORY' | 'SYMLINK';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  /** SYMLINK only: the link's text, exactly as stored (readlink) */
  target?: string;
}

export type EngineErrorCode = 'ENOENT' | 'EEXIST' | 'EBUSY' | 'EINVAL' | 'EFAULT';

/** A primitive failed; `message` reads like the Incus/ZFS text (the protocol layer wraps it). */
export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type InstanceChangeListener = (name: string, status: InstanceStatus) => void;

export type DatasetLayout = 'virt' | 'container';

export interface SimEngine {
  /** "memory" | "incus" */
  readonly kind: string;
  /** the ZFS pool virt uses ("tank") */
  readonly pool: string;
  readonly layout: DatasetLayout;
  /** Chooses the layout; only while the engine holds no instance (the server calls it before seeding). */
  useLayout(layout: DatasetLayout): void;

  // ---- instances (Incus) ----
  listInstances(): Promise<InstanceRecord[]>;
  /** Creates a STOPPED instance and its root dataset. EEXIST if the name is taken; EINVAL for a bad name/image. */
  createInstance(spec: CreateInstanceSpec): Promise<InstanceRecord>;
  updateInstance(name: string, patch: InstancePatch): Promise<InstanceRecord>;
  /** ENOENT unknown; EBUSY already running ("The instance is already running"); EFAULT if the root dataset is gone. */
  startInstance(name: string): Promise<void>;
  /** ENOENT unknown ("Instance not found"); EBUSY already stopped ("The instance is already stopped"). */
  stopInstance(name: string, force: boolean, timeoutSeconds: number): Promise<void>;
  /** Stops if needed and removes the instance and its root dataset with its snapshots. If a snapshot of it has
   *  clones, the dataset is kept under `<pool>/.ix-virt/deleted/containers/` (as Incus does) instead, and removed
   *  once a later deleteInstance takes away its last clone. */
  deleteInstance(name: string): Promise<void>;
  /** 26's B3 delete: stops the instance if needed and removes it, leaving its root dataset (with its snapshots)
   *  where it is, an orphan no instance owns. */
  forgetInstance(name: string): Promise<void>;
  /** 26's rename (stopped only): the instance and its root dataset take the new name. EEXIST / ENOENT. */
  renameInstance(from: string, to: string): Promise<void>;
  /** Optional: status changes made outside the API (a container that shut itself down). */
  onInstanceChange?(listener: InstanceChangeListener): () => void;

  // ---- ZFS datasets and snapshots ----
  listDatasets(): Promise<DatasetRecord[]>;
  /** A plain filesystem dataset (parent must exist). EEXIST / ENOENT. */
  createDataset(name: string): Promise<DatasetRecord>;
  /** `onlyDataset`: the snapshots of the datasets it accepts (a query that names its datasets walks only those). */
  listSnapshots(onlyDataset?: (dataset: string) => boolean): Promise<SnapshotRecord[]>;
  /** EEXIST duplicate, ENOENT no dataset. `creation` is a hint for seeding old snapshots (an engine may ignore it). */
  createSnapshot(dataset: string, name: string, hint?: { creation?: Date }): Promise<SnapshotRecord>;
  /** Removes one snapshot. EBUSY if it has clones. */
  destroySnapshot(id: string): Promise<void>;
  /** Renames a snapshot within its dataset (`newName` is the part after "@"). EEXIST / ENOENT. */
  renameSnapshot(id: string, newName: string): Promise<void>;
  /** Dataset content becomes the snapshot's. The caller has removed newer snapshots first (EBUSY otherwise). */
  rollbackSnapshot(id: string): Promise<void>;
  /** New dataset `target` whose content is a copy of the snapshot, origin = id. EEXIST / ENOENT (parent). */
  cloneSnapshot(id: string, target: string): Promise<void>;
  /** Removes a dataset that has no snapshots and no child datasets (EBUSY otherwise, or while an instance
   *  uses it mounted). */
  destroyDataset(name: string): Promise<void>;
  /** Renames a dataset with its children and snapshots. EEXIST / ENOENT. */
  renameDataset(from: string, to: string): Promise<void>;
  /** zfs promote: the clone takes over its origin's snapshots up to the origin; EINVAL if not a clone. */
  promoteDataset(name: string): Promise<void>;

  // ---- files inside datasets ----
  // The protocol layer resolves symlinks itself (methods/host-paths.ts, with the NAS's own semantics) and hands
  // writeFile a path whose existing components it saw as plain directories.
  writeFile(dataset: string, path: string, data: Buffer, options: FileWriteOptions): Promise<void>;
  readFile(dataset: string, path: string): Promise<Buffer | undefined>;
  /** The names in directory `path` (not following a link there), or undefined when it is no directory. */
  listDir(dataset: string, path: string): Promise<string[] | undefined>;
  /** lstat: a symlink at `path` is reported as SYMLINK with its text, not followed. */
  statPath(dataset: string, path: string): Promise<FileStat | undefined>;
  /** Test hook: makes `path` a symlink to `target` (what root inside the sandbox could do). */
  symlink?(dataset: string, path: string, target: string): Promise<void>;

  close(): Promise<void>;
}

export function containerDataset(pool: string, name: string): string {
  return `${pool}/.ix-virt/containers/${name}`;
}

export function containerMountpoint(pool: string, name: string): string {
  return `/var/lib/incus/storage-pools/${pool}/containers/${name}`;
}

/** An instance's root dataset in a layout. */
export function instanceDataset(layout: DatasetLayout, pool: string, name: string): string {
  return layout === 'virt' ? containerDataset(pool, name) : `${pool}/.truenas_containers/containers/${name}`;
}

/** Where an instance's root dataset is mounted (26: always; 25.x: while it runs). */
export function instanceMountpoint(layout: DatasetLayout, pool: string, name: string): string {
  return layout === 'virt'
    ? containerMountpoint(pool, name)
    : `/mnt/.truenas_containers/${pool}/containers/${name}`;
}

/** The part of a file path inside an instance's dataset before its root filesystem. */
export function rootfsPrefix(layout: DatasetLayout): string {
  return layout === 'virt' ? 'rootfs/' : '';
}

/** The datasets a pool has before any instance exists. */
export function layoutParents(layout: DatasetLayout, pool: string): string[] {
  return layout === 'virt'
    ? [
        `${pool}/.ix-virt`,
        `${pool}/.ix-virt/containers`,
        `${pool}/.ix-virt/images`,
        `${pool}/.ix-virt/custom`,
        `${pool}/.ix-virt/deleted`,
        `${pool}/.ix-virt/deleted/containers`,
      ]
    : [
        `${pool}/.truenas_containers`,
        `${pool}/.truenas_containers/containers`,
        `${pool}/.truenas_containers/images`,
      ];
}
