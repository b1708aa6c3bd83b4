// ZfsBook: the ZFS namespace both engines keep (datasets, snapshot ids, createtxg, clone origins) with the checks
// and the ZFS wording of each primitive. An engine adds what holds a dataset's content (a file map, a real
// container), runs the check first and changes the book only after its own work succeeded, so a refused call
// leaves nothing half-made.
import {
  EngineError,
  instanceDataset,
  instanceMountpoint,
  layoutParents,
  type DatasetLayout,
  type DatasetRecord,
  type SnapshotRecord,
} from '../engine.js';

export interface DatasetBase {
  name: string;
  /** snapshot id this dataset was cloned from, or null */
  origin: string | null;
  createdAt: Date;
}

export interface SnapshotBase {
  dataset: string;
  name: string;
  createtxg: number;
  creation: Date;
}

export function snapshotId(snap: SnapshotBase): string {
  return `${snap.dataset}@${snap.name}`;
}

function notFound(name: string): EngineError {
  return new EngineError('ENOENT', `cannot open '${name}': dataset does not exist`);
}

/** What an engine keeps beyond the book's own fields. */
export type DatasetExtra<D extends DatasetBase> = Omit<D, keyof DatasetBase>;
export type SnapshotExtra<S extends SnapshotBase> = Omit<S, keyof SnapshotBase>;

export class ZfsBook<D extends DatasetBase, S extends SnapshotBase> {
  readonly datasets = new Map<string, D>();
  readonly snapshots = new Map<string, S>();
  /** ZFS transaction group: the engine adds to it with every change on the pool. */
  txg = 2_417_905;
  private deletedCounter = 0;
  layout: DatasetLayout = 'virt';

  /** Seeds the datasets a virt pool has before any instance exists; `plain` gives the engine's fields of an
   *  empty plain dataset (these and createDataset's). */
  constructor(
    readonly pool: string,
    private readonly plain: () => DatasetExtra<D>,
  ) {
    this.seed();
  }

  private seed(): void {
    const created = new Date(Date.now() - 200 * 86_400_000);
    for (const name of [this.pool, ...layoutParents(this.layout, this.pool)])
      this.addDataset(name, null, created, this.plain());
  }

  /** Switches the layout of a pool that holds nothing yet but its seeded parents. */
  setLayout(layout: DatasetLayout): void {
    if (layout === this.layout) return;
    const seeded = new Set([this.pool, ...layoutParents(this.layout, this.pool)]);
    if ([...this.datasets.keys()].some((n) => !seeded.has(n)) || this.snapshots.size)
      throw new Error('the dataset layout can only change before anything is created');
    this.datasets.clear();
    this.layout = layout;
    this.seed();
  }

  // ---------------------------------------------------------------- lookups

  /** The dataset, or ENOENT in zfs' words. */
  dataset(name: string): D {
    const ds = this.datasets.get(name);
    if (!ds) throw notFound(name);
    return ds;
  }

  /** The snapshot, or ENOENT in zfs' words. */
  snapshot(id: string): S {
    const snap = this.snapshots.get(id);
    if (!snap) throw notFound(id);
    return snap;
  }

  sortedDatasets(): D[] {
    return [...this.datasets.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  sortedSnapshots(): S[] {
    return [...this.snapshots.values()].sort(
      (a, b) => a.dataset.localeCompare(b.dataset) || a.createtxg - b.createtxg,
    );
  }

  /** Every dataset's snapshots, oldest first, in one pass (snapshotsOf per dataset is O(all snapshots) each). */
  snapshotsByDataset(): Map<string, S[]> {
    const groups = new Map<string, S[]>();
    for (const s of this.sortedSnapshots()) {
      const list = groups.get(s.dataset);
      if (list) list.push(s);
      else groups.set(s.dataset, [s]);
    }
    return groups;
  }

  /** The dataset and all below it. */
  subtree(name: string): string[] {
    return [...this.datasets.keys()].filter((ds) => ds === name || ds.startsWith(`${name}/`));
  }

  /** A dataset's snapshots, oldest first. */
  snapshotsOf(dataset: string): S[] {
    return [...this.snapshots.values()]
      .filter((s) => s.dataset === dataset)
      .sort((a, b) => a.createtxg - b.createtxg);
  }

  clonesOf(id: string): string[] {
    return [...this.datasets.values()]
      .filter((d) => d.origin === id)
      .map((d) => d.name)
      .sort();
  }

  /** Every snapshot's clones at once (snapshot id -> sorted clone datasets), for listing many snapshots. */
  clonesByOrigin(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const d of this.datasets.values())
      if (d.origin) out.set(d.origin, [...(out.get(d.origin) ?? []), d.name]);
    for (const list of out.values()) list.sort();
    return out;
  }

  /** Whether a snapshot of any of these datasets has a clone. */
  hasClonedSnapshot(datasets: string[]): boolean {
    return datasets.some((ds) => this.snapshotsOf(ds).some((s) => this.clonesOf(snapshotId(s)).length > 0));
  }

  /** The instance whose root dataset this is (`<pool>/.ix-virt/containers/<name>` or 26's), if it is one. */
  instanceNameOf(dataset: string): string | undefined {
    const prefix = `${instanceDataset(this.layout, this.pool, '')}`;
    return dataset.startsWith(prefix) ? dataset.slice(prefix.length) : undefined;
  }

  mountpointOf(name: string): string {
    const instance = this.instanceNameOf(name);
    if (instance !== undefined) return instanceMountpoint(this.layout, this.pool, instance);
    // 26: the parent has mountpoint /.truenas_containers/<pool> under altroot /mnt (pc/dataset.py).
    const parent = `${this.pool}/.truenas_containers`;
    if (this.layout === 'container' && (name === parent || name.startsWith(`${parent}/`)))
      return `/mnt/.truenas_containers/${this.pool}${name.slice(parent.length)}`;
    return `/mnt/${name}`;
  }

  // ---------------------------------------------------------------- checks before a change

  /** A new dataset `name` (createDataset, cloneSnapshot): EEXIST, or ENOENT for a missing parent. */
  checkCreate(name: string): void {
    if (this.datasets.has(name))
      throw new EngineError('EEXIST', `cannot create '${name}': dataset already exists`);
    this.mustParent(name, 'create');
  }

  /** An instance's root dataset must not be there yet (Incus' wording). */
  checkInstanceDataset(dataset: string): void {
    if (this.datasets.has(dataset))
      throw new EngineError('EEXIST', `Failed creating instance record: dataset "${dataset}" already exists`);
  }

  /** A new snapshot `<dataset>@<name>`: returns the dataset and the id. */
  checkNewSnapshot(dataset: string, name: string): { ds: D; id: string } {
    const ds = this.dataset(dataset);
    const id = `${dataset}@${name}`;
    if (this.snapshots.has(id))
      throw new EngineError('EEXIST', `cannot create snapshot '${id}': dataset already exists`);
    return { ds, id };
  }

  checkDestroySnapshot(id: string): S {
    const snap = this.snapshots.get(id);
    if (!snap)
      throw new EngineError('ENOENT', 'could not find any snapshots to destroy; check snapshot names.');
    if (this.clonesOf(id).length)
      throw new EngineError('EBUSY', `cannot destroy '${id}': snapshot has dependent clones`);
    return snap;
  }

  /** Returns the snapshot and its new id. */
  checkRenameSnapshot(id: string, newName: string): { snap: S; newId: string } {
    const snap = this.snapshot(id);
    const newId = `${snap.dataset}@${newName}`;
    if (this.snapshots.has(newId))
      throw new EngineError('EEXIST', `cannot rename to '${newId}': dataset already exists`);
    return { snap, newId };
  }

  /** Only the newest snapshot can be rolled back to (the protocol layer removes newer ones first). */
  checkRollback(id: string): { snap: S; ds: D } {
    const snap = this.snapshot(id);
    if (this.snapshotsOf(snap.dataset).some((s) => s.createtxg > snap.createtxg))
      throw new EngineError('EBUSY', `cannot rollback to '${id}': more recent snapshots or bookmarks exist`);
    return { snap, ds: this.datasets.get(snap.dataset)! };
  }

  /** Runs after the engine's own "mounted by a running instance" check (busy()). */
  checkDestroy(name: string): void {
    if (this.subtree(name).length > 1 || this.snapshotsOf(name).length)
      throw new EngineError('EBUSY', `cannot destroy '${name}': filesystem has children`);
  }

  checkRename(from: string, to: string): void {
    if (!this.datasets.has(from)) throw notFound(from);
    if (this.datasets.has(to))
      throw new EngineError('EEXIST', `cannot rename to '${to}': dataset already exists`);
    if (to.startsWith(`${from}/`))
      throw new EngineError(
        'EINVAL',
        `cannot rename to '${to}': New dataset name cannot be a descendant of current dataset name`,
      );
    this.mustParent(to, 'rename to');
  }

  /** Returns the clone and its origin snapshot id. */
  checkPromote(name: string): { ds: D; originId: string } {
    const ds = this.dataset(name);
    if (!ds.origin) throw new EngineError('EINVAL', `cannot promote '${name}': not a cloned filesystem`);
    return { ds, originId: ds.origin };
  }

  /** The error for a dataset a running instance keeps mounted. */
  busy(name: string): EngineError {
    return new EngineError('EBUSY', `cannot unmount '${this.mountpointOf(name)}': pool or dataset is busy`);
  }

  private mustParent(name: string, verb: string): void {
    const parent = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
    if (!parent || !this.datasets.has(parent))
      throw new EngineError('ENOENT', `cannot ${verb} '${name}': parent does not exist`);
  }

  // ---------------------------------------------------------------- changes

  addDataset(name: string, origin: string | null, createdAt: Date, extra: DatasetExtra<D>): D {
    const ds = { name, origin, createdAt, ...extra } as D;
    this.datasets.set(name, ds);
    return ds;
  }

  /** zfs create of a plain filesystem: EEXIST / ENOENT (parent). */
  createDataset(name: string): D {
    this.checkCreate(name);
    const ds = this.addDataset(name, null, new Date(), this.plain());
    this.txg += 1;
    return ds;
  }

  /** Records a new snapshot (checked with checkNewSnapshot); its transaction takes a few txgs. */
  addSnapshot(dataset: string, name: string, creation: Date | undefined, extra: SnapshotExtra<S>): S {
    this.txg += 7;
    const snap = { dataset, name, createtxg: this.txg, creation: creation ?? new Date(), ...extra } as S;
    this.snapshots.set(snapshotId(snap), snap);
    return snap;
  }

  renameSnapshot(snap: S, newName: string): void {
    const id = snapshotId(snap);
    const newId = `${snap.dataset}@${newName}`;
    this.snapshots.delete(id);
    snap.name = newName;
    this.snapshots.set(newId, snap);
    for (const ds of this.datasets.values()) if (ds.origin === id) ds.origin = newId;
  }

  /** Moves a dataset subtree and its snapshots to a new name, fixing origins that point at moved snapshots. */
  move(from: string, to: string): void {
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
        const newId = snapshotId(snap);
        this.snapshots.set(newId, snap);
        snapshotIds.set(id, newId);
      }
    }
    for (const ds of this.datasets.values()) {
      if (ds.origin && snapshotIds.has(ds.origin)) ds.origin = snapshotIds.get(ds.origin)!;
    }
  }

  /** Removes one dataset with its snapshots. */
  forget(dataset: string): void {
    for (const s of this.snapshotsOf(dataset)) this.snapshots.delete(snapshotId(s));
    this.datasets.delete(dataset);
  }

  /** Where a deleted instance's dataset is parked while clones of its snapshots exist (as Incus does). */
  parkedName(instance: string): string {
    this.deletedCounter += 1;
    return `${this.pool}/.ix-virt/deleted/containers/${instance}-${this.deletedCounter}`;
  }

  /** Parked datasets no clone depends on any more (Incus removes them then); checked as the caller goes. */
  *collectable(): Generator<string> {
    const parked = `${this.pool}/.ix-virt/deleted/containers/`;
    for (const name of [...this.datasets.keys()]) {
      if (!name.startsWith(parked) || name.slice(parked.length).includes('/')) continue;
      if (this.hasClonedSnapshot(this.subtree(name))) continue;
      yield name;
    }
  }

  // ---------------------------------------------------------------- records

  /** `mounted` null: the default rule (datasets outside .ix-virt are always mounted, the rest not). */
  datasetRecord(ds: D, mounted: boolean | null, usedBytes: number, referencedBytes: number): DatasetRecord {
    return {
      name: ds.name,
      origin: ds.origin,
      createdAt: new Date(ds.createdAt),
      // 26 mounts container datasets whether or not the container runs.
      mounted:
        this.layout === 'container' ? true : (mounted ?? !ds.name.startsWith(`${this.pool}/.ix-virt/`)),
      mountpoint: this.mountpointOf(ds.name),
      usedBytes,
      referencedBytes,
    };
  }

  snapshotRecord(
    snap: S,
    usedBytes: number,
    referencedBytes: number,
    clones: string[] = this.clonesOf(snapshotId(snap)),
  ): SnapshotRecord {
    const id = snapshotId(snap);
    return {
      id,
      dataset: snap.dataset,
      name: snap.name,
      createtxg: snap.createtxg,
      creation: new Date(snap.creation),
      usedBytes,
      referencedBytes,
      clones,
    };
  }
}
