// ZFS rules shared by the snapshot and dataset methods: entry shapes, recursive destroy with zfs' checks and
// wording, and deferred destroys (snapshots marked defer_destroy vanish once their last clone is gone).
import { createHash } from 'node:crypto';
import type { SimContext } from '../context.js';
import type { DatasetRecord, SnapshotRecord } from '../engine.js';
import type { SimObject, SimValue } from '../ejson.js';
import { CallError, ERRNO } from '../errors.js';
import { dateProp, prop, sizeProp, stringProp } from './zfsformat.js';

export function snapshotEvent(ctx: SimContext): string {
  return ctx.version === '25.04' ? 'zfs.snapshot.query' : 'pool.snapshot.query';
}

export function isInternal(name: string): boolean {
  return name.includes('/.ix-virt');
}

function guid(id: string): string {
  return BigInt(`0x${createHash('sha256').update(id).digest('hex').slice(0, 15)}`).toString();
}

/** The properties `zfs get all` shows for a snapshot, in its order. */
const SNAPSHOT_PROPERTY_NAMES = [
  'type',
  'creation',
  'used',
  'referenced',
  'compressratio',
  'devices',
  'exec',
  'setuid',
  'xattr',
  'version',
  'utf8only',
  'normalization',
  'casesensitivity',
  'nbmand',
  'guid',
  'primarycache',
  'secondarycache',
  'defer_destroy',
  'userrefs',
  'objsetid',
  'mlslabel',
  'refcompressratio',
  'written',
  'clones',
  'logicalreferenced',
  'acltype',
  'context',
  'encryption',
  'createtxg',
];

/** One property, computed on demand: like libzfs, a query that names its properties only pays for those. */
function snapshotProperty(ctx: SimContext, snap: SnapshotRecord, name: string): SimValue | undefined {
  switch (name) {
    case 'type':
      return stringProp('snapshot');
    case 'creation':
      return dateProp(snap.creation);
    case 'used':
      return sizeProp(snap.usedBytes);
    case 'referenced':
      return sizeProp(snap.referencedBytes);
    case 'compressratio':
      return prop('1.00x', '1.00', '1.00');
    case 'devices':
      return stringProp('on', 'DEFAULT');
    case 'exec':
      return stringProp('on', 'DEFAULT');
    case 'setuid':
      return stringProp('on', 'DEFAULT');
    case 'xattr':
      return stringProp('sa', 'INHERITED');
    case 'version':
      return stringProp('5');
    case 'utf8only':
      return stringProp('off');
    case 'normalization':
      return stringProp('none');
    case 'casesensitivity':
      return stringProp('sensitive');
    case 'nbmand':
      return stringProp('off', 'DEFAULT');
    case 'guid':
      return stringProp(guid(snap.id));
    case 'primarycache':
      return stringProp('all', 'DEFAULT');
    case 'secondarycache':
      return stringProp('all', 'DEFAULT');
    case 'defer_destroy':
      return stringProp(ctx.deferred.has(snap.id) ? 'on' : 'off');
    case 'userrefs':
      return prop(held(ctx, snap), held(ctx, snap), held(ctx, snap));
    case 'objsetid':
      return stringProp(String(snap.createtxg % 9973));
    case 'mlslabel':
      return stringProp('none', 'DEFAULT');
    case 'refcompressratio':
      return prop('1.00x', '1.00', '1.00');
    case 'written':
      return sizeProp(snap.usedBytes);
    case 'clones':
      return prop(snap.clones.join(','), snap.clones.join(','), snap.clones.join(','));
    case 'logicalreferenced':
      return sizeProp(snap.referencedBytes);
    case 'acltype':
      return stringProp('posix', 'INHERITED');
    case 'context':
      return stringProp('none', 'DEFAULT');
    case 'encryption':
      return stringProp('off', 'DEFAULT');
    case 'createtxg':
      return prop(String(snap.createtxg), String(snap.createtxg), String(snap.createtxg));
  }
  return undefined;
}

function held(ctx: SimContext, snap: SnapshotRecord): string {
  return String(ctx.holds.get(snap.id)?.size ?? 0);
}

export function snapshotProperties(ctx: SimContext, snap: SnapshotRecord, only?: string[]): SimObject {
  const out: SimObject = {};
  for (const name of only ?? SNAPSHOT_PROPERTY_NAMES) {
    const value = snapshotProperty(ctx, snap, name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export interface SnapshotEntryOptions {
  properties: string[] | null;
  holds: boolean;
}

export function snapshotEntry(
  ctx: SimContext,
  snap: SnapshotRecord,
  options: SnapshotEntryOptions,
): SimObject {
  const named = options.properties && options.properties.length ? options.properties : undefined;
  const properties = snapshotProperties(ctx, snap, named);
  const entry: SimObject = {
    id: snap.id,
    name: snap.id,
    pool: snap.dataset.split('/')[0],
    type: 'SNAPSHOT',
    snapshot_name: snap.name,
    dataset: snap.dataset,
    createtxg: String(snap.createtxg),
    properties,
  };
  if (options.holds) {
    const holds: SimObject = {};
    for (const tag of ctx.holds.get(snap.id) ?? []) holds[tag] = 1;
    entry.holds = holds;
  }
  return entry;
}

export function datasetEntry(
  ds: DatasetRecord,
  snapshots: SnapshotRecord[],
  all: DatasetRecord[],
): SimObject {
  const pool = ds.name.split('/')[0];
  const origin = ds.origin ?? '';
  const children = all.filter(
    (d) => d.name.startsWith(`${ds.name}/`) && !d.name.slice(ds.name.length + 1).includes('/'),
  );
  return {
    id: ds.name,
    type: 'FILESYSTEM',
    name: ds.name,
    pool,
    encrypted: false,
    encryption_root: null,
    key_loaded: false,
    children: children.map((c) => ({ id: c.name, name: c.name, type: 'FILESYSTEM', pool, children: [] })),
    mountpoint: ds.mounted ? ds.mountpoint : null,
    origin: prop(origin, origin, origin),
    used: sizeProp(ds.usedBytes),
    referenced: sizeProp(ds.referencedBytes),
    available: sizeProp(3_298_534_883_328 - ds.usedBytes),
    usedbysnapshots: sizeProp(
      snapshots.filter((s) => s.dataset === ds.name).reduce((n, s) => n + s.usedBytes, 0),
    ),
    creation: dateProp(ds.createdAt),
    snapshot_count: snapshots.filter((s) => s.dataset === ds.name).length,
    locked: false,
    readonly: stringProp('off', 'DEFAULT'),
    compression: stringProp('LZ4', 'INHERITED'),
    quota: prop('0', '0', null, 'DEFAULT'),
    user_properties: {},
  };
}

/** zfs destroy [-r] [-R] <name>: checks first (so nothing is half-destroyed), then removes bottom-up. */
export async function destroyDatasetTree(
  ctx: SimContext,
  name: string,
  options: { recursive: boolean; recursiveClones?: boolean },
): Promise<void> {
  const engine = ctx.engine;
  const datasets = await engine.listDatasets();
  const snapshots = await engine.listSnapshots();
  const inTree = (ds: string) => ds === name || ds.startsWith(`${name}/`);
  if (!datasets.some((d) => d.name === name)) {
    throw new CallError(`cannot open '${name}': dataset does not exist`, ERRNO.ENOENT);
  }
  let treeDatasets = datasets.filter((d) => inTree(d.name)).map((d) => d.name);
  let treeSnapshots = snapshots.filter((s) => inTree(s.dataset));
  if (!options.recursive && (treeDatasets.length > 1 || treeSnapshots.length > 0)) {
    const kids = [...treeDatasets.filter((d) => d !== name), ...treeSnapshots.map((s) => s.id)];
    throw new CallError(
      `cannot destroy '${name}': filesystem has children\nuse '-r' to destroy the following datasets:\n${kids.join('\n')}`,
    );
  }
  // Clones outside the tree that depend on snapshots inside it.
  let outside = treeSnapshots.flatMap((s) => s.clones).filter((c) => !inTree(c));
  if (outside.length && options.recursiveClones) {
    const extra = new Set<string>();
    const addTree = (ds: string) => {
      for (const d of datasets) if (d.name === ds || d.name.startsWith(`${ds}/`)) extra.add(d.name);
    };
    const queue = [...outside];
    while (queue.length) {
      const next = queue.shift()!;
      if (extra.has(next)) continue;
      addTree(next);
      for (const s of snapshots) if (extra.has(s.dataset)) queue.push(...s.clones);
    }
    treeDatasets = [...new Set([...treeDatasets, ...extra])];
    treeSnapshots = snapshots.filter((s) => treeDatasets.includes(s.dataset));
    outside = [];
  }
  if (outside.length) {
    throw new CallError(
      `cannot destroy '${name}': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\n${outside.join('\n')}`,
    );
  }
  const busy = datasets.find((d) => treeDatasets.includes(d.name) && d.mounted && isInternal(d.name));
  if (busy) throw new CallError(`cannot unmount '${busy.mountpoint}': pool or dataset is busy`, ERRNO.EBUSY);
  const held = treeSnapshots.find((s) => (ctx.holds.get(s.id)?.size ?? 0) > 0);
  if (held) throw new CallError(`cannot destroy snapshot ${held.id}: dataset is busy`, ERRNO.EBUSY);

  // Remove in dependency order: a snapshot once its clones are gone, a dataset once its snapshots/children are.
  const pendingSnaps = new Map(treeSnapshots.map((s) => [s.id, s]));
  const pendingSets = new Set(treeDatasets);
  for (let guard = 0; (pendingSnaps.size || pendingSets.size) && guard < 10_000; guard += 1) {
    let progressed = false;
    for (const [id, snap] of pendingSnaps) {
      if (snap.clones.some((c) => pendingSets.has(c))) continue;
      await engine.destroySnapshot(id);
      pendingSnaps.delete(id);
      ctx.deferred.delete(id);
      ctx.holds.delete(id);
      progressed = true;
    }
    for (const ds of [...pendingSets].sort((a, b) => b.length - a.length)) {
      const hasKids = [...pendingSets].some((d) => d.startsWith(`${ds}/`));
      const hasSnaps = [...pendingSnaps.values()].some((s) => s.dataset === ds);
      if (hasKids || hasSnaps) continue;
      await engine.destroyDataset(ds);
      pendingSets.delete(ds);
      progressed = true;
    }
    if (!progressed) throw new CallError(`cannot destroy '${name}': dataset is busy`, ERRNO.EBUSY);
  }
  await reapDeferred(ctx);
}

/** Destroys deferred snapshots that have lost their last clone (zfs destroy -d semantics). */
export async function reapDeferred(ctx: SimContext): Promise<void> {
  if (!ctx.deferred.size) return;
  const snapshots = new Map((await ctx.engine.listSnapshots()).map((s) => [s.id, s]));
  for (const id of [...ctx.deferred]) {
    const snap = snapshots.get(id);
    if (!snap) {
      ctx.deferred.delete(id);
      continue;
    }
    if (snap.clones.length === 0 && (ctx.holds.get(id)?.size ?? 0) === 0) {
      await ctx.engine.destroySnapshot(id);
      ctx.deferred.delete(id);
      ctx.events.send(snapshotEvent(ctx), 'REMOVED', { id, extra: { recursive: false } });
    }
  }
}
