// MemoryEngine: instances, ZFS datasets (each with its own file map) and snapshots, all in memory.
// Snapshots copy the dataset's file map, so rollback and clone restore exactly the files of the snapshot.
import { randomBytes } from 'node:crypto';
import {
  EngineError,
  instanceDataset,
  rootfsPrefix,
  type DatasetLayout,
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
import {
  cloneFiles,
  filesBytes,
  linkEntry,
  listEntries,
  normalize,
  statEntry,
  writableKey,
  writeEntry,
  type FileMap,
} from './file-map.js';
import {
  applyPatch,
  checkNewInstance,
  incusErrors,
  instanceRecord,
  mustInstance,
  newInstance,
  type InstanceBase,
} from './instances.js';
import { snapshotId, ZfsBook, type DatasetBase, type SnapshotBase } from './zfs-book.js';

interface DatasetState extends DatasetBase {
  /** bytes of the image the dataset started from (shared, not in the file map) */
  baseBytes: number;
  files: FileMap;
}

interface SnapshotState extends SnapshotBase {
  baseBytes: number;
  files: FileMap;
}

/** Bytes only this snapshot holds: files that differ from both its neighbours (previous snapshot, next state). */
function uniqueBytes(snap: SnapshotState, prev: FileMap | undefined, next: FileMap | undefined): number {
  let unique = 0;
  for (const [path, entry] of snap.files) {
    const inPrev = prev?.get(path)?.data.equals(entry.data) ?? false;
    const inNext = next?.get(path)?.data.equals(entry.data) ?? false;
    if (!inPrev && !inNext) unique += entry.data.length;
  }
  return unique;
}

interface InstanceState extends InstanceBase {
  status: InstanceStatus;
  /** host part of the DHCP lease, kept across restarts */
  lease: number | null;
  /** the init's host PID while it runs (a fresh one per start) */
  pid: number | null;
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

function imageFor(alias: string, now: Date): { image: ImageInfo; bytes: number } {
  const [distro, release, variant = 'default'] = alias.split('/');
  const known = DISTROS[distro ?? ''];
  if (!known || !release) {
    throw incusErrors.imageNotFound(alias);
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
  private readonly zfs: ZfsBook<DatasetState, SnapshotState>;
  private readonly listeners = new Set<InstanceChangeListener>();
  private nextLease = 2;

  constructor(options: MemoryEngineOptions = {}) {
    this.pool = options.pool ?? 'tank';
    this.zfs = new ZfsBook(this.pool, () => ({ baseBytes: 98_304, files: new Map() }));
  }

  get layout(): DatasetLayout {
    return this.zfs.layout;
  }

  useLayout(layout: DatasetLayout): void {
    if (this.instances.size) throw new Error('the dataset layout can only change before any instance exists');
    this.zfs.setLayout(layout);
  }

  private datasetOf(name: string): string {
    return instanceDataset(this.layout, this.pool, name);
  }

  // ---------------------------------------------------------------- instances

  async listInstances(): Promise<InstanceRecord[]> {
    return [...this.instances.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((i) => this.record(i));
  }

  async createInstance(spec: CreateInstanceSpec): Promise<InstanceRecord> {
    checkNewInstance(this.instances, spec.name);
    const now = new Date();
    const { image, bytes } = imageFor(spec.image, now);
    const dataset = this.datasetOf(spec.name);
    this.zfs.checkInstanceDataset(dataset);
    const files: FileMap = new Map();
    const put = (path: string, text: string) =>
      files.set(path, { data: Buffer.from(text), mode: 0o644, uid: 0, gid: 0, mtime: now });
    const root = rootfsPrefix(this.layout);
    put(`${root}etc/hostname`, `${spec.name}\n`);
    put(`${root}etc/machine-id`, `${randomBytes(16).toString('hex')}\n`);
    put(`${root}etc/os-release`, `NAME="${image.os}"\nVERSION_CODENAME=${image.release}\n`);
    if (this.layout === 'virt')
      put('metadata.yaml', `architecture: x86_64\ncreation_date: ${Math.floor(now.getTime() / 1000)}\n`);
    this.zfs.addDataset(dataset, spec.origin ?? null, now, { baseBytes: bytes, files });
    this.zfs.txg += 3;
    const state: InstanceState = {
      ...newInstance(spec, image, now),
      status: 'STOPPED',
      lease: null,
      pid: null,
    };
    this.instances.set(spec.name, state);
    return this.record(state);
  }

  async updateInstance(name: string, patch: InstancePatch): Promise<InstanceRecord> {
    const state = mustInstance(this.instances, name);
    applyPatch(state, patch);
    return this.record(state);
  }

  async startInstance(name: string): Promise<void> {
    const state = mustInstance(this.instances, name);
    if (state.status === 'RUNNING') throw incusErrors.alreadyRunning();
    const dataset = this.datasetOf(name);
    if (!this.zfs.datasets.has(dataset)) {
      throw incusErrors.rootMissing(dataset);
    }
    if (state.lease === null) state.lease = this.nextLease++;
    state.pid = 4000 + Math.floor(Math.random() * 60_000);
    this.setStatus(state, 'RUNNING');
  }

  async stopInstance(name: string, _force: boolean, _timeoutSeconds: number): Promise<void> {
    const state = mustInstance(this.instances, name);
    if (state.status === 'STOPPED') throw incusErrors.alreadyStopped();
    state.pid = null;
    this.setStatus(state, 'STOPPED');
  }

  async forgetInstance(name: string): Promise<void> {
    const state = mustInstance(this.instances, name);
    if (state.status !== 'STOPPED') {
      state.pid = null;
      this.setStatus(state, 'STOPPED');
    }
    this.instances.delete(name);
  }

  async renameInstance(from: string, to: string): Promise<void> {
    const state = mustInstance(this.instances, from);
    checkNewInstance(this.instances, to);
    if (state.status === 'RUNNING') throw this.zfs.busy(this.datasetOf(from));
    this.zfs.checkRename(this.datasetOf(from), this.datasetOf(to));
    this.zfs.move(this.datasetOf(from), this.datasetOf(to));
    this.zfs.txg += 1;
    this.instances.delete(from);
    state.name = to;
    this.instances.set(to, state);
  }

  async deleteInstance(name: string): Promise<void> {
    const state = mustInstance(this.instances, name);
    if (state.status !== 'STOPPED') this.setStatus(state, 'STOPPED');
    this.instances.delete(name);
    const dataset = this.datasetOf(name);
    if (!this.zfs.datasets.has(dataset)) return;
    const tree = this.zfs.subtree(dataset);
    if (this.zfs.hasClonedSnapshot(tree)) {
      // Incus cannot destroy a volume whose snapshots have clones: it parks it under deleted/.
      this.zfs.move(dataset, this.zfs.parkedName(name));
      return;
    }
    for (const ds of tree) this.zfs.forget(ds);
    // Incus removes a parked volume under deleted/ once no clone depends on its snapshots any more.
    for (const parked of this.zfs.collectable())
      for (const ds of this.zfs.subtree(parked)) this.zfs.forget(ds);
  }

  onInstanceChange(listener: InstanceChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- datasets / snapshots

  async listDatasets(): Promise<DatasetRecord[]> {
    // Snapshots grouped once: with 1,000 datasets × 20 snapshots a per-dataset scan made every
    // pool.snapshot.create (which lists the datasets) take seconds, where ZFS answers at once.
    const groups = this.zfs.snapshotsByDataset();
    return this.zfs.sortedDatasets().map((d) => this.datasetRecord(d, groups.get(d.name) ?? []));
  }

  async createDataset(name: string): Promise<DatasetRecord> {
    return this.datasetRecord(this.zfs.createDataset(name));
  }

  async listSnapshots(onlyDataset?: (dataset: string) => boolean): Promise<SnapshotRecord[]> {
    // One pass over the sorted list (neighbours of the same dataset are adjacent) and one clone index: a server
    // with 20,000 snapshots answers a query in milliseconds, as ZFS does, not in seconds.
    const all = this.zfs.sortedSnapshots();
    const sorted = onlyDataset ? all.filter((s) => onlyDataset(s.dataset)) : all;
    const clones = this.zfs.clonesByOrigin();
    return sorted.map((snap, i) => {
      const prev = sorted[i - 1]?.dataset === snap.dataset ? sorted[i - 1] : undefined;
      const next = sorted[i + 1]?.dataset === snap.dataset ? sorted[i + 1] : undefined;
      const used = uniqueBytes(
        snap,
        prev?.files,
        next ? next.files : this.zfs.datasets.get(snap.dataset)?.files,
      );
      return this.zfs.snapshotRecord(
        snap,
        used,
        snap.baseBytes + filesBytes(snap.files),
        clones.get(snapshotId(snap)) ?? [],
      );
    });
  }

  async createSnapshot(dataset: string, name: string, hint?: { creation?: Date }): Promise<SnapshotRecord> {
    const { ds } = this.zfs.checkNewSnapshot(dataset, name);
    const snap = this.zfs.addSnapshot(dataset, name, hint?.creation, {
      baseBytes: ds.baseBytes,
      files: cloneFiles(ds.files),
    });
    return this.snapshotRecord(snap);
  }

  async destroySnapshot(id: string): Promise<void> {
    this.zfs.checkDestroySnapshot(id);
    this.zfs.snapshots.delete(id);
    this.zfs.txg += 1;
  }

  async renameSnapshot(id: string, newName: string): Promise<void> {
    const { snap } = this.zfs.checkRenameSnapshot(id, newName);
    this.zfs.renameSnapshot(snap, newName);
    this.zfs.txg += 1;
  }

  async rollbackSnapshot(id: string): Promise<void> {
    const { snap, ds } = this.zfs.checkRollback(id);
    ds.files = cloneFiles(snap.files);
    ds.baseBytes = snap.baseBytes;
    this.zfs.txg += 1;
  }

  async cloneSnapshot(id: string, target: string): Promise<void> {
    const snap = this.zfs.snapshot(id);
    this.zfs.checkCreate(target);
    this.zfs.addDataset(target, id, new Date(), { baseBytes: snap.baseBytes, files: cloneFiles(snap.files) });
    this.zfs.txg += 2;
  }

  async destroyDataset(name: string): Promise<void> {
    this.zfs.dataset(name);
    if (this.isMountedByInstance(name)) throw this.zfs.busy(name);
    this.zfs.checkDestroy(name);
    this.zfs.datasets.delete(name);
    this.zfs.txg += 1;
  }

  async renameDataset(from: string, to: string): Promise<void> {
    this.zfs.checkRename(from, to);
    if (this.zfs.subtree(from).some((ds) => this.isMountedByInstance(ds))) throw this.zfs.busy(from);
    this.zfs.move(from, to);
    this.zfs.txg += 1;
  }

  async promoteDataset(name: string): Promise<void> {
    const { ds, originId } = this.zfs.checkPromote(name);
    const origin = this.zfs.snapshots.get(originId);
    if (!origin) throw new EngineError('EFAULT', `cannot promote '${name}': origin snapshot is missing`);
    const parent = this.zfs.datasets.get(origin.dataset)!;
    const moving = this.zfs.snapshotsOf(origin.dataset).filter((s) => s.createtxg <= origin.createtxg);
    for (const snap of moving) {
      if (this.zfs.snapshots.has(`${name}@${snap.name}`)) {
        throw new EngineError(
          'EEXIST',
          `cannot promote '${name}': snapshot name '${snap.name}' from origin conflicts with '${name}@${snap.name}'`,
        );
      }
    }
    const renames = new Map<string, string>();
    for (const snap of moving) {
      const oldId = snapshotId(snap);
      const newId = `${name}@${snap.name}`;
      this.zfs.snapshots.delete(oldId);
      snap.dataset = name;
      this.zfs.snapshots.set(newId, snap);
      renames.set(oldId, newId);
    }
    const parentOrigin = parent.origin;
    for (const other of this.zfs.datasets.values()) {
      if (other.origin && renames.has(other.origin)) other.origin = renames.get(other.origin)!;
    }
    ds.origin = parentOrigin;
    parent.origin = renames.get(originId) ?? null;
    this.zfs.txg += 1;
  }

  // ---------------------------------------------------------------- files

  async writeFile(dataset: string, path: string, data: Buffer, options: FileWriteOptions): Promise<void> {
    const ds = this.zfs.dataset(dataset);
    const key = writableKey(path);
    for (const existing of ds.files.keys()) {
      if (existing.startsWith(`${key}/`))
        throw new EngineError('EINVAL', `[Errno 21] Is a directory: '${key}'`);
    }
    writeEntry(ds.files, key, data, options);
    this.zfs.txg += 1;
  }

  async readFile(dataset: string, path: string): Promise<Buffer | undefined> {
    const entry = this.zfs.datasets.get(dataset)?.files.get(normalize(path));
    return entry ? Buffer.from(entry.data) : undefined;
  }

  async listDir(dataset: string, path: string): Promise<string[] | undefined> {
    const ds = this.zfs.datasets.get(dataset);
    return ds ? listEntries(ds.files, normalize(path), ds.createdAt) : undefined;
  }

  async statPath(dataset: string, path: string): Promise<FileStat | undefined> {
    const ds = this.zfs.datasets.get(dataset);
    return ds ? statEntry(ds.files, normalize(path), ds.createdAt) : undefined;
  }

  async symlink(dataset: string, path: string, target: string): Promise<void> {
    linkEntry(this.zfs.dataset(dataset).files, writableKey(path), target);
    this.zfs.txg += 1;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- helpers

  private setStatus(state: InstanceState, status: InstanceStatus): void {
    state.status = status;
    for (const listener of this.listeners) listener(state.name, status);
  }

  private instanceOfDataset(name: string): InstanceState | undefined {
    const instance = this.zfs.instanceNameOf(name);
    return instance !== undefined ? this.instances.get(instance) : undefined;
  }

  private isMountedByInstance(name: string): boolean {
    return this.instanceOfDataset(name)?.status === 'RUNNING';
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
    return instanceRecord(state, state.status, this.addresses(state), state.pid);
  }

  /** `snapshots`: the dataset's snapshots, oldest first. */
  private datasetRecord(ds: DatasetState, snapshots = this.zfs.snapshotsOf(ds.name)): DatasetRecord {
    const referenced = ds.baseBytes + filesBytes(ds.files);
    const snapUsed = snapshots.reduce(
      (sum, s, i) => sum + uniqueBytes(s, snapshots[i - 1]?.files, (snapshots[i + 1] ?? ds).files),
      0,
    );
    const children = this.zfs.subtree(ds.name).filter((n) => n !== ds.name);
    const childUsed = children.reduce((sum, n) => {
      const c = this.zfs.datasets.get(n)!;
      return sum + c.baseBytes + filesBytes(c.files);
    }, 0);
    const instance = this.instanceOfDataset(ds.name);
    return this.zfs.datasetRecord(
      ds,
      instance ? instance.status === 'RUNNING' : null,
      // A clone shares its origin's blocks: only what it changed counts as used.
      (ds.origin ? filesBytes(ds.files) : referenced) + snapUsed + childUsed,
      referenced,
    );
  }

  private snapshotUsed(snap: SnapshotState): number {
    const list = this.zfs.snapshotsOf(snap.dataset);
    const index = list.indexOf(snap);
    const prev = index > 0 ? list[index - 1].files : undefined;
    const next = index < list.length - 1 ? list[index + 1].files : this.zfs.datasets.get(snap.dataset)?.files;
    return uniqueBytes(snap, prev, next);
  }

  private snapshotRecord(snap: SnapshotState): SnapshotRecord {
    return this.zfs.snapshotRecord(snap, this.snapshotUsed(snap), snap.baseBytes + filesBytes(snap.files));
  }
}
