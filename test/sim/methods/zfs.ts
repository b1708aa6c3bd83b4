// ZFS rules shared by the snapshot and dataset methods: entry shapes, recursive destroy with zfs' checks and
// wording, and deferred destroys (snapshots marked defer_destroy vanish once their last clone is gone).
import { createHash } from 'node:crypto';
import type { SimContext } from '../context.js';
import type { DatasetRecord, SnapshotRecord } from '../engine.js';
import type { SimObject } from '../ejson.js';
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

export function snapshotProperties(ctx: SimContext, snap: SnapshotRecord): SimObject {
  const held = ctx.holds.get(snap.id)?.size ?? 0;
  const clones = snap.clones.join(',');
  return {
    type: stringProp('snapshot'),
    creation: dateProp(snap.creation),
    used: sizeProp(snap.usedBytes),
    referenced: sizeProp(snap.referencedBytes),
    compressratio: prop('1.00x', '1.00', '1.00'),
    devices: stringProp('on', 'DEFAULT'),
    exec: stringProp('on', 'DEFAULT'),
    setuid: stringProp('on', 'DEFAULT'),
    xattr: stringProp('sa', 'INHERITED'),
    version: stringProp('5'),
    utf8only: stringProp('off'),
    normalization: stringProp('none'),
    casesensitivity: stringProp('sensitive'),
    nbmand: stringProp('off', 'DEFAULT'),
    guid: stringProp(guid(snap.id)),
    primarycache: stringProp('all', 'DEFAULT'),
    secondarycache: stringProp('all', 'DEFAULT'),
    defer_destroy: stringProp(ctx.deferred.has(snap.id) ? 'on' : 'off'),
    userrefs: prop(String(held), String(held), String(held)),
    objsetid: stringProp(String(snap.createtxg % 9973)),
    mlslabel: stringProp('none', 'DEFAULT'),
    refcompressratio: prop('1.00x', '1.00', '1.00'),
    written: sizeProp(snap.usedBytes),
    clones: prop(clones, clones, clones),
    logicalreferenced: sizeProp(snap.referencedBytes),
    acltype: stringProp('posix', 'INHERITED'),
    context: stringProp('none', 'DEFAULT'),
    encryption: stringProp('off', 'DEFAULT'),
    createtxg: prop(String(snap.createtxg), String(snap.createtxg), String(snap.createtxg)),
  };
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
  const all = snapshotProperties(ctx, snap);
  let properties: SimObject = all;
  if (options.properties && options.properties.length) {
    properties = {};
    for (const name of options.properties) if (name in all) properties[name] = all[name];
  }
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
