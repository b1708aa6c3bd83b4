// core.* (service/core_service.py) and system.*: ping, subscriptions, jobs, connection options, version.
import { randomUUID } from 'node:crypto';
import { checkArgCount, parseModel } from '../args.js';
import type { Registry, SimContext } from '../context.js';
import { isSimObject, type SimValue } from '../ejson.js';
import { CallError, ERRNO, ValidationErrors, instanceNotFound } from '../errors.js';
import { query } from '../filters.js';

export const SYSTEM_VERSIONS = {
  '25.04': 'TrueNAS-25.04.2.6',
  '25.10': 'TrueNAS-25.10.1',
  '26': 'TrueNAS-26.0.0-BETA.3',
} as const;

/** system.version: f"{BRAND}-{manifest.version}" (utils/__init__.py sw_info); a 26 build says which one. */
export function systemVersion(ctx: SimContext): string {
  return ctx.build ? `TrueNAS-${ctx.build}` : SYSTEM_VERSIONS[ctx.version];
}

function eventNames(ctx: SimContext): Set<string> {
  const names = ['*', 'core.get_jobs', 'pool.dataset.query'];
  if (ctx.version === '25.04') names.push('virt.instance.query', 'virt.global.config', 'zfs.snapshot.query');
  if (ctx.version === '25.10') {
    names.push('virt.instance.query', 'virt.global.config', 'zfs.snapshot.query', 'pool.snapshot.query');
  }
  if (ctx.version === '26') names.push('container.query', 'container.device.query', 'pool.snapshot.query');
  return new Set(names);
}

function jobId(args: SimValue[]): number {
  if (args.length === 0) throw new ValidationErrors([['id', 'Field required', ERRNO.EINVAL]]);
  const id = args[0];
  if (typeof id !== 'number' || !Number.isInteger(id)) {
    throw new ValidationErrors([['id', 'Input should be a valid integer', ERRNO.EINVAL]]);
  }
  return id;
}

export function registerCore(registry: Registry, ctx: SimContext): void {
  registry.add({
    name: 'core.ping',
    noAuth: ctx.version !== '25.04', // 25.10+: authentication_required=False
    handler: async () => 'pong',
  });

  registry.add({
    name: 'core.subscribe',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const name = args[0];
      if (typeof name !== 'string')
        throw new ValidationErrors([['name', 'Input should be a valid string', ERRNO.EINVAL]]);
      if (!eventNames(env.ctx).has(name)) throw new CallError('Not authorized', ERRNO.EACCES);
      const ident = randomUUID();
      env.conn.subscriptions.set(ident, name);
      return ident;
    },
  });

  registry.add({
    name: 'core.unsubscribe',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      if (typeof args[0] === 'string') env.conn.subscriptions.delete(args[0]);
      return null;
    },
  });

  registry.add({
    name: 'core.get_jobs',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const jobs = env.ctx.jobs.list().map((job) => job.toObject(env.ctx.version));
      return query(jobs, args[0], args[1]);
    },
  });

  registry.add({
    name: 'core.job_abort',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const id = jobId(args);
      const job = env.ctx.jobs.get(id);
      if (!job) throw instanceNotFound(`Job with id ${id} does not exist`);
      env.ctx.jobs.abort(job);
      return null;
    },
  });

  registry.add({
    name: 'core.job_wait',
    job: { abortable: false },
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const id = jobId(args);
      const target = env.ctx.jobs.get(id);
      if (!target) throw instanceNotFound(`Job with id ${id} does not exist`);
      await target.done;
      if (target.state === 'SUCCESS') return target.result;
      // Job.wait(raise_error=True): CallErrors are forwarded, anything else becomes CallError(job.error).
      if (target.cause instanceof CallError) throw target.cause;
      throw new CallError(target.failure?.error ?? 'Job aborted');
    },
  });

  registry.add({
    name: 'core.set_options',
    // authentication_required=False, rate_limit=False on 25.04, 25.10 and 26: iX's clients call it first thing.
    noAuth: true,
    rateLimit: false,
    handler: async (env, args) => {
      checkArgCount(args, 1);
      if (env.ctx.version === '25.04') {
        // 25.04: extra="ignore", legacy_jobs is not implemented, returns null.
        if (args.length && !isSimObject(args[0])) {
          throw new ValidationErrors([['options', 'Input should be a valid dictionary', ERRNO.EINVAL]]);
        }
        if (args.length && isSimObject(args[0])) {
          const opts = args[0];
          if (typeof opts.private_methods === 'boolean') env.conn.privateMethods = opts.private_methods;
          if (typeof opts.py_exceptions === 'boolean') env.conn.pyExceptions = opts.py_exceptions;
        }
        return null;
      }
      const opts = parseModel(args[0] ?? {}, 'options', {
        legacy_jobs: { type: 'bool' },
        private_methods: { type: 'bool' },
        py_exceptions: { type: 'bool' },
      });
      if (typeof opts.legacy_jobs === 'boolean') env.conn.legacyJobs = opts.legacy_jobs;
      if (typeof opts.private_methods === 'boolean') env.conn.privateMethods = opts.private_methods;
      if (typeof opts.py_exceptions === 'boolean') env.conn.pyExceptions = opts.py_exceptions;
      return {
        legacy_jobs: env.conn.legacyJobs,
        private_methods: env.conn.privateMethods,
        py_exceptions: env.conn.pyExceptions,
      };
    },
  });

  registry.add({ name: 'system.version', handler: async () => systemVersion(ctx) });
  registry.add({
    name: 'system.version_short',
    handler: async () => systemVersion(ctx).slice('TrueNAS-'.length),
  });
  registry.add({ name: 'system.ready', handler: async () => true });
  registry.add({ name: 'system.state', handler: async () => 'READY' });
  // 25.04: @no_auth_required; 25.10 and 26: authentication_required=False (plugins/system/lifecycle.py).
  registry.add({ name: 'system.boot_id', noAuth: true, handler: async () => ctx.bootId });
  // The other methods a real server answers before login (used by its login page).
  registry.add({
    name: 'system.advanced.login_banner',
    noAuth: true,
    handler: async (_env, args) => {
      checkArgCount(args, 0);
      return '';
    },
  });
  registry.add({
    name: 'truenas.managed_by_truecommand',
    noAuth: true,
    handler: async (_env, args) => {
      checkArgCount(args, 0);
      return false;
    },
  });
  registry.add({
    name: 'user.has_local_administrator_set_up',
    noAuth: true,
    handler: async (_env, args) => {
      checkArgCount(args, 0);
      return true;
    },
  });
  registry.add({
    name: 'user.setup_local_administrator',
    noAuth: true,
    handler: async (_env, args) => {
      checkArgCount(args, 3);
      throw new CallError('Local administrator is already set up', ERRNO.EEXIST);
    },
  });
  registry.add({
    name: 'system.info',
    handler: async () => ({
      version: systemVersion(ctx),
      buildtime: new Date(ctx.startedAt.getTime() - 30 * 86_400_000),
      hostname: 'truenas-sim',
      physmem: 68_719_476_736,
      model: 'Simulated CPU @ 3.00GHz',
      cores: 16,
      physical_cores: 8,
      loadavg: [0.12, 0.18, 0.2],
      uptime: `${Math.floor((Date.now() - ctx.startedAt.getTime()) / 1000)} seconds`,
      uptime_seconds: (Date.now() - ctx.startedAt.getTime()) / 1000,
      system_serial: 'SIM0001',
      system_product: 'TrueNAS Simulator',
      system_manufacturer: 'pixels-dev',
      license: null,
      boottime: ctx.startedAt,
      datetime: new Date(),
      timezone: 'UTC',
      ecc_memory: false,
      system_product_version: null,
    }),
  });
}
