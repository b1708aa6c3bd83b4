// Dataset methods needed by clone routes (see docs/truenas-clone-route.md when present):
// - pool.dataset.query/get_instance/delete/create hide `.ix-virt` datasets (internal) -> "does not exist";
// - pool.dataset.promote sees them; pool.dataset.rename (25.10+) needs force:true;
// - zfs.dataset.query/delete are private and see everything.
import { checkArgCount, idArg, parseModel } from '../args.js';
import type { CallEnv, Registry, SimContext } from '../context.js';
import { EngineError } from '../engine.js';
import type { SimValue } from '../ejson.js';
import { CallError, ERRNO, ValidationErrors, instanceNotFound } from '../errors.js';
import { query } from '../filters.js';
import { datasetEntry, destroyDatasetTree, isInternal } from './zfs.js';

async function entries(ctx: SimContext, includeInternal: boolean) {
  const datasets = await ctx.engine.listDatasets();
  const snapshots = await ctx.engine.listSnapshots();
  return datasets
    .filter((d) => includeInternal || !isInternal(d.name))
    .map((d) => datasetEntry(d, snapshots, datasets));
}

function engineFailure(prefix: string, error: unknown): never {
  if (error instanceof EngineError) {
    const errno =
      error.code === 'ENOENT'
        ? ERRNO.ENOENT
        : error.code === 'EEXIST'
          ? ERRNO.EEXIST
          : error.code === 'EBUSY'
            ? ERRNO.EBUSY
            : ERRNO.EFAULT;
    throw new CallError(`${prefix}${error.message}`, errno);
  }
  throw error;
}

export function registerDatasets(registry: Registry, ctx: SimContext): void {
  const visible = async (env: CallEnv, id: string) => {
    const found = (await entries(env.ctx, false)).find((e) => e.id === id);
    if (!found) throw instanceNotFound(`PoolDataset ${id} does not exist`);
    return found;
  };

  registry.add({
    name: 'pool.dataset.query',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      return query(await entries(env.ctx, false), args[0], args[1]);
    },
  });
  registry.add({
    name: 'pool.dataset.get_instance',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      return visible(env, idArg(args, 0, 'id'));
    },
  });
  registry.add({
    name: 'pool.dataset.create',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const data = parseModel(args[0], 'pool_dataset_create', {
        name: { type: 'str', required: true, minLength: 1 },
        type: { type: 'str', literals: ['FILESYSTEM'], default: 'FILESYSTEM' },
        comments: { type: 'str' },
        create_ancestors: { type: 'bool', default: false },
      });
      const name = data.name as string;
      if (isInternal(name))
        throw ValidationErrors.one(
          'pool_dataset_create.name',
          'Creating datasets inside internal locations is not allowed',
        );
      const parent = name.slice(0, name.lastIndexOf('/'));
      if (!name.includes('/') || !(await env.ctx.engine.listDatasets()).some((d) => d.name === parent)) {
        throw ValidationErrors.one(
          'pool_dataset_create.name',
          'Parent dataset does not exist for specified name',
          ERRNO.ENOENT,
        );
      }
      if ((await env.ctx.engine.listDatasets()).some((d) => d.name === name)) {
        throw ValidationErrors.one('pool_dataset_create.name', 'Path already exists', ERRNO.EEXIST);
      }
      await env.ctx.engine.createDataset(name);
      env.ctx.events.send('pool.dataset.query', 'ADDED', { id: name });
      return visible(env, name);
    },
  });
  registry.add({
    name: 'pool.dataset.delete',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = idArg(args, 0, 'id');
      const options = parseModel(args[1] ?? {}, 'options', {
        recursive: { type: 'bool', default: false },
        force: { type: 'bool', default: false },
      });
      await visible(env, id);
      if (!id.includes('/')) throw new CallError('Root dataset of a pool cannot be deleted', ERRNO.EINVAL);
      await env.ctx.exclusive(async () => {
        try {
          await destroyDatasetTree(env.ctx, id, { recursive: options.recursive as boolean });
        } catch (error) {
          if (error instanceof CallError)
            throw new CallError(`Failed to delete dataset: ${error.errmsg}`, error.errno);
          engineFailure('Failed to delete dataset: ', error);
        }
      });
      env.ctx.events.send('pool.dataset.query', 'REMOVED', { id });
      return true;
    },
  });
  registry.add({
    name: 'pool.dataset.promote',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const id = idArg(args, 0, 'id');
      // Looked up with zfs.dataset.query: no internal filter, so .ix-virt datasets work.
      const ds = (await env.ctx.engine.listDatasets()).find((d) => d.name === id);
      if (!ds) throw new CallError(`Dataset "${id}" does not exist.`, ERRNO.ENOENT);
      if (!ds.origin) throw new CallError('Only cloned datasets can be promoted.', ERRNO.EBADMSG);
      try {
        await env.ctx.engine.promoteDataset(id);
      } catch (error) {
        engineFailure('Failed to promote dataset: ', error);
      }
      return null;
    },
  });
  if (ctx.version !== '25.04') {
    registry.add({
      name: 'pool.dataset.rename',
      handler: async (env, args) => {
        checkArgCount(args, 2);
        const id = idArg(args, 0, 'id');
        const data = parseModel(args[1], 'data', {
          new_name: { type: 'str', required: true, minLength: 1 },
          recursive: { type: 'bool', default: false },
          force: { type: 'bool', default: false },
        });
        if (!data.force) {
          throw ValidationErrors.one(
            'pool.dataset.rename.force',
            'No safety checks are performed when renaming ZFS resources; this may break existing usages. If you understand the risks, please set force to true.',
          );
        }
        try {
          await env.ctx.engine.renameDataset(id, data.new_name as string);
        } catch (error) {
          engineFailure('Failed to rename dataset: ', error);
        }
        return null;
      },
    });
  }

  // Private ZFS-level dataset methods (no internal-path checks).
  if (ctx.version !== '26') {
    registry.add({
      name: 'zfs.dataset.query',
      private: true,
      handler: async (env, args) => {
        checkArgCount(args, 2);
        return query(await entries(env.ctx, true), args[0], args[1]);
      },
    });
    registry.add({
      name: 'zfs.dataset.delete',
      private: true,
      handler: async (env, args: SimValue[]) => {
        checkArgCount(args, 2);
        const id = idArg(args, 0, 'id');
        const options = parseModel(args[1] ?? {}, 'options', {
          recursive: { type: 'bool', default: false },
          force: { type: 'bool', default: false },
          recursively_remove_dependents: { type: 'bool', default: false },
        });
        await env.ctx.exclusive(async () => {
          try {
            // zfs destroy [-r|-R]
            await destroyDatasetTree(env.ctx, id, {
              recursive: options.recursive === true || options.recursively_remove_dependents === true,
              recursiveClones: options.recursively_remove_dependents === true,
            });
          } catch (error) {
            if (error instanceof CallError)
              throw new CallError(`Failed to delete dataset: ${error.errmsg}`, error.errno);
            engineFailure('Failed to delete dataset: ', error);
          }
        });
        return true;
      },
    });
  }
}
