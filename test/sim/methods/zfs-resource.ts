// TrueNAS 26's ZFS API (plugins/zfs/snapshot_crud.py, resource_crud.py; api/v26_0_0/zfs_resource_*.py):
// zfs.resource.snapshot.* (object arguments, no jobs, no pool.snapshot.query events) and zfs.resource.query /
// destroy. The B3/RC1 split lives in isProtectedPath: from RC.1 (stable/26 3b654bc0d0) `.truenas_containers` is an
// internal path, so every call that changes something under it fails "'<path>' is a protected path." (EACCES), and
// queries without an explicit path leave the tree out.
import { createHash } from 'node:crypto';
import { checkArgCount, validateModel, type Model } from '../args.js';
import type { Registry, SimContext } from '../context.js';
import { EngineError, type SnapshotRecord } from '../engine.js';
import type { SimObject, SimValue } from '../ejson.js';
import { ERRNO, ValidationErrors, type ValidationItem } from '../errors.js';
import { destroyTree, isRc1 } from './container.js';
import { reapDeferred } from './zfs.js';

/** plugins/zfs/utils.py INTERNAL_PATHS of the build. */
function internalPaths(ctx: SimContext): string[] {
  const paths = ['ix-apps', 'ix-applications', '.system'];
  if (isRc1(ctx)) paths.push('.truenas_containers');
  return paths;
}

/** has_internal_path: the second component of a dataset path (the part before "@") is internal. */
export function isProtectedPath(ctx: SimContext, path: string): boolean {
  const components = path.split('@')[0].split('/');
  return components.length > 1 && internalPaths(ctx).includes(components[1]);
}

export function protectedPathError(schema: string, path: string): ValidationErrors {
  return ValidationErrors.one(schema, `'${path}' is a protected path.`, ERRNO.EACCES);
}

function fail(verb: string, message: string, errno: number = ERRNO.EINVAL): never {
  throw ValidationErrors.one(`zfs.resource.snapshot.${verb}`, message, errno);
}

function parse(verb: string, args: SimValue[], model: Model): SimObject {
  checkArgCount(args, 1);
  const errors: ValidationItem[] = [];
  const data = validateModel(args[0] ?? {}, 'data', model, errors);
  if (errors.length) throw new ValidationErrors(errors);
  void verb;
  return data;
}

const str = (required = true): Model[string] => ({ type: 'str', required, minLength: 1 });
const bool: Model[string] = { type: 'bool', default: false };

function guid(id: string): number {
  return Number(BigInt(`0x${createHash('sha256').update(id).digest('hex').slice(0, 13)}`));
}

/** One property as {raw, source, value}; source only with get_source (unconfirmed: null otherwise). */
function property(raw: string, value: SimValue, source: string | null, withSource: boolean): SimObject {
  return { raw, source: withSource ? { type: source ?? 'NONE', value: null } : null, value };
}

function snapshotProperty(
  ctx: SimContext,
  snap: SnapshotRecord,
  name: string,
  withSource: boolean,
): SimObject | undefined {
  const seconds = Math.floor(snap.creation.getTime() / 1000);
  const num = (n: number) => property(String(n), n, 'NONE', withSource);
  switch (name) {
    case 'type':
      return property('snapshot', 'SNAPSHOT', 'NONE', withSource);
    case 'creation':
      return num(seconds);
    case 'used':
      return num(snap.usedBytes);
    case 'referenced':
      return num(snap.referencedBytes);
    case 'written':
      return num(snap.usedBytes);
    case 'logicalreferenced':
      return num(snap.referencedBytes);
    case 'createtxg':
      return num(snap.createtxg);
    case 'guid':
      return num(guid(snap.id));
    case 'compressratio':
    case 'refcompressratio':
      return property('1.00x', 1, 'NONE', withSource);
    case 'objsetid':
      return num(snap.createtxg % 9973);
    case 'encryption':
      return property('off', 'off', 'DEFAULT', withSource);
    case 'primarycache':
    case 'secondarycache':
      return property('all', 'all', 'DEFAULT', withSource);
    case 'exec':
    case 'setuid':
    case 'devices':
      return property('on', true, 'DEFAULT', withSource);
    case 'acltype':
      return property('posix', 'posix', 'INHERITED', withSource);
    default:
      void ctx;
      return undefined;
  }
}

/** ZFSResourceSnapshotEntry. Snapshots have no default properties: an empty list or null asks for none. */
export function resourceSnapshotEntry(
  ctx: SimContext,
  snap: SnapshotRecord,
  opts: { properties: string[] | null; userProperties: boolean; source: boolean; holds: boolean },
): SimObject {
  let properties: SimObject | null = null;
  if (opts.properties && opts.properties.length) {
    properties = {};
    for (const name of opts.properties) {
      const value = snapshotProperty(ctx, snap, name, opts.source);
      if (value) properties[name] = value;
    }
  }
  const holds = [...(ctx.holds.get(snap.id) ?? [])];
  return {
    createtxg: snap.createtxg,
    guid: guid(snap.id),
    name: snap.id,
    pool: snap.dataset.split('/')[0],
    dataset: snap.dataset,
    snapshot_name: snap.name,
    type: 'SNAPSHOT',
    holds: opts.holds && holds.length ? holds : null,
    properties,
    user_properties: opts.userProperties ? {} : null,
  };
}

async function datasetNames(ctx: SimContext): Promise<string[]> {
  return (await ctx.engine.listDatasets()).map((d) => d.name);
}

function under(dataset: string, name: string): boolean {
  return name === dataset || name.startsWith(`${dataset}/`);
}

export function registerZfsResource(registry: Registry): void {
  registry.add({
    name: 'zfs.resource.snapshot.query',
    handler: async (env, args) => {
      const data = parse('query', args, {
        paths: { type: 'list', default: [] },
        recursive: bool,
        properties: { type: 'list', nullable: true, default: [] },
        get_user_properties: bool,
        get_source: bool,
        get_holds: bool,
        min_txg: { type: 'int', default: 0 },
        max_txg: { type: 'int', default: 0 },
      });
      const ctx = env.ctx;
      const paths = (data.paths as SimValue[]).map(String);
      if (new Set(paths).size !== paths.length)
        throw ValidationErrors.one('data.paths', 'List must be unique', ERRNO.EINVAL);
      const datasets = await datasetNames(ctx);
      const all = await ctx.engine.listSnapshots();
      const explicitInternal = paths.some((p) => isProtectedPath(ctx, p));
      let picked: SnapshotRecord[] = [];
      if (!paths.length) picked = all;
      for (const path of paths) {
        if (path.includes('@')) {
          const snap = all.find((s) => s.id === path);
          if (!snap) fail('query', `'${path}' not found`, ERRNO.ENOENT);
          picked.push(snap);
        } else {
          if (!datasets.includes(path)) fail('query', `'${path}' not found`, ERRNO.ENOENT);
          picked.push(
            ...all.filter((s) => (data.recursive === true ? under(path, s.dataset) : s.dataset === path)),
          );
        }
      }
      // Unless a query names an internal path, internal paths are left out (snapshot_query_impl.py eip).
      if (!explicitInternal) picked = picked.filter((s) => !isProtectedPath(ctx, s.dataset));
      const min = data.min_txg as number;
      const max = data.max_txg as number;
      picked = picked.filter((s) => (!min || s.createtxg >= min) && (!max || s.createtxg <= max));
      const properties = data.properties === null ? null : (data.properties as SimValue[]).map(String);
      return picked.map((s) =>
        resourceSnapshotEntry(ctx, s, {
          properties,
          userProperties: data.get_user_properties === true,
          source: data.get_source === true,
          holds: data.get_holds === true,
        }),
      );
    },
  });

  registry.add({
    name: 'zfs.resource.snapshot.count',
    handler: async (env, args) => {
      const data = parse('count', args, { paths: { type: 'list', default: [] }, recursive: bool });
      const ctx = env.ctx;
      const datasets = await datasetNames(ctx);
      const all = await ctx.engine.listSnapshots();
      const paths = (data.paths as SimValue[]).map(String);
      const out: SimObject = {};
      const targets = paths.length ? paths : datasets.filter((d) => !isProtectedPath(ctx, d));
      for (const path of targets) {
        if (!datasets.includes(path)) fail('count', `'${path}' not found`, ERRNO.ENOENT);
        for (const s of all) {
          if (data.recursive === true ? under(path, s.dataset) : s.dataset === path)
            out[s.dataset] = ((out[s.dataset] as number | undefined) ?? 0) + 1;
        }
      }
      return out;
    },
  });

  registry.add({
    name: 'zfs.resource.snapshot.create',
    handler: async (env, args) => {
      const data = parse('create', args, {
        dataset: str(),
        name: str(),
        recursive: bool,
        exclude: { type: 'list', default: [] },
        user_properties: { type: 'dict', default: {} },
      });
      const ctx = env.ctx;
      const dataset = data.dataset as string;
      const name = data.name as string;
      if (dataset.includes('@')) fail('create', "dataset must be a dataset path (not containing '@').");
      if (name.includes('@')) fail('create', "name must be a snapshot name (not containing '@').");
      // Only the top dataset is checked (the recursive loophole of RC.1, truenas-26.md §4.2).
      if (isProtectedPath(ctx, dataset)) throw protectedPathError('zfs.resource.snapshot.create', dataset);
      const datasets = await datasetNames(ctx);
      if (!datasets.includes(dataset)) fail('create', `'${dataset}' not found`, ERRNO.ENOENT);
      const exclude = new Set((data.exclude as SimValue[]).map(String));
      const targets = datasets.filter(
        (d) => (data.recursive === true ? under(dataset, d) : d === dataset) && !exclude.has(d),
      );
      if (!targets.length)
        fail('create', `No datasets to snapshot - '${dataset}' and all children are excluded`);
      const existing = new Set((await ctx.engine.listSnapshots()).map((s) => s.id));
      for (const t of targets)
        if (existing.has(`${t}@${name}`)) fail('create', `'${t}@${name}' already exists`, ERRNO.EEXIST);
      let primary: SnapshotRecord | undefined;
      for (const t of targets) {
        try {
          const snap = await ctx.engine.createSnapshot(t, name);
          if (t === dataset) primary = snap;
        } catch (error) {
          if (error instanceof EngineError) fail('create', error.message, ERRNO.EINVAL);
          throw error;
        }
      }
      primary ??= (await ctx.engine.listSnapshots()).find((s) => s.id === `${dataset}@${name}`);
      return resourceSnapshotEntry(ctx, primary!, {
        properties: ['creation', 'createtxg'],
        userProperties: false,
        source: false,
        holds: false,
      });
    },
  });

  registry.add({
    name: 'zfs.resource.snapshot.destroy',
    handler: async (env, args) => {
      const data = parse('destroy', args, { path: str(), recursive: bool, all_snapshots: bool, defer: bool });
      const ctx = env.ctx;
      const path = data.path as string;
      if (data.all_snapshots === true && path.includes('@'))
        fail('destroy', "When all_snapshots is True, path must be a dataset path (no '@').");
      if (data.all_snapshots !== true && !path.includes('@'))
        fail(
          'destroy',
          "Path must be a snapshot path (containing '@'). Use all_snapshots=True to destroy all snapshots for a dataset.",
        );
      if (isProtectedPath(ctx, path)) throw protectedPathError('zfs.resource.snapshot.destroy', path);
      return ctx.exclusive(async () => {
        const all = await ctx.engine.listSnapshots();
        let targets: SnapshotRecord[];
        if (data.all_snapshots === true) {
          if (!(await datasetNames(ctx)).includes(path)) fail('destroy', `'${path}' not found`, ERRNO.ENOENT);
          targets = all.filter((s) =>
            data.recursive === true ? under(path, s.dataset) : s.dataset === path,
          );
        } else {
          const [dataset, name] = path.split('@');
          const snap = all.find((s) => s.id === path);
          if (!snap) fail('destroy', `'${path}' not found`, ERRNO.ENOENT);
          targets =
            data.recursive === true
              ? all.filter((s) => s.name === name && under(dataset, s.dataset))
              : [snap];
        }
        for (const t of targets) {
          if (t.clones.length && data.defer !== true)
            fail('destroy', `'${t.id}' has the following clones: ${t.clones.join(',')}`, ERRNO.EBUSY);
          const holds = [...(ctx.holds.get(t.id) ?? [])];
          if (holds.length && data.defer !== true)
            fail('destroy', `'${t.id}' has the following holds: ${holds.join(',')}`, ERRNO.EBUSY);
        }
        for (const t of [...targets].reverse()) {
          if (t.clones.length || (ctx.holds.get(t.id)?.size ?? 0) > 0) {
            ctx.deferred.add(t.id);
            continue;
          }
          await ctx.engine.destroySnapshot(t.id);
        }
        return null;
      });
    },
  });

  registry.add({
    name: 'zfs.resource.snapshot.rollback',
    handler: async (env, args) => {
      const data = parse('rollback', args, {
        path: str(),
        recursive: bool,
        recursive_clones: bool,
        force: bool,
        recursive_rollback: bool,
      });
      const ctx = env.ctx;
      const path = data.path as string;
      if (isProtectedPath(ctx, path)) throw protectedPathError('zfs.resource.snapshot.rollback', path);
      await rollback(ctx, path, data.recursive === true, data.recursive_clones === true);
      return null;
    },
  });

  registry.add({
    name: 'zfs.resource.snapshot.clone',
    handler: async (env, args) => {
      const data = parse('clone', args, {
        snapshot: str(),
        dataset: str(),
        properties: { type: 'dict', default: {} },
      });
      const ctx = env.ctx;
      const snapshot = data.snapshot as string;
      const dataset = data.dataset as string;
      if (!snapshot.includes('@')) fail('clone', "snapshot must be a snapshot path (containing '@').");
      if (dataset.includes('@')) fail('clone', "dataset must be a dataset path (not containing '@').");
      if (isProtectedPath(ctx, snapshot)) throw protectedPathError('zfs.resource.snapshot.clone', snapshot);
      if (isProtectedPath(ctx, dataset)) throw protectedPathError('zfs.resource.snapshot.clone', dataset);
      await cloneSnapshot(ctx, snapshot, dataset);
      return null;
    },
  });

  registry.add({
    name: 'zfs.resource.snapshot.rename',
    handler: async (env, args) => {
      const data = parse('rename', args, { current_name: str(), new_name: str(), recursive: bool });
      const ctx = env.ctx;
      const current = data.current_name as string;
      const next = data.new_name as string;
      if (!current.includes('@')) fail('rename', "current_name must be a snapshot path (containing '@').");
      if (!next.includes('@')) fail('rename', "new_name must be a snapshot path (containing '@').");
      const currentDs = current.split('@')[0];
      if (next.split('@')[0] !== currentDs)
        fail('rename', `Cannot rename snapshot to a different dataset. Dataset must remain '${currentDs}'.`);
      if (isProtectedPath(ctx, current)) throw protectedPathError('zfs.resource.snapshot.rename', current);
      try {
        await ctx.engine.renameSnapshot(current, next.split('@')[1]);
      } catch (error) {
        if (error instanceof EngineError && error.code === 'EEXIST')
          fail('rename', `'${next}' already exists`, ERRNO.EEXIST);
        if (error instanceof EngineError && error.code === 'ENOENT')
          fail('rename', `'${current}' not found`, ERRNO.ENOENT);
        throw error;
      }
      return null;
    },
  });

  const holdRelease = (verb: 'hold' | 'release') =>
    registry.add({
      name: `zfs.resource.snapshot.${verb}`,
      handler: async (env, args) => {
        const data = parse(verb, args, {
          path: str(),
          tag:
            verb === 'hold'
              ? { type: 'str', default: 'truenas' }
              : { type: 'str', nullable: true, default: null },
          recursive: bool,
        });
        const ctx = env.ctx;
        const path = data.path as string;
        if (isProtectedPath(ctx, path)) throw protectedPathError(`zfs.resource.snapshot.${verb}`, path);
        const all = await ctx.engine.listSnapshots();
        const snap = all.find((s) => s.id === path);
        if (!snap) fail(verb, `'${path}' not found`, ERRNO.ENOENT);
        const targets =
          data.recursive === true
            ? all.filter((s) => s.name === snap.name && under(snap.dataset, s.dataset))
            : [snap];
        for (const t of targets) {
          const tags = ctx.holds.get(t.id) ?? new Set<string>();
          if (verb === 'hold') tags.add(data.tag as string);
          else if (data.tag === null) tags.clear();
          else tags.delete(data.tag as string);
          if (tags.size) ctx.holds.set(t.id, tags);
          else ctx.holds.delete(t.id);
        }
        if (verb === 'release') await reapDeferred(ctx);
        return null;
      },
    });
  holdRelease('hold');
  holdRelease('release');

  registry.add({
    name: 'zfs.resource.snapshot.holds',
    handler: async (env, args) => {
      const data = parse('holds', args, { path: str() });
      const path = data.path as string;
      if (!(await env.ctx.engine.listSnapshots()).some((s) => s.id === path))
        fail('holds', `'${path}' not found`, ERRNO.ENOENT);
      return [...(env.ctx.holds.get(path) ?? [])];
    },
  });

  registry.add({
    name: 'zfs.resource.destroy',
    handler: async (env, args) => {
      const data = parse('destroy', args, { path: str(), recursive: bool });
      await destroyResource(env.ctx, data.path as string, data.recursive === true);
      return null;
    },
  });

  registry.add({
    name: 'zfs.resource.query',
    handler: async (env, args) => {
      const data = parse('query', args, {
        paths: { type: 'list', default: [] },
        properties: { type: 'list', nullable: true, default: [] },
        get_user_properties: bool,
        get_source: bool,
        nest_results: bool,
        get_children: bool,
        max_depth: { type: 'int', default: 0 },
        get_tier: bool,
      });
      const ctx = env.ctx;
      const records = await ctx.engine.listDatasets();
      const paths = (data.paths as SimValue[]).map(String);
      for (const p of paths)
        if (!records.some((d) => d.name === p))
          throw ValidationErrors.one('zfs.resource.query', `'${p}' not found`, ERRNO.ENOENT);
      const explicitInternal = paths.some((p) => isProtectedPath(ctx, p));
      let picked = paths.length
        ? records.filter((d) =>
            paths.some((p) => (data.get_children === true ? under(p, d.name) : d.name === p)),
          )
        : records;
      if (!explicitInternal) picked = picked.filter((d) => !isProtectedPath(ctx, d.name));
      const wanted =
        data.properties === null
          ? null
          : (data.properties as SimValue[]).length
            ? (data.properties as SimValue[]).map(String)
            : ['mountpoint', 'mounted', 'used', 'referenced', 'origin', 'creation'];
      const withSource = data.get_source === true;
      return picked.map((d) => {
        let properties: SimObject | null = null;
        if (wanted) {
          properties = {};
          const all: Record<string, SimObject> = {
            mountpoint: property(d.mountpoint, d.mountpoint, 'DEFAULT', withSource),
            mounted: property(d.mounted ? 'yes' : 'no', d.mounted, 'NONE', withSource),
            used: property(String(d.usedBytes), d.usedBytes, 'NONE', withSource),
            referenced: property(String(d.referencedBytes), d.referencedBytes, 'NONE', withSource),
            origin: property(d.origin ?? '', d.origin, 'NONE', withSource),
            creation: property(
              String(Math.floor(d.createdAt.getTime() / 1000)),
              Math.floor(d.createdAt.getTime() / 1000),
              'NONE',
              withSource,
            ),
          };
          for (const name of wanted) if (all[name]) properties[name] = all[name];
        }
        return {
          createtxg: 0,
          guid: guid(d.name),
          name: d.name,
          pool: d.name.split('/')[0],
          properties,
          type: 'FILESYSTEM',
          user_properties: data.get_user_properties === true ? {} : null,
          children: data.nest_results === true ? [] : null,
          tier: null,
        };
      });
    },
  });
}

/** snapshot_rollback_impl.py: with recursive, newer snapshots go newest first; one with clones is skipped. */
export async function rollback(
  ctx: SimContext,
  path: string,
  recursive: boolean,
  recursiveClones: boolean,
): Promise<void> {
  if (!path.includes('@')) fail('rollback', `'${path}' must be a snapshot path (containing '@')`);
  await ctx.exclusive(async () => {
    const all = await ctx.engine.listSnapshots();
    const target = all.find((s) => s.id === path);
    if (!target) fail('rollback', `'${path}' not found`, ERRNO.ENOENT);
    const newer = () =>
      ctx.engine
        .listSnapshots((d) => d === target.dataset)
        .then((list) =>
          list.filter((s) => s.createtxg > target.createtxg).sort((a, b) => a.createtxg - b.createtxg),
        );
    if (recursive || recursiveClones) {
      for (const snap of [...(await newer())].reverse()) {
        try {
          if (recursiveClones)
            for (const clone of snap.clones) await ctx.engine.destroyDataset(clone).catch(() => undefined);
          if ((ctx.holds.get(snap.id)?.size ?? 0) > 0) continue;
          await ctx.engine.destroySnapshot(snap.id);
          ctx.deferred.delete(snap.id);
        } catch {
          // destroy_snapshots failed (clones): skipped, as the middleware does
        }
      }
    }
    const left = await newer();
    if (left.length)
      fail(
        'rollback',
        'Cannot rollback: more recent snapshots or bookmarks exist. Please pass `recursive: true` to delete the following snapshots and bookmarks recursively:\n' +
          left.map((s) => `  ${s.id}`).join('\n'),
      );
    try {
      await ctx.engine.rollbackSnapshot(path);
    } catch (error) {
      if (error instanceof EngineError) fail('rollback', `Failed to rollback snapshot: ${error.message}`);
      throw error;
    }
    await reapDeferred(ctx);
  });
}

/** clone_impl: the new dataset is not mounted by zfs.resource (pool.snapshot.clone mounts it). */
export async function cloneSnapshot(ctx: SimContext, snapshot: string, dataset: string): Promise<void> {
  if (!(await ctx.engine.listSnapshots()).some((s) => s.id === snapshot))
    fail('clone', `'${snapshot}' not found`, ERRNO.ENOENT);
  try {
    await ctx.engine.cloneSnapshot(snapshot, dataset);
  } catch (error) {
    if (error instanceof EngineError && error.code === 'EEXIST')
      fail('clone', `'${dataset}' already exists`, ERRNO.EEXIST);
    if (error instanceof EngineError && error.code === 'ENOENT')
      fail('clone', `'${dataset.slice(0, dataset.lastIndexOf('/'))}' not found`, ERRNO.ENOENT);
    if (error instanceof EngineError) fail('clone', error.message);
    throw error;
  }
}

/** zfs.resource.destroy (resource_crud.py): its checks, in its order and words. */
export async function destroyResource(ctx: SimContext, path: string, recursive: boolean): Promise<void> {
  const schema = 'zfs.resource.destroy';
  if (path.startsWith('/'))
    throw ValidationErrors.one(schema, 'Absolute path is invalid. Must be in form of <pool>/<resource>.');
  if (path.endsWith('/')) throw ValidationErrors.one(schema, 'Path must not end with a forward-slash.');
  if (isProtectedPath(ctx, path)) throw protectedPathError(schema, path);
  if (path.includes('@'))
    throw ValidationErrors.one(schema, 'Use `zfs.resource.snapshot.destroy` to destroy snapshots.');
  if (!path.includes('/'))
    throw ValidationErrors.one(schema, 'Destroying the root filesystem is not allowed.');
  const datasets = await datasetNames(ctx);
  if (!recursive) {
    const extra = 'Set recursive=True to remove them.';
    if (!datasets.includes(path))
      throw ValidationErrors.one(schema, `'${path}' does not exist.`, ERRNO.ENOENT);
    if (datasets.some((d) => d.startsWith(`${path}/`)))
      throw ValidationErrors.one(schema, `'${path}' has children. ${extra}`, ERRNO.ENOTEMPTY);
    if ((await ctx.engine.listSnapshots((d) => d === path)).length)
      throw ValidationErrors.one(schema, `'${path}' has snapshots. ${extra}`, ERRNO.ENOTEMPTY);
  }
  try {
    if (recursive) await ctx.exclusive(() => destroyTree(ctx, path));
    else await ctx.engine.destroyDataset(path);
  } catch (error) {
    if (error instanceof EngineError) throw ValidationErrors.one(schema, error.message, ERRNO.EBUSY);
    throw error;
  }
}

/** Python's str() of a parsed property value (the old format's `value`). */
function pyStr(value: SimValue): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/**
 * 26's pool.snapshot entry (plugins/pool_/snapshot.py _transform_snapshot_entry): only the requested properties,
 * in the old {value, rawvalue, source, parsed} form; createtxg as a string; holds {} or {"truenas": 1}.
 */
export function poolSnapshotEntry26(
  ctx: SimContext,
  snap: SnapshotRecord,
  requested: string[] | null,
  includeHolds: boolean,
): SimObject {
  const properties: SimObject = {};
  for (const name of requested ?? []) {
    if (name === 'name')
      properties.name = { value: snap.id, rawvalue: snap.id, source: 'NONE', parsed: snap.id };
    else if (name === 'createtxg') {
      const txg = String(snap.createtxg);
      properties.createtxg = { value: txg, rawvalue: txg, source: 'NONE', parsed: snap.createtxg };
    } else {
      const p = snapshotProperty(ctx, snap, name, false);
      if (p) properties[name] = { value: pyStr(p.value), rawvalue: p.raw, source: 'NONE', parsed: p.value };
    }
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
  if (includeHolds) entry.holds = ctx.holds.get(snap.id)?.has('truenas') ? { truenas: 1 } : {};
  return entry;
}
