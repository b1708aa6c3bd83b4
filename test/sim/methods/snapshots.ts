// Snapshot methods: zfs.snapshot.* (public on 25.04, private on 25.10) and pool.snapshot.* (25.10+).
// Rollback refuses to pass newer snapshots without recursive (-r), and clones of them without
// recursive_clones (-R); delete refuses a snapshot with clones unless defer is set.
import { checkArgCount, idArg, parseModel, type Model } from '../args.js';
import type { CallEnv, Registry, SimContext } from '../context.js';
import { EngineError, type SnapshotRecord } from '../engine.js';
import { isSimObject, type SimObject, type SimValue } from '../ejson.js';
import { CallError, ERRNO, ValidationErrors, instanceNotFound, type ValidationItem } from '../errors.js';
import { snapshotQuery } from '../filters.js';
import {
  destroyDatasetTree,
  reapDeferred,
  snapshotEntry,
  snapshotEvent,
  type SnapshotEntryOptions,
} from './zfs.js';
import { isProtectedPath, poolSnapshotEntry26, protectedPathError } from './zfs-resource.js';

/** What create returns and sends: 26 has the creation/createtxg the impl queried, without holds. */
function createdEntry(ctx: SimContext, snap: SnapshotRecord): SimObject {
  return ctx.version === '26'
    ? poolSnapshotEntry26(ctx, snap, ['creation', 'createtxg'], false)
    : snapshotEntry(ctx, snap, { properties: null, holds: false });
}

const SNAPSHOT_NAME = /^[A-Za-z0-9_.: -]+$/;

function entryOptions(options: SimValue | undefined): SnapshotEntryOptions {
  const extra = isSimObject(options) && isSimObject(options.extra) ? options.extra : {};
  const props = Array.isArray(extra.properties)
    ? extra.properties.filter((p): p is string => typeof p === 'string')
    : null;
  return { properties: props, holds: extra.holds === true };
}

async function findSnapshot(ctx: SimContext, id: string): Promise<SnapshotRecord | undefined> {
  return (await ctx.engine.listSnapshots()).find((s) => s.id === id);
}

/** strftime subset used by naming schemas (%Y %m %d %H %M %S). */
function applySchema(schema: string, date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return schema.replace(/%([YmdHMS%])/g, (_m, c: string) => {
    switch (c) {
      case 'Y':
        return String(date.getUTCFullYear());
      case 'm':
        return pad(date.getUTCMonth() + 1);
      case 'd':
        return pad(date.getUTCDate());
      case 'H':
        return pad(date.getUTCHours());
      case 'M':
        return pad(date.getUTCMinutes());
      case 'S':
        return pad(date.getUTCSeconds());
      default:
        return '%';
    }
  });
}

const CREATE_MODEL: Model = {
  dataset: { type: 'str', required: true, minLength: 1 },
  name: { type: 'str', nullable: true, default: null },
  naming_schema: { type: 'str', nullable: true, default: null },
  recursive: { type: 'bool', default: false },
  exclude: { type: 'list', default: [] },
  suspend_vms: { type: 'bool', default: false },
  vmware_sync: { type: 'bool', default: false },
  properties: { type: 'dict', default: {} },
};

/**
 * Top-level `dataset` filters (`=` or `^`), applied to the records before entries are built: the middleware, too,
 * only walks the datasets a query names. The full filter still runs afterwards, so the answer is the same.
 */
function datasetPrefilter(filters: SimValue): (dataset: string) => boolean {
  const tests: ((dataset: string) => boolean)[] = [];
  for (const f of Array.isArray(filters) ? filters : []) {
    if (!Array.isArray(f) || f.length !== 3 || f[0] !== 'dataset' || typeof f[2] !== 'string') continue;
    const value = f[2];
    if (f[1] === '=') tests.push((d) => d === value);
    if (f[1] === '^') tests.push((d) => d.startsWith(value));
  }
  return (dataset) => tests.every((t) => t(dataset));
}

/** Whether a top-level id/name/dataset/pool filter names an internal path (it becomes a query path then). */
function namesInternalPath(ctx: SimContext, filters: SimValue): boolean {
  return (Array.isArray(filters) ? filters : []).some(
    (f) =>
      Array.isArray(f) &&
      ['id', 'name', 'dataset'].includes(String(f[0])) &&
      typeof f[2] === 'string' &&
      isProtectedPath(ctx, f[2]),
  );
}

export function registerSnapshots(registry: Registry, ctx: SimContext): void {
  const namespaces: { ns: string; entity: string; isPrivate: boolean }[] = [];
  if (ctx.version === '25.04')
    namespaces.push({ ns: 'zfs.snapshot', entity: 'ZFSSnapshot', isPrivate: false });
  if (ctx.version === '25.10')
    namespaces.push({ ns: 'zfs.snapshot', entity: 'ZFSSnapshot', isPrivate: true });
  if (ctx.version !== '25.04')
    namespaces.push({ ns: 'pool.snapshot', entity: 'PoolSnapshot', isPrivate: false });
  for (const { ns, entity, isPrivate } of namespaces) register(registry, ctx, ns, entity, isPrivate);
}

/**
 * 26: pool.snapshot.* are thin wrappers over zfs.resource.snapshot.*_impl (plugins/pool_/snapshot.py), so they
 * carry its protected-path guard and its schema: the path a call would change, and the verb of the impl it calls.
 */
const GUARDED: Record<string, { verb: string; paths: (args: SimValue[]) => unknown[] }> = {
  create: { verb: 'create', paths: (a) => [isSimObject(a[0]) ? a[0].dataset : undefined] },
  delete: { verb: 'destroy', paths: (a) => [a[0]] },
  rollback: { verb: 'rollback', paths: (a) => [a[0]] },
  clone: {
    verb: 'clone',
    paths: (a) => (isSimObject(a[0]) ? [a[0].snapshot, a[0].dataset_dst] : []),
  },
  hold: { verb: 'hold', paths: (a) => [a[0]] },
  release: { verb: 'release', paths: (a) => [a[0]] },
  rename: { verb: 'rename', paths: (a) => [a[0]] },
};

function register(registry: Registry, ctx: SimContext, ns: string, entity: string, isPrivate: boolean): void {
  const add = (name: string, handler: (env: CallEnv, args: SimValue[]) => Promise<SimValue>) => {
    const guard = ctx.version === '26' ? GUARDED[name] : undefined;
    registry.add({
      name: `${ns}.${name}`,
      private: isPrivate,
      handler: guard
        ? async (env, args) => {
            for (const path of guard.paths(args))
              if (typeof path === 'string' && isProtectedPath(env.ctx, path))
                throw protectedPathError(`zfs.resource.snapshot.${guard.verb}`, path);
            return handler(env, args);
          }
        : handler,
    });
  };

  add('query', async (env, args) => {
    checkArgCount(args, 2);
    const opts = entryOptions(args[1]);
    const extra = isSimObject(args[1]) && isSimObject(args[1].extra) ? args[1].extra : {};
    let snaps = await env.ctx.engine.listSnapshots(datasetPrefilter(args[0]));
    // 26: the snapshots of internal paths (RC.1: the container datasets) only when the filters name them.
    if (env.ctx.version === '26' && !namesInternalPath(env.ctx, args[0]))
      snaps = snaps.filter((s) => !isProtectedPath(env.ctx, s.dataset));
    if (typeof extra.min_txg === 'number')
      snaps = snaps.filter((s) => s.createtxg >= (extra.min_txg as number));
    if (typeof extra.max_txg === 'number')
      snaps = snaps.filter((s) => s.createtxg <= (extra.max_txg as number));
    const rows =
      env.ctx.version === '26'
        ? snaps.map((s) => poolSnapshotEntry26(env.ctx, s, opts.properties, true))
        : snaps.map((s) => snapshotEntry(env.ctx, s, opts));
    return snapshotQuery(rows, args[0], args[1]);
  });

  add('get_instance', async (env, args) => {
    checkArgCount(args, 2);
    const id = idArg(args, 0, 'id');
    const snap = await findSnapshot(env.ctx, id);
    if (!snap) throw instanceNotFound(`${entity} ${id} does not exist`);
    return snapshotEntry(env.ctx, snap, entryOptions(args[1]));
  });

  add('create', async (env, args) => {
    checkArgCount(args, 1);
    const data = parseModel(args[0], 'snapshot_create', CREATE_MODEL);
    const dataset = data.dataset as string;
    const hasName = typeof data.name === 'string';
    const hasSchema = typeof data.naming_schema === 'string';
    const errors: ValidationItem[] = [];
    // zfs_/snapshot.py create(): same checks, same order, same words.
    if (hasName && hasSchema) {
      errors.push([
        'snapshot_create.naming_schema',
        "You can't specify name and naming schema at the same time",
        ERRNO.EINVAL,
      ]);
    } else if (!hasName && !hasSchema) {
      errors.push([
        'snapshot_create.naming_schema',
        'You must specify either name or naming schema',
        ERRNO.EINVAL,
      ]);
    }
    const name = hasName
      ? (data.name as string)
      : hasSchema
        ? applySchema(data.naming_schema as string, new Date())
        : '';
    const excludeList = data.exclude as SimValue[];
    if (excludeList.length && !data.recursive) {
      errors.push([
        'snapshot_create.exclude',
        'This option has no sense for non-recursive snapshots',
        ERRNO.EINVAL,
      ]);
    }
    if (name && (!SNAPSHOT_NAME.test(name) || `${dataset}@${name}`.length > 255)) {
      errors.push(['snapshot_create.name', 'Invalid snapshot name', ERRNO.EINVAL]);
    }
    if (errors.length) throw new ValidationErrors(errors);
    const datasets = await env.ctx.engine.listDatasets();
    // 26 (plugins/pool_/snapshot.py over create_impl): a missing dataset escapes as ZFSPathNotFoundException.
    if (env.ctx.version === '26' && !datasets.some((d) => d.name === dataset))
      throw new Error(`'${dataset}' not found`);
    if (!datasets.some((d) => d.name === dataset)) {
      // libzfs get_dataset() -> ZFSException('Dataset <ds> not found') -> CallError (EFAULT)
      throw new CallError(
        `Failed to snapshot ${dataset}@${name}: Dataset ${dataset} not found`,
        ERRNO.EFAULT,
      );
    }
    const exclude = new Set(excludeList.filter((e): e is string => typeof e === 'string'));
    const targets = data.recursive
      ? datasets
          .map((d) => d.name)
          .filter((d) => (d === dataset || d.startsWith(`${dataset}/`)) && !exclude.has(d))
      : [dataset];
    const existing = new Set((await env.ctx.engine.listSnapshots()).map((s) => s.id));
    for (const target of targets) {
      if (existing.has(`${target}@${name}`)) {
        if (env.ctx.version === '26')
          throw ValidationErrors.one('pool.snapshot.create', `${name} already exists.`, ERRNO.EEXIST);
        throw new CallError(`Failed to snapshot ${dataset}@${name}: dataset already exists`, ERRNO.EEXIST);
      }
    }
    let first: SnapshotRecord | undefined;
    for (const target of targets) {
      try {
        const snap = await env.ctx.engine.createSnapshot(target, name);
        first ??= snap;
        env.ctx.events.send(snapshotEvent(env.ctx), 'ADDED', {
          id: snap.id,
          fields: createdEntry(env.ctx, snap),
        });
      } catch (error) {
        if (error instanceof EngineError) {
          throw new CallError(
            `Failed to snapshot ${dataset}@${name}: ${error.message}`,
            error.code === 'EEXIST' ? ERRNO.EEXIST : ERRNO.EFAULT,
          );
        }
        throw error;
      }
    }
    return createdEntry(env.ctx, first!);
  });

  add('delete', async (env, args) => {
    checkArgCount(args, 2);
    const id = idArg(args, 0, 'id');
    const options = parseModel(args[1] ?? {}, 'options', {
      defer: { type: 'bool', default: false },
      recursive: { type: 'bool', default: false },
    });
    return env.ctx.exclusive(async () => {
      const all = await env.ctx.engine.listSnapshots();
      const snap = all.find((s) => s.id === id);
      if (!snap) throw instanceNotFound(`Snapshot ${id} not found`); // py-libzfs get_snapshot()
      const targets = options.recursive
        ? all.filter(
            (s) =>
              s.name === snap.name &&
              (s.dataset === snap.dataset || s.dataset.startsWith(`${snap.dataset}/`)),
          )
        : [snap];
      const cloned = targets.filter((s) => s.clones.length > 0);
      if (cloned.length && !options.defer) {
        throw ValidationErrors.one(
          'options.defer',
          `Please set this attribute as '${id}' snapshot has dependent clones: ${cloned.flatMap((s) => s.clones).join(', ')}`,
        );
      }
      const held = targets.find((s) => (env.ctx.holds.get(s.id)?.size ?? 0) > 0);
      if (held && !options.defer) {
        throw new CallError(
          'dataset is busy', // CallError(str(ZFSException))
          ERRNO.EFAULT,
        );
      }
      for (const target of targets) {
        if (target.clones.length || (env.ctx.holds.get(target.id)?.size ?? 0) > 0) {
          env.ctx.deferred.add(target.id); // zfs destroy -d: gone when the last clone/hold is
          continue;
        }
        await env.ctx.engine.destroySnapshot(target.id);
        env.ctx.events.send(snapshotEvent(env.ctx), 'REMOVED', {
          id: target.id,
          extra: { recursive: options.recursive as boolean },
        });
      }
      return true;
    });
  });

  add('rollback', async (env, args) => {
    checkArgCount(args, 2);
    const id = idArg(args, 0, 'id');
    const options = parseModel(args[1] ?? {}, 'options', {
      recursive: { type: 'bool', default: false },
      recursive_clones: { type: 'bool', default: false },
      force: { type: 'bool', default: false },
      recursive_rollback: { type: 'bool', default: false },
    });
    const fail = (text: string, errno: number = ERRNO.EFAULT): never => {
      throw new CallError(`Failed to rollback snapshot: ${text}`, errno);
    };
    return env.ctx.exclusive(async () => {
      const all = await env.ctx.engine.listSnapshots();
      const snap = all.find((s) => s.id === id);
      if (!snap) fail(`cannot open '${id}': dataset does not exist`);
      const target = snap!;
      const newer = all.filter((s) => s.dataset === target.dataset && s.createtxg > target.createtxg);
      const recursive = options.recursive === true || options.recursive_clones === true;
      if (newer.length && !recursive) {
        fail(
          `cannot rollback to '${id}': more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:\n${newer.map((s) => s.id).join('\n')}`,
        );
      }
      const clones = newer.flatMap((s) => s.clones);
      if (clones.length && !options.recursive_clones) {
        fail(
          `cannot rollback to '${id}': clones of previous snapshots exist\nuse '-R' to force deletion of the following clones and dependents:\n${clones.join('\n')}`,
        );
      }
      const held = newer.find((s) => (env.ctx.holds.get(s.id)?.size ?? 0) > 0);
      if (held) fail(`cannot destroy snapshot ${held.id}: dataset is busy`, ERRNO.EBUSY);
      // No unmount: `zfs rollback` (libzfs zfs_rollback -> lzc_rollback_to) rolls a mounted filesystem back in
      // place (zfs_ioc_rollback suspends and resumes it), so a running instance's dataset is no reason to refuse.
      for (const clone of clones) {
        try {
          await destroyDatasetTree(env.ctx, clone, { recursive: true, recursiveClones: true });
        } catch (error) {
          if (error instanceof CallError) fail(error.errmsg, error.errno);
          throw error;
        }
      }
      for (const s of [...newer].reverse()) {
        await env.ctx.engine.destroySnapshot(s.id);
        env.ctx.deferred.delete(s.id);
        env.ctx.holds.delete(s.id);
      }
      await env.ctx.engine.rollbackSnapshot(id);
      await reapDeferred(env.ctx);
      return null;
    });
  });

  add('clone', async (env, args) => {
    checkArgCount(args, 1);
    const data = parseModel(args[0], 'snapshot_clone', {
      snapshot: { type: 'str', required: true, minLength: 1 },
      dataset_dst: { type: 'str', required: true, minLength: 1 },
      dataset_properties: { type: 'dict', default: {} },
    });
    const id = data.snapshot as string;
    const target = data.dataset_dst as string;
    if (!(await findSnapshot(env.ctx, id))) {
      throw new CallError(`Failed to clone snapshot: Snapshot ${id} not found`, ERRNO.EFAULT); // py-libzfs get_snapshot()
    }
    try {
      await env.ctx.engine.cloneSnapshot(id, target);
    } catch (error) {
      // libzfs clone, then mount_recursive(); any failure is CallError("Failed to clone snapshot: ...") (EFAULT).
      if (error instanceof EngineError) {
        const text =
          error.code === 'EEXIST'
            ? 'dataset already exists'
            : error.code === 'ENOENT'
              ? 'parent does not exist'
              : error.message;
        throw new CallError(`Failed to clone snapshot: ${text}`, ERRNO.EFAULT);
      }
      throw error;
    }
    return true;
  });

  const holdOrRelease = (hold: boolean) => async (env: CallEnv, args: SimValue[]) => {
    checkArgCount(args, 2);
    const id = idArg(args, 0, 'id');
    const options = parseModel(args[1] ?? {}, 'options', { recursive: { type: 'bool', default: false } });
    const all = await env.ctx.engine.listSnapshots();
    const snap = all.find((s) => s.id === id);
    if (!snap) throw instanceNotFound(`${entity} ${id} does not exist`);
    const targets = options.recursive
      ? all.filter(
          (s) =>
            s.name === snap.name && (s.dataset === snap.dataset || s.dataset.startsWith(`${snap.dataset}/`)),
        )
      : [snap];
    for (const t of targets) {
      const tags = env.ctx.holds.get(t.id) ?? new Set<string>();
      if (hold) tags.add('truenas');
      else tags.delete('truenas');
      if (tags.size) env.ctx.holds.set(t.id, tags);
      else env.ctx.holds.delete(t.id);
    }
    if (!hold) await reapDeferred(env.ctx);
    return null;
  };
  add('hold', holdOrRelease(true));
  add('release', holdOrRelease(false));

  if (ns === 'pool.snapshot') {
    add('rename', async (env, args) => {
      checkArgCount(args, 2);
      const id = idArg(args, 0, 'id');
      const options = parseModel(args[1], 'options', {
        new_name: { type: 'str', required: true, minLength: 1 },
        force: { type: 'bool', default: false },
      });
      const snap = await findSnapshot(env.ctx, id);
      if (!snap) throw instanceNotFound(`${entity} ${id} does not exist`);
      if (!options.force) {
        throw ValidationErrors.one(
          'pool.snapshot.rename.force',
          'This snapshot may be used by replication or periodic snapshot tasks; set force to rename it anyway',
        );
      }
      const newName = options.new_name as string;
      const [ds, snapName = ''] = newName.split('@');
      if (ds !== snap.dataset || !SNAPSHOT_NAME.test(snapName)) {
        throw ValidationErrors.one(
          'options.new_name',
          'New snapshot name must be <same dataset>@<valid snapshot name>',
        );
      }
      try {
        await env.ctx.engine.renameSnapshot(id, snapName);
      } catch (error) {
        if (error instanceof EngineError)
          throw new CallError(
            `Failed to rename snapshot: ${error.message}`,
            error.code === 'EEXIST' ? ERRNO.EEXIST : ERRNO.EFAULT,
          );
        throw error;
      }
      env.ctx.events.send(snapshotEvent(env.ctx), 'REMOVED', { id, extra: { recursive: false } });
      const renamed = await findSnapshot(env.ctx, newName);
      if (renamed) {
        env.ctx.events.send(snapshotEvent(env.ctx), 'ADDED', {
          id: newName,
          fields: snapshotEntry(env.ctx, renamed, { properties: null, holds: false }),
        });
      }
      return null;
    });
  }
}
