// virt.global.* and virt.instance.* (plugins/virt/*.py, 25.04 and 25.10). Jobs validate their arguments inside
// the job; messages are the middleware's (and, where noted, Incus') wording.
import { checkArgCount, idArg, validateModel } from '../args.js';
import type { CallEnv, Registry, SimContext } from '../context.js';
import { containerDataset, EngineError, type InstanceRecord } from '../engine.js';
import { isSimObject, type SimObject, type SimValue } from '../ejson.js';
import { CallError, ERRNO, ValidationErrors, instanceNotFound, type ValidationItem } from '../errors.js';
import { query } from '../filters.js';
import { interfaces } from './network.js';
import { reapDeferred } from './zfs.js';
import {
  createModel,
  HOST_CORES,
  HOST_MEMORY,
  instanceLock,
  parseDevices,
  parseStopArgs,
  updateModel,
} from './virt-models.js';

export function globalConfig(ctx: SimContext): SimObject {
  if (!ctx.virtInitialized) {
    return {
      id: 1,
      pool: null,
      dataset: null,
      storage_pools: [],
      bridge: null,
      v4_network: null,
      v6_network: null,
      state: 'NO_POOL',
    };
  }
  const pool = ctx.engine.pool;
  return {
    id: 1,
    pool,
    dataset: `${pool}/.ix-virt`,
    storage_pools: [pool],
    bridge: ctx.virtBridge,
    v4_network: '127.77.1.1/24',
    v6_network: '::ffff:127.77.1.1/120',
    state: 'INITIALIZED',
  };
}

const BRIDGE_AUTO = '[AUTO]';

/** virt.global.bridge_choices: automatic, plus the NAS's bridges (interface.query type BRIDGE). */
function bridgeChoices(ctx: SimContext): SimObject {
  const choices: SimObject = { [BRIDGE_AUTO]: 'Automatic' };
  for (const i of interfaces(ctx, ctx.networkLayout))
    if (i.type === 'BRIDGE') choices[i.name as string] = i.name as string;
  return choices;
}

export function instanceEntry(ctx: SimContext, rec: InstanceRecord, raw = false): SimObject {
  const entry: SimObject = {
    id: rec.name,
    name: rec.name,
    type: 'CONTAINER',
    status: rec.status,
    cpu: rec.cpu,
    memory: rec.memory,
    autostart: rec.autostart,
    environment: { ...rec.environment },
    aliases: rec.addresses.map((a) => ({ type: a.type, address: a.address, netmask: a.netmask })),
    image: { ...rec.image, secureboot: null },
    userns_idmap: rec.privilegedMode
      ? null
      : {
          uid: { hostid: 2147000001, maprange: 458752, nsid: 0 },
          gid: { hostid: 2147000001, maprange: 458752, nsid: 0 },
        },
    raw: raw ? rawInstance(ctx, rec) : null,
    vnc_enabled: false,
    vnc_port: null,
    vnc_password: null,
    secure_boot: null,
    root_disk_size: null,
    root_disk_io_bus: null,
    storage_pool: rec.storagePool,
  };
  if (ctx.version !== '25.04') entry.privileged_mode = rec.privilegedMode;
  return entry;
}

/** A reduced Incus instance object for options.extra.raw. */
function rawInstance(ctx: SimContext, rec: InstanceRecord): SimObject {
  const config: SimObject = {
    'boot.autostart': 'false',
    'user.autostart': String(rec.autostart),
    'image.os': rec.image.os,
    'image.release': rec.image.release,
    'image.serial': rec.image.serial,
    'image.variant': rec.image.variant,
    'image.architecture': rec.image.architecture,
    'image.description': rec.image.description,
  };
  if (rec.cpu !== null) config['limits.cpu'] = rec.cpu;
  if (rec.memory !== null) config['limits.memory'] = `${Math.floor(rec.memory / 1024 / 1024)}MiB`;
  for (const [k, v] of Object.entries(rec.environment)) config[`environment.${k}`] = v;
  if (rec.privilegedMode) config['security.privileged'] = 'true';
  return {
    name: rec.name,
    type: 'container',
    status: rec.status === 'RUNNING' ? 'Running' : rec.status === 'STOPPED' ? 'Stopped' : rec.status,
    created_at: rec.createdAt,
    config,
    devices: { root: { path: '/', pool: ctx.engine.pool, type: 'disk' } },
    profiles: ['default'],
    project: 'default',
  };
}

async function findInstance(ctx: SimContext, name: string): Promise<InstanceRecord | undefined> {
  if (!ctx.virtInitialized) return undefined; // query() returns [] when not initialised
  return (await ctx.engine.listInstances()).find((i) => i.name === name);
}

/** virt.global.check_initialized */
function checkInitialized(ctx: SimContext): void {
  if (!ctx.virtInitialized) throw new CallError('Virtualization not initialized.', ERRNO.EFAULT);
}

async function mustInstance(ctx: SimContext, name: string): Promise<InstanceRecord> {
  const rec = await findInstance(ctx, name);
  if (!rec) throw instanceNotFound(`VirtInstance ${name} does not exist`);
  return rec;
}

function statusEvent(ctx: SimContext, name: string, status: string): void {
  ctx.notifyStatus(name, status);
}

/** Spends the job's duration in steps, reporting Incus-like progress (percent stays as it is). */
async function work(env: CallEnv, descriptions: string[]): Promise<void> {
  const job = env.job!;
  const step = env.ctx.jobDurationMs / Math.max(1, descriptions.length);
  for (const description of descriptions) {
    await job.sleep(step);
    job.progress(null, description);
  }
}

function engineCall(prefix: string, error: unknown, suffix = ''): never {
  if (error instanceof EngineError) throw new CallError(`${prefix}${error.message}${suffix}`, ERRNO.EFAULT);
  throw error;
}

type StopArgs = ReturnType<typeof parseStopArgs>;

/** What delete stops a running instance with. */
const FORCE_STOP: StopArgs = { force: true, timeout: -1 };

/** The engine start with Incus' error wording, then the event (create's autostart, start, restart). */
async function startNow(ctx: SimContext, id: string): Promise<void> {
  try {
    await ctx.engine.startInstance(id);
  } catch (error) {
    engineCall('Failed to start instance: ', error, '. Please check job logs.');
  }
  statusEvent(ctx, id, 'RUNNING');
}

/** The engine stop, then the event (stop, restart, delete). */
async function stopNow(ctx: SimContext, id: string, stop: StopArgs): Promise<void> {
  try {
    await ctx.engine.stopInstance(id, stop.force, stop.timeout);
  } catch (error) {
    engineCall('', error);
  }
  statusEvent(ctx, id, 'STOPPED');
}

/** The start half shared by start and restart: progress, then startNow. */
async function startImpl(env: CallEnv, id: string): Promise<void> {
  await work(env, ['Starting instance']);
  await startNow(env.ctx, id);
}

/** The stop half shared by stop and restart. */
async function stopImpl(env: CallEnv, id: string, stop: StopArgs): Promise<void> {
  await work(env, ['Stopping instance']);
  await stopNow(env.ctx, id, stop);
}

/** start and restart refuse an instance that is neither running nor stopped (`verb`: "started"/"restarted"). */
async function mustStartable(
  ctx: SimContext,
  id: string,
  attribute: string,
  verb: string,
): Promise<InstanceRecord> {
  const rec = await mustInstance(ctx, id);
  if (rec.status !== 'RUNNING' && rec.status !== 'STOPPED') {
    throw ValidationErrors.one(
      attribute,
      `${id}: instance may not be ${verb} because current status is: ${rec.status}`,
    );
  }
  return rec;
}

/** The environment dict as Incus stores it: every value a string. */
function environmentOf(value: SimValue | undefined): Record<string, string> {
  const environment: Record<string, string> = {};
  if (isSimObject(value)) for (const [k, v] of Object.entries(value)) environment[k] = String(v);
  return environment;
}

/** The host limits create and update check (`schema`: "virt_instance_create" / "virt_instance_update"). */
function checkCpu(data: SimObject, schema: string, errors: ValidationItem[]): void {
  if (typeof data.cpu === 'string' && /^\d+$/.test(data.cpu) && Number(data.cpu) > HOST_CORES)
    errors.push([`${schema}.cpu`, 'Cannot reserve more than system cores', ERRNO.EINVAL]);
}

function checkMemory(data: SimObject, schema: string, errors: ValidationItem[]): void {
  if (typeof data.memory === 'number' && data.memory > HOST_MEMORY)
    errors.push([`${schema}.memory`, 'Cannot reserve more than physical memory', ERRNO.EINVAL]);
}

/**
 * `virt.instance.<verb>(id)`, or `(id, stop_args)` when `takesStopArgs`, as a job under the instance's lock: the
 * argument count, the id and the stop options are checked before the initialised check (the call is validated
 * first), then `run`; the job returns true. Without stop_args `run` gets FORCE_STOP.
 */
function addInstanceAction(
  registry: Registry,
  name: string,
  takesStopArgs: boolean,
  run: (env: CallEnv, id: string, stop: StopArgs) => Promise<void>,
): void {
  registry.add({
    name,
    job: { lock: instanceLock },
    handler: async (env, args) => {
      checkArgCount(args, takesStopArgs ? 2 : 1);
      const id = idArg(args, 0, 'id');
      const stop = takesStopArgs ? parseStopArgs(args[1]) : FORCE_STOP;
      checkInitialized(env.ctx);
      await run(env, id, stop);
      return true;
    },
  });
}

// ------------------------------------------------------------------ registration

export function registerVirt(registry: Registry, ctx: SimContext): void {
  registry.add({ name: 'virt.global.config', handler: async () => globalConfig(ctx) });
  registry.add({
    name: 'virt.global.pool_choices',
    handler: async () => ({ '[DISABLED]': '[Disabled]', [ctx.engine.pool]: ctx.engine.pool }),
  });
  // virt.global.bridge_choices / get_network: methods/network.ts (they read the NAS's interfaces).
  registry.add({
    name: 'virt.global.update',
    job: { lock: () => 'virt_global_configuration' },
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const data = args[0];
      if (!isSimObject(data)) throw new Error("AttributeError: object has no attribute 'get'");
      const errors: ValidationItem[] = [];
      for (const key of Object.keys(data))
        if (!['pool', 'bridge', 'storage_pools', 'v4_network', 'v6_network'].includes(key))
          errors.push([`virt_global_update.${key}`, 'Extra inputs are not permitted', ERRNO.EINVAL]);
      if (errors.length) throw new ValidationErrors(errors);
      // validate(): an empty bridge means automatic; anything else must be one of bridge_choices.
      const bridge = data.bridge === undefined ? env.ctx.virtBridge : data.bridge;
      if (
        bridge !== null &&
        bridge !== '' &&
        (typeof bridge !== 'string' || !(bridge in bridgeChoices(env.ctx)))
      )
        errors.push(['virt_global_update.bridge', 'Invalid bridge', ERRNO.EINVAL]);
      if (data.pool !== undefined && data.pool !== env.ctx.engine.pool)
        errors.push(['virt_global_update.pool', 'Invalid pool', ERRNO.EINVAL]);
      if (errors.length) throw new ValidationErrors(errors);
      await work(env, ['Setting up virtualization']);
      // virt.global.setup: the default profile's NIC now uses this bridge (new instances land on it).
      env.ctx.virtBridge = !bridge || bridge === BRIDGE_AUTO ? null : (bridge as string);
      return globalConfig(env.ctx);
    },
  });

  registry.add({
    name: 'virt.instance.query',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const options = isSimObject(args[1]) ? args[1] : undefined;
      const extra = options && isSimObject(options.extra) ? options.extra : {};
      const raw = extra.raw === true;
      const records =
        env.ctx.virtInitialized || extra.skip_state === true ? await env.ctx.engine.listInstances() : [];
      const rows = records.map((r) => instanceEntry(env.ctx, r, raw));
      return query(rows, args[0], args[1]);
    },
  });

  registry.add({
    name: 'virt.instance.get_instance',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = idArg(args, 0, 'id');
      const options = isSimObject(args[1]) ? args[1] : {};
      const extra = isSimObject(options.extra) ? options.extra : {};
      const rec = await mustInstance(env.ctx, id);
      return instanceEntry(env.ctx, rec, extra.raw === true);
    },
  });

  registry.add({
    name: 'virt.instance.image_choices',
    handler: async (_env, args) => {
      checkArgCount(args, 1);
      const item = (label: string, os: string, release: string) => ({
        label,
        os,
        release,
        archs: ['amd64'],
        variant: 'default',
        instance_types: ['CONTAINER', 'VM'],
        secureboot: null,
      });
      return {
        'ubuntu/24.04': item('Ubuntu noble (amd64, default)', 'Ubuntu', 'noble'),
        'ubuntu/22.04': item('Ubuntu jammy (amd64, default)', 'Ubuntu', 'jammy'),
        'debian/12': item('Debian bookworm (amd64, default)', 'Debian', 'bookworm'),
        'debian/13': item('Debian trixie (amd64, default)', 'Debian', 'trixie'),
        'alpine/3.20': item('Alpine 3.20 (amd64, default)', 'Alpine', '3.20'),
      };
    },
  });

  registry.add({
    name: 'virt.instance.device_list',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const rec = await mustInstance(env.ctx, idArg(args, 0, 'id'));
      const devices: SimObject[] = [
        {
          name: 'eth0',
          description: 'incusbr0',
          readonly: true,
          dev_type: 'NIC',
          network: 'incusbr0',
          nic_type: null,
          parent: null,
        },
        {
          name: 'root',
          description: `${env.ctx.engine.pool} -> /`,
          readonly: false,
          dev_type: 'DISK',
          source: null,
          destination: '/',
          boot_priority: null,
          io_bus: null,
          storage_pool: env.ctx.engine.pool,
        },
        ...rec.devices.map((d) => ({ ...d, readonly: false })),
      ];
      return devices;
    },
  });

  registry.add({
    name: 'virt.instance.create',
    job: {
      lock: (args) => {
        const data = args[0];
        if (!isSimObject(data)) throw new Error("AttributeError: object has no attribute 'get'");
        return `instance_action_${String(data.name)}`;
      },
    },
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const errors: ValidationItem[] = [];
      const data = validateModel(args[0], 'virt_instance_create', createModel(env.ctx), errors);
      const devices = parseDevices(env.ctx, data.devices ?? null, 'virt_instance_create', errors);
      if (errors.length) throw new ValidationErrors(errors);
      const name = data.name as string;
      checkInitialized(env.ctx);
      // validate(): what needs state
      if (await findInstance(env.ctx, name))
        errors.push(['virt_instance_create.name', `Name '${name}' already exists`, ERRNO.EINVAL]);
      const pool = (data.storage_pool as string | null) ?? env.ctx.engine.pool;
      if (pool !== env.ctx.engine.pool)
        errors.push(['virt_instance_create.storage_pool', 'Not a valid ZFS pool', ERRNO.EINVAL]);
      checkMemory(data, 'virt_instance_create', errors);
      checkCpu(data, 'virt_instance_create', errors);
      // validate_device: a BRIDGED parent must be one of virt.device.nic_choices('BRIDGED'), the BRIDGE interfaces.
      const bridges = interfaces(env.ctx, env.ctx.networkLayout)
        .filter((i) => i.type === 'BRIDGE')
        .map((i) => i.name);
      for (const d of devices)
        if (d.dev_type === 'NIC' && d.nic_type === 'BRIDGED' && !bridges.includes(d.parent as string))
          errors.push(['virt_instance_create', 'Invalid parent interface', ERRNO.EINVAL]);
      if (errors.length) throw new ValidationErrors(errors);

      const image = data.image as string;
      await work(env, [
        `Retrieving image: metadata: 100% (${(Math.random() * 4 + 1).toFixed(2)}MB/s)`,
        `Retrieving image: rootfs: 47% (${(Math.random() * 40 + 20).toFixed(2)}MB/s)`,
        `Retrieving image: rootfs: 100% (${(Math.random() * 40 + 20).toFixed(2)}MB/s)`,
        'Unpacking image: 100% (1.20GB/s)',
      ]);
      try {
        await env.ctx.engine.createInstance({
          name,
          image,
          cpu: (data.cpu as string | null) ?? null,
          memory: (data.memory as number | null) ?? null,
          environment: environmentOf(data.environment),
          autostart: data.autostart !== false,
          privilegedMode: data.privileged_mode === true,
          storagePool: pool,
          devices,
          defaultBridge: env.ctx.virtBridge,
        });
      } catch (error) {
        engineCall('Failed to create instance: ', error);
      }
      env.ctx.events.send('virt.instance.query', 'ADDED', { id: name });
      if (data.autostart !== false) await startNow(env.ctx, name);
      return instanceEntry(env.ctx, await mustInstance(env.ctx, name));
    },
  });

  registry.add({
    name: 'virt.instance.update',
    job: { lock: instanceLock },
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = idArg(args, 0, 'id');
      const errors: ValidationItem[] = [];
      const data = validateModel(args[1] ?? {}, 'virt_instance_update', updateModel(env.ctx), errors);
      if (errors.length) throw new ValidationErrors(errors);
      checkInitialized(env.ctx);
      await mustInstance(env.ctx, id);
      // validate(..., old=instance) and the container-only checks of do_update (truthiness, as data.get(k)).
      if (data.image_os)
        errors.push(['virt_instance_update.image_os', 'This attribute is only valid for VMs', ERRNO.EINVAL]);
      if (data.secure_boot) {
        errors.push([
          'virt_instance_update.secure_boot',
          'Secure boot is only supported for VMs',
          ERRNO.EINVAL,
        ]);
      }
      checkCpu(data, 'virt_instance_update', errors);
      if (data.enable_vnc === undefined) {
        for (const key of ['vnc_port', 'vnc_password']) {
          if (data[key])
            errors.push([
              'virt_instance_update.enable_vnc',
              `Should be set when '${key}' is specified`,
              ERRNO.EINVAL,
            ]);
        }
      }
      for (const field of ['root_disk_size', 'root_disk_io_bus', 'enable_vnc']) {
        if (data[field]) {
          errors.push([
            `virt_instance_update.${field}`,
            'This attribute is not supported for containers',
            ERRNO.EINVAL,
          ]);
        }
      }
      checkMemory(data, 'virt_instance_update', errors);
      if (errors.length) throw new ValidationErrors(errors);
      await work(env, ['Updating instance']);
      const patch: Parameters<SimContext['engine']['updateInstance']>[1] = {};
      if ('cpu' in data) patch.cpu = data.cpu as string | null;
      if ('memory' in data) patch.memory = data.memory as number | null;
      if ('autostart' in data && data.autostart !== null) patch.autostart = data.autostart as boolean;
      if ('privileged_mode' in data) patch.privilegedMode = data.privileged_mode as boolean;
      if ('environment' in data) patch.environment = environmentOf(data.environment);
      const rec = await env.ctx.engine.updateInstance(id, patch);
      env.ctx.events.send('virt.instance.query', 'CHANGED', { id });
      return instanceEntry(env.ctx, rec);
    },
  });

  addInstanceAction(registry, 'virt.instance.start', false, async (env, id) => {
    await mustStartable(env.ctx, id, 'virt.instance.start.id', 'started');
    await startImpl(env, id);
  });

  // The plugin does not look the instance up: an unknown id fails inside Incus.
  addInstanceAction(registry, 'virt.instance.stop', true, (env, id, stop) => stopImpl(env, id, stop));

  addInstanceAction(registry, 'virt.instance.restart', true, async (env, id, stop) => {
    // sic: the attribute carries the id (plugins/virt/instance.py)
    const rec = await mustStartable(env.ctx, id, `virt.instance.restart.${id}`, 'restarted');
    if (rec.status === 'RUNNING') await stopImpl(env, id, stop);
    await startImpl(env, id);
  });

  addInstanceAction(registry, 'virt.instance.delete', false, async (env, id, stop) => {
    const rec = await mustInstance(env.ctx, id);
    await work(env, ['Deleting instance']);
    if (rec.status === 'RUNNING') await stopNow(env.ctx, id, stop);
    await env.ctx.exclusive(async () => {
      try {
        await env.ctx.engine.deleteInstance(id);
      } catch (error) {
        engineCall('Failed to delete instance: ', error);
      }
      // Snapshot metadata of what went with the dataset is gone too.
      const prefix = `${containerDataset(env.ctx.engine.pool, id)}@`;
      for (const key of [...env.ctx.holds.keys()]) if (key.startsWith(prefix)) env.ctx.holds.delete(key);
      await reapDeferred(env.ctx);
    });
    env.ctx.notifyStatus(id, null);
    env.ctx.events.send('virt.instance.query', 'REMOVED', { id });
  });
}
