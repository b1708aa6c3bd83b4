// MemoryEngine: instances, ZFS datasets (each with its own file map) and snapshots, all in memory.
// Snapshots copy the dataset's file map, so rollback and clone restore exactly the files of the snapshot.
import { randomBytes } from 'node:crypto';
import {
  containerDataset,
  containerMountpoint,
  EngineError,
  type Address,
  type CreateInstanceSpec,
  type DatasetRecord,
  type FileStat,
  type FileWriteOptions,
  type ImageInfo,
  type InstanceChangeListener,
  type InstancePatch,
  type InstanceRecord,
  type InstanceStatus,
  type SimEngine,
  type SnapshotRecord,
} from '../engine.js';

interface FileEntry {
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}
type FileMap = Map<string, FileEntry>;

interface DatasetState {
  name: string;
  origin: string | null;
  createdAt: Date;
  /** bytes of the image the dataset started from (shared, not in the file map) */
  baseBytes: number;
  files: FileMap;
}

interface SnapshotState {
  dataset: string;
  name: string;
  createtxg: number;
  creation: Date;
  baseBytes: number;
  files: FileMap;
}

interface InstanceState {
  name: string;
  status: InstanceStatus;
  cpu: string | null;
  memory: number | null;
  autostart: boolean;
  environment: Record<string, string>;
  image: ImageInfo;
  privilegedMode: boolean;
  storagePool: string;
  devices: InstanceRecord['devices'];
  createdAt: Date;
  /** host part of the DHCP lease, kept across restarts */
  lease: number | null;
}

const DISTROS: Record<string, { os: string; bytes: number; codenames: Record<string, string> }> = {
  ubuntu: {
    os: 'Ubuntu',
    bytes: 604_372_992,
    codenames: { '24.04': 'noble', '22.04': 'jammy', '25.04': 'plucky' },
  },
  debian: {
    os: 'Debian',
    bytes: 412_090_368,
    codenames: { '12': 'bookworm', '13': 'trixie', '11': 'bullseye' },
  },
  alpine: { os: 'Alpine', bytes: 9_437_184, codenames: {} },
  fedora: { os: 'Fedora', bytes: 498_073_600, codenames: {} },
  archlinux: { os: 'Archlinux', bytes: 702_545_920, codenames: {} },
  rockylinux: { os: 'Rockylinux', bytes: 389_021_696, codenames: {} },
  almalinux: { os: 'Almalinux', bytes: 391_118_848, codenames: {} },
  opensuse: { os: 'Opensuse', bytes: 321_912_832, codenames: {} },
  nixos: { os: 'Nixos', bytes: 556_793_856, codenames: {} },
  devuan: { os: 'Devuan', bytes: 377_487_360, codenames: {} },
};

function cloneFiles(files: FileMap): FileMap {
  const out: FileMap = new Map();
  for (const [path, entry] of files) out.set(path, { ...entry, data: Buffer.from(entry.data) });
  return out;
}

function filesBytes(files: FileMap): number {
  let total = 0;
  for (const entry of files.values()) total += entry.data.length;
  return total;
}

function normalize(path: string): string {
  return path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

/** Incus instance names: a hostname label (1-63, letters/digits/hyphen, no leading digit/hyphen, no trailing hyphen). */
function checkInstanceName(name: string): void {
  let reason: string | null = null;
  if (name.length < 1 || name.length > 63) reason = 'Name must be 1-63 characters long';
  else if (/^[0-9]/.test(name)) reason = 'Name must not start with a digit';
  else if (name.startsWith('-')) reason = 'Name must not start with a hyphen';
  else if (name.endsWith('-')) reason = 'Name must not end with a hyphen';
  else if (!/^[a-zA-Z0-9-]+$/.test(name)) reason = 'Name can only contain alphanumeric and hyphen characters';
  if (reason) throw new EngineError('EINVAL', `Invalid instance name: ${reason}`);
}

function imageFor(alias: string, now: Date): { image: ImageInfo; bytes: number } {
  const [distro, release, variant = 'default'] = alias.split('/');
  const known = DISTROS[distro ?? ''];
  if (!known || !release) {
    throw new EngineError('EINVAL', `Failed getting remote image info: Image "${alias}" not found`);
  }
  const stamp = `${now.getUTCFullYear()}${String(now.getUTCMonth() + 1).padStart(2, '0')}${String(now.getUTCDate()).padStart(2, '0')}_07:42`;
  const codename = known.codenames[release] ?? release;
  return {
    image: {
      architecture: 'amd64',
      description: `${known.os} ${codename} amd64 (${stamp})`,
      os: known.os,
      release: codename,
      serial: stamp,
      type: 'squashfs',
      variant,
    },
    bytes: known.bytes,
  };
}

export interface MemoryEngineOptions {
  pool?: string;
}

export class MemoryEngine implements SimEngine {
  readonly kind = 'memory';
  readonly pool: string;
  private readonly instances = new Map<string, InstanceState>();
  private readonly datasets = new Map<string, DatasetState>();
  private readonly snapshots = new Map<string, SnapshotState>();
  private readonly listeners = new Set<InstanceChangeListener>();
  private txg = 2_417_905;
  private nextLease = 2;
  private deletedCounter = 0;

  constructor(options: MemoryEngineOptions = {}) {
    this.pool = options.pool ?? 'tank';
    const created = new Date(Date.now() - 200 * 86_400_000);
    for (const name of [
      this.pool,
      `${this.pool}/.ix-virt`,
      `${this.pool}/.ix-virt/containers`,
      `${this.pool}/.ix-virt/images`,
      `${this.pool}/.ix-virt/custom`,
      `${this.pool}/.ix-virt/deleted`,
      `${this.pool}/.ix-virt/deleted/containers`,
    ]) {
      this.datasets.set(name, {
        name,
        origin: null,
        createdAt: created,
        baseBytes: 98_304,
        files: new Map(),
      });
    }
  }

  // ---------------------------------------------------------------- instances

  async listInstances(): Promise<InstanceRecord[]> {
    return [...this.instances.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((i) => this.record(i));
  }

  async createInstance(spec: CreateInstanceSpec): Promise<InstanceRecord> {
    checkInstanceName(spec.name);
    if (this.instances.has(spec.name)) throw new EngineError('EEXIST', 'Instance is already exists');
    const now = new Date();
    const { image, bytes } = imageFor(spec.image, now);
    const dataset = containerDataset(this.pool, spec.name);
    if (this.datasets.has(dataset)) {
      throw new EngineError('EEXIST', `Failed creating instance record: dataset "${dataset}" already exists`);
    }
    const files: FileMap = new Map();
    const put = (path: string, text: string) =>
      files.set(path, { data: Buffer.from(text), mode: 0o644, uid: 0, gid: 0, mtime: now });
    put('rootfs/etc/hostname', `${spec.name}\n`);
    put('rootfs/etc/machine-id', `${randomBytes(16).toString('hex')}\n`);
    put('rootfs/etc/os-release', `NAME="${image.os}"\nVERSION_CODENAME=${image.release}\n`);
    put('metadata.yaml', `architecture: x86_64\ncreation_date: ${Math.floor(now.getTime() / 1000)}\n`);
    this.datasets.set(dataset, { name: dataset, origin: null, createdAt: now, baseBytes: bytes, files });
    this.txg += 3;
    const state: InstanceState = {
      name: spec.name,
      status: 'STOPPED',
      cpu: spec.cpu,
      memory: spec.memory,
      autostart: spec.autostart,
      environment: { ...spec.environment },
      image,
      privilegedMode: spec.privilegedMode,
      storagePool: spec.storagePool,
      devices: spec.devices.map((d) => ({ ...d })),
      createdAt: now,
      lease: null,
    };
    this.instances.set(spec.name, state);
    return this.record(state);
  }

  async updateInstance(name: string, patch: InstancePatch): Promise<InstanceRecord> {
    const state = this.mustInstance(name);
    if (patch.cpu !== undefined) state.cpu = patch.cpu;
    if (patch.memory !== undefined) state.memory = patch.memory;
    if (patch.environment !== undefined) state.environment = { ...patch.environment };
    if (patch.autostart !== undefined) state.autostart = patch.autostart;
    if (patch.privilegedMode !== undefined) state.privilegedMode = patch.privilegedMode;
    return this.record(state);
  }

  async startInstance(name: string): Promise<void> {
    const state = this.mustInstance(name);
    if (state.status === 'RUNNING') throw new EngineError('EBUSY', 'The instance is already running');
    const dataset = containerDataset(this.pool, name);
    if (!this.datasets.has(dataset)) {
      throw new EngineError('EFAULT', `Failed to mount "${dataset}": dataset does not exist`);
    }
    if (state.lease === null) state.lease = this.nextLease++;
    this.setStatus(state, 'RUNNING');
  }

  async stopInstance(name: string, _force: boolean, _timeoutSeconds: number): Promise<void> {
    const state = this.instances.get(name);
    if (!state) throw new EngineError('ENOENT', 'Instance not found');
    if (state.status === 'STOPPED') throw new EngineError('EBUSY', 'The instance is already stopped');
    this.setStatus(state, 'STOPPED');
  }

  async deleteInstance(name: string): Promise<void> {
    const state = this.mustInstance(name);
    if (state.status !== 'STOPPED') this.setStatus(state, 'STOPPED');
    this.instances.delete(name);
    const dataset = containerDataset(this.pool, name);
    if (!this.datasets.has(dataset)) return;
    const tree = this.subtree(dataset);
    const cloned = [...this.snapshots.values()].some(
      (snap) => tree.includes(snap.dataset) && this.clonesOf(`${snap.dataset}@${snap.name}`).length > 0,
    );
    if (cloned) {
      // Incus cannot destroy a volume whose snapshots have clones: it parks it under deleted/.
      this.deletedCounter += 1;
      this.move(dataset, `${this.pool}/.ix-virt/deleted/containers/${name}-${this.deletedCounter}`);
      return;
    }
    for (const id of [...this.snapshots.keys()])
      if (tree.includes(this.snapshots.get(id)!.dataset)) this.snapshots.delete(id);
    for (const ds of tree) this.datasets.delete(ds);
    this.collectDeleted();
  }

  /** Incus removes a parked volume under deleted/ once no clone depends on its snapshots any more. */
  private collectDeleted(): void {
    const parked = `${this.pool}/.ix-virt/deleted/containers/`;
    for (const name of [...this.datasets.keys()]) {
      if (!name.startsWith(parked) || name.slice(parked.length).includes('/')) continue;
      const tree = this.subtree(name);
      const snaps = [...this.snapshots.values()].filter((s) => tree.includes(s.dataset));
      if (snaps.some((s) => this.clonesOf(`${s.dataset}@${s.name}`).length > 0)) continue;
      for (const s of snaps) this.snapshots.delete(`${s.dataset}@${s.name}`);
      for (const ds of tree) this.datasets.delete(ds);
    }
  }

  onInstanceChange(listener: InstanceChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- datasets / snapshots

  async listDatasets(): Promise<DatasetRecord[]> {
    return [...this.datasets.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((d) => this.datasetRecord(d));
  }

  async createDataset(name: string): Promise<DatasetRecord> {
    if (this.datasets.has(name))
      throw new EngineError('EEXIST', `cannot create '${name}': dataset already exists`);
    this.mustParent(name, 'create');
    const state: DatasetState = {
      name,
      origin: null,
      createdAt: new Date(),
      baseBytes: 98_304,
      files: new Map(),
    };
    this.datasets.set(name, state);
    this.txg += 1;
    return this.datasetRecord(state);
  }

  async listSnapshots(): Promise<SnapshotRecord[]> {
    return [...this.snapshots.values()]
      .sort((a, b) => a.dataset.localeCompare(b.dataset) || a.createtxg - b.createtxg)
      .map((s) => this.snapshotRecord(s));
  }

  async createSnapshot(dataset: string, name: string, hint?: { creation?: Date }): Promise<SnapshotRecord> {
    const ds = this.datasets.get(dataset);
    if (!ds) throw new EngineError('ENOENT', `cannot open '${dataset}': dataset does not exist`);
    const id = `${dataset}@${name}`;
    if (this.snapshots.has(id))
      throw new EngineError('EEXIST', `cannot create snapshot '${id}': dataset already exists`);
    this.txg += 7;
    const snap: SnapshotState = {
      dataset,
      name,
      createtxg: this.txg,
      creation: hint?.creation ?? new Date(),
      baseBytes: ds.baseBytes,
      files: cloneFiles(ds.files),
    };
    this.snapshots.set(id, snap);
    return this.snapshotRecord(snap);
  }

  async destroySnapshot(id: string): Promise<void> {
    if (!this.snapshots.has(id))
      throw new EngineError('ENOENT', `could not find any snapshots to destroy; check snapshot names.`);
    const clones = this.clonesOf(id);
    if (clones.length)
      throw new EngineError('EBUSY', `cannot destroy '${id}': snapshot has dependent clones`);
    this.snapshots.delete(id);
    this.txg += 1;
  }

  async renameSnapshot(id: string, newName: string): Promise<void> {
    const snap = this.snapshots.get(id);
    if (!snap) throw new EngineError('ENOENT', `cannot open '${id}': dataset does not exist`);
    const newId = `${snap.dataset}@${newName}`;
    if (this.snapshots.has(newId))
      throw new EngineError('EEXIST', `cannot rename to '${newId}': dataset already exists`);
    this.snapshots.delete(id);
    snap.name = newName;
    this.snapshots.set(newId, snap);
    for (const ds of this.datasets.values()) if (ds.origin === id) ds.origin = newId;
    this.txg += 1;
  }

  async rollbackSnapshot(id: string): Promise<void> {
    const snap = this.snapshots.get(id);
    if (!snap) throw new EngineError('ENOENT', `cannot open '${id}': dataset does not exist`);
    const newer = this.snapshotsOf(snap.dataset).filter((s) => s.createtxg > snap.createtxg);
    if (newer.length) {
      throw new EngineError('EBUSY', `cannot rollback to '${id}': more recent snapshots or bookmarks exist`);
    }
    const ds = this.datasets.get(snap.dataset)!;
    ds.files = cloneFiles(snap.files);
    ds.baseBytes = snap.baseBytes;
    this.txg += 1;
  }

  async cloneSnapshot(id: string, target: string): Promise<void> {
    const snap = this.snapshots.get(id);
    if (!snap) throw new EngineError('ENOENT', `cannot open '${id}': dataset does not exist`);
    if (this.datasets.has(target))
      throw new EngineError('EEXIST', `cannot create '${target}': dataset already exists`);
    this.mustParent(target, 'create');
    this.datasets.set(target, {
      name: target,
      origin: id,
      createdAt: new Date(),
      baseBytes: snap.baseBytes,
      files: cloneFiles(snap.files),
    });
    this.txg += 2;
  }

  async destroyDataset(name: string): Promise<void> {
    if (!this.datasets.has(name))
      throw new EngineError('ENOENT', `cannot open '${name}': dataset does not exist`);
    if (this.isMountedByInstance(name)) {
      throw new EngineError('EBUSY', `cannot unmount '${this.mountpointOf(name)}': pool or dataset is busy`);
    }
    if (this.subtree(name).length > 1)
      throw new EngineError('EBUSY', `cannot destroy '${name}': filesystem has children`);
    if (this.snapshotsOf(name).length)
      throw new EngineError('EBUSY', `cannot destroy '${name}': filesystem has children`);
    this.datasets.delete(name);
    this.txg += 1;
  }

  async renameDataset(from: string, to: string): Promise<void> {
    if (!this.datasets.has(from))
      throw new EngineError('ENOENT', `cannot open '${from}': dataset does not exist`);
    if (this.datasets.has(to))
      throw new EngineError('EEXIST', `cannot rename to '${to}': dataset already exists`);
    if (to.startsWith(`${from}/`))
      throw new EngineError(
        'EINVAL',
        `cannot rename to '${to}': New dataset name cannot be a descendant of current dataset name`,
      );
    this.mustParent(to, 'rename to');
    if (this.subtree(from).some((ds) => this.isMountedByInstance(ds))) {
      throw new EngineError('EBUSY', `cannot unmount '${this.mountpointOf(from)}': pool or dataset is busy`);
    }
    this.move(from, to);
    this.txg += 1;
  }

  async promoteDataset(name: string): Promise<void> {
    const ds = this.datasets.get(name);
    if (!ds) throw new EngineError('ENOENT', `cannot open '${name}': dataset does not exist`);
    if (!ds.origin) throw new EngineError('EINVAL', `cannot promote '${name}': not a cloned filesystem`);
    const originId = ds.origin;
    const origin = this.snapshots.get(originId);
    if (!origin) throw new EngineError('EFAULT', `cannot promote '${name}': origin snapshot is missing`);
    const parent = this.datasets.get(origin.dataset)!;
    const moving = this.snapshotsOf(origin.dataset).filter((s) => s.createtxg <= origin.createtxg);
    for (const snap of moving) {
      if (this.snapshots.has(`${name}@${snap.name}`)) {
        throw new EngineError(
          'EEXIST',
          `cannot promote '${name}': snapshot name '${snap.name}' from origin conflicts with '${name}@${snap.name}'`,
        );
      }
    }
    const renames = new Map<string, string>();
    for (const snap of moving) {
      const oldId = `${snap.dataset}@${snap.name}`;
      const newId = `${name}@${snap.name}`;
      this.snapshots.delete(oldId);
      snap.dataset = name;
      this.snapshots.set(newId, snap);
      renames.set(oldId, newId);
    }
    const parentOrigin = parent.origin;
    for (const other of this.datasets.values()) {
      if (other.origin && renames.has(other.origin)) other.origin = renames.get(other.origin)!;
    }
    ds.origin = parentOrigin;
    parent.origin = renames.get(originId) ?? null;
    this.txg += 1;
  }

  // ---------------------------------------------------------------- files

  async writeFile(dataset: string, path: string, data: Buffer, options: FileWriteOptions): Promise<void> {
    const ds = this.datasets.get(dataset);
    if (!ds) throw new EngineError('ENOENT', `cannot open '${dataset}': dataset does not exist`);
    const key = normalize(path);
    if (!key) throw new EngineError('EINVAL', 'Is a directory');
    for (const existing of ds.files.keys()) {
      if (existing.startsWith(`${key}/`))
        throw new EngineError('EINVAL', `[Errno 21] Is a directory: '${key}'`);
    }
    const old = ds.files.get(key);
    ds.files.set(key, {
      data: options.append && old ? Buffer.concat([old.data, data]) : Buffer.from(data),
      mode: options.mode ?? old?.mode ?? 0o644,
      uid: options.uid >= 0 ? options.uid : (old?.uid ?? 0),
      gid: options.gid >= 0 ? options.gid : (old?.gid ?? 0),
      mtime: new Date(),
    });
    this.txg += 1;
  }

  async readFile(dataset: string, path: string): Promise<Buffer | undefined> {
    const entry = this.datasets.get(dataset)?.files.get(normalize(path));
    return entry ? Buffer.from(entry.data) : undefined;
  }

  async statPath(dataset: string, path: string): Promise<FileStat | undefined> {
    const ds = this.datasets.get(dataset);
    if (!ds) return undefined;
    const key = normalize(path);
    const entry = ds.files.get(key);
    if (entry) {
      return {
        type: 'FILE',
        size: entry.data.length,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        mtime: entry.mtime,
      };
    }
    const isDir = key === '' || [...ds.files.keys()].some((p) => p.startsWith(`${key}/`));
    return isDir
      ? { type: 'DIRECTORY', size: 4096, mode: 0o755, uid: 0, gid: 0, mtime: ds.createdAt }
      : undefined;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- helpers

  private mustInstance(name: string): InstanceState {
    const state = this.instances.get(name);
    if (!state) throw new EngineError('ENOENT', 'Instance not found');
    return state;
  }

  private mustParent(name: string, verb: string): void {
    const parent = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
    if (!parent || !this.datasets.has(parent)) {
      throw new EngineError('ENOENT', `cannot ${verb} '${name}': parent does not exist`);
    }
  }

  private setStatus(state: InstanceState, status: InstanceStatus): void {
    state.status = status;
    for (const listener of this.listeners) listener(state.name, status);
  }

  private subtree(name: string): string[] {
    return [...this.datasets.keys()].filter((ds) => ds === name || ds.startsWith(`${name}/`));
  }

  private snapshotsOf(dataset: string): SnapshotState[] {
    return [...this.snapshots.values()]
      .filter((s) => s.dataset === dataset)
      .sort((a, b) => a.createtxg - b.createtxg);
  }

  private clonesOf(id: string): string[] {
    return [...this.datasets.values()]
      .filter((d) => d.origin === id)
      .map((d) => d.name)
      .sort();
  }

  private instanceOfDataset(name: string): InstanceState | undefined {
    const prefix = `${this.pool}/.ix-virt/containers/`;
    return name.startsWith(prefix) ? this.instances.get(name.slice(prefix.length)) : undefined;
  }

  private isMountedByInstance(name: string): boolean {
    return this.instanceOfDataset(name)?.status === 'RUNNING';
  }

  private mountpointOf(name: string): string {
    const prefix = `${this.pool}/.ix-virt/containers/`;
    if (name.startsWith(prefix)) return containerMountpoint(this.pool, name.slice(prefix.length));
    return `/mnt/${name}`;
  }

  /** Moves a dataset subtree and its snapshots to a new name, fixing origins that point at moved snapshots. */
  private move(from: string, to: string): void {
    const rename = (n: string) => (n === from ? to : `${to}${n.slice(from.length)}`);
    const snapshotIds = new Map<string, string>();
    for (const ds of this.subtree(from)) {
      const state = this.datasets.get(ds)!;
      this.datasets.delete(ds);
      state.name = rename(ds);
      this.datasets.set(state.name, state);
    }
    for (const [id, snap] of [...this.snapshots]) {
      if (snap.dataset === from || snap.dataset.startsWith(`${from}/`)) {
        this.snapshots.delete(id);
        snap.dataset = rename(snap.dataset);
        const newId = `${snap.dataset}@${snap.name}`;
        this.snapshots.set(newId, snap);
        snapshotIds.set(id, newId);
      }
    }
    for (const ds of this.datasets.values()) {
      if (ds.origin && snapshotIds.has(ds.origin)) ds.origin = snapshotIds.get(ds.origin)!;
    }
  }

  private addresses(state: InstanceState): Address[] {
    if (state.status !== 'RUNNING' || state.lease === null) return [];
    // Loopback addresses (and their IPv4-mapped IPv6 form): the editor may try SSH or the egress read against a
    // simulated sandbox, and those attempts must stay on this machine (refused at once), never be routed off it.
    return [
      { type: 'INET', address: `127.77.1.${state.lease}`, netmask: 24 },
      { type: 'INET6', address: `::ffff:127.77.1.${state.lease}`, netmask: 120 },
    ];
  }

  private record(state: InstanceState): InstanceRecord {
    return {
      name: state.name,
      status: state.status,
      cpu: state.cpu,
      memory: state.memory,
      autostart: state.autostart,
      environment: { ...state.environment },
      image: { ...state.image },
      privilegedMode: state.privilegedMode,
      storagePool: state.storagePool,
      devices: state.devices.map((d) => ({ ...d })),
      addresses: this.addresses(state),
      createdAt: new Date(state.createdAt),
    };
  }

  private datasetRecord(ds: DatasetState): DatasetRecord {
    const referenced = ds.baseBytes + filesBytes(ds.files);
    const snapUsed = this.snapshotsOf(ds.name).reduce((sum, s) => sum + this.snapshotUsed(s), 0);
    const children = this.subtree(ds.name).filter((n) => n !== ds.name);
    const childUsed = children.reduce((sum, n) => {
      const c = this.datasets.get(n)!;
      return sum + c.baseBytes + filesBytes(c.files);
    }, 0);
    const instance = this.instanceOfDataset(ds.name);
    return {
      name: ds.name,
      origin: ds.origin,
      createdAt: new Date(ds.createdAt),
      mounted: instance ? instance.status === 'RUNNING' : !ds.name.startsWith(`${this.pool}/.ix-virt/`),
      mountpoint: this.mountpointOf(ds.name),
      // A clone shares its origin's blocks: only what it changed counts as used.
      usedBytes: (ds.origin ? filesBytes(ds.files) : referenced) + snapUsed + childUsed,
      referencedBytes: referenced,
    };
  }

  /** Bytes only this snapshot holds: files that differ from both the previous snapshot and the next state. */
  private snapshotUsed(snap: SnapshotState): number {
    const list = this.snapshotsOf(snap.dataset);
    const index = list.indexOf(snap);
    const prev = index > 0 ? list[index - 1].files : undefined;
    const next = index < list.length - 1 ? list[index + 1].files : this.datasets.get(snap.dataset)?.files;
    let unique = 0;
    for (const [path, entry] of snap.files) {
      const inPrev = prev?.get(path)?.data.equals(entry.data) ?? false;
      const inNext = next?.get(path)?.data.equals(entry.data) ?? false;
      if (!inPrev && !inNext) unique += entry.data.length;
    }
    return unique;
  }

  private snapshotRecord(snap: SnapshotState): SnapshotRecord {
    const id = `${snap.dataset}@${snap.name}`;
    return {
      id,
      dataset: snap.dataset,
      name: snap.name,
      createtxg: snap.createtxg,
      creation: new Date(snap.creation),
      usedBytes: this.snapshotUsed(snap),
      referencedBytes: snap.baseBytes + filesBytes(snap.files),
      clones: this.clonesOf(id),
    };
  }
}
