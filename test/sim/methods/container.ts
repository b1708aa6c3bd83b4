// TrueNAS 26 (libvirt LXC, plugins/container; TS-26.0.0-BETA.3 and stable/26 = 26.0.0-RC.1): container.*,
// container.device.*, container.image.query_registry and lxc.*. The middleware's rows live in ctx.containers, the
// domain and the dataset in the engine (layout 'container'). Shapes and messages: api/v26_0_0/container*.py,
// pc/container.py, pc/lifecycle.py, pc/devices.py, pc/image.py, truenas_pylibvirt domain/manager.py.
import { randomBytes, randomUUID } from 'node:crypto';
import { checkArgCount, validateModel, type Model } from '../args.js';
import type { CallEnv, Registry, SimContext } from '../context.js';
import { EngineError, type DeviceSpec, type InstanceRecord } from '../engine.js';
import { isSimObject, type SimObject, type SimValue } from '../ejson.js';
import { CallError, ERRNO, instanceNotFound, ValidationErrors, type ValidationItem } from '../errors.js';
import { query } from '../filters.js';
import { CONTAINER_BRIDGE, type ContainerRow, type ContainerStore } from './container-store.js';
import { interfaces, SIM_LAN } from './network.js';
import { destroyDatasetTree } from './zfs.js';

/** RE_NAME (pc/container.py): RFC 1123 hostname, 1-100 characters, not an IPv4 address. */
const RE_NAME =
  /^(?!\d{1,3}(?:\.\d{1,3}){3}$)(?=.{1,100}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const NAME_RULE =
  'Name must be a valid hostname (up to 100 characters total): 1-63 characters per label, only letters, digits, ' +
  'and hyphens within each label, labels separated by dots, and must not be an IPv4 address.';

/** truenas_pylibvirt nsexec ALL_CAPABILITIES: the Linux capabilities without "cap_". */
const CAPABILITIES = new Set([
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw', 'ipc_lock', 'ipc_owner',
  'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct', 'sys_admin', 'sys_boot', 'sys_nice',
  'sys_resource', 'sys_time', 'sys_tty_config', 'mknod', 'lease', 'audit_write', 'audit_control', 'setfcap',
  'mac_override', 'mac_admin', 'syslog', 'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf',
  'checkpoint_restore',
]); // prettier-ignore

/**
 * The image registry (images.sys.truenas.net simplestreams, only products with root.tar.xz), and the engine image
 * each one is played by. Product names other than ubuntu:noble / alpine:edge and the version format are
 * unconfirmed (truenas-26.md §6).
 */
const REGISTRY: { name: string; alias: string; versions: string[] }[] = [
  { name: 'alpine:edge:amd64:default', alias: 'alpine/edge', versions: ['20260801_13:00', '20260802_13:00'] },
  {
    name: 'debian:bookworm:amd64:default',
    alias: 'debian/12',
    versions: ['20260801_05:24', '20260802_05:24'],
  },
  { name: 'debian:trixie:amd64:default', alias: 'debian/13', versions: ['20260801_05:24', '20260802_05:24'] },
  {
    name: 'ubuntu:jammy:amd64:default',
    alias: 'ubuntu/22.04',
    versions: ['20260801_07:42', '20260802_07:42'],
  },
  {
    name: 'ubuntu:noble:amd64:default',
    alias: 'ubuntu/24.04',
    versions: ['20260801_07:42', '20260802_07:42'],
  },
];

export function isRc1(ctx: SimContext): boolean {
  return ctx.build === '26.0.0-RC.1';
}

function store(ctx: SimContext): ContainerStore {
  if (!ctx.containers) throw new Error('container.* needs a TrueNAS 26 server');
  return ctx.containers;
}

/** pydantic on a positional int argument. */
function intArg(args: SimValue[], index: number, name: string): number {
  if (args.length <= index) throw new ValidationErrors([[name, 'Field required', ERRNO.EINVAL]]);
  const value = args[index];
  if (typeof value !== 'number' || !Number.isInteger(value) || typeof value === 'boolean')
    throw new ValidationErrors([
      [
        name,
        typeof value === 'number'
          ? 'Input should be a valid integer, got a number with a fractional part'
          : 'Input should be a valid integer',
        ERRNO.EINVAL,
      ],
    ]);
  return value;
}

// ------------------------------------------------------------------ entries

function statusOf(ctx: SimContext, row: ContainerRow, rec: InstanceRecord | undefined): SimObject {
  const running = rec && (rec.status === 'RUNNING' || rec.status === 'STOPPING' || rec.status === 'FROZEN');
  if (running) {
    const paused = rec.status === 'FROZEN';
    return {
      // B3's model lists RUNNING/STOPPED only (a paused domain reports RUNNING); RC1 adds SUSPENDED.
      state: paused && isRc1(ctx) ? 'SUSPENDED' : 'RUNNING',
      pid: rec.pid,
      domain_state: paused ? 'PAUSED' : 'RUNNING',
    };
  }
  return { state: 'STOPPED', pid: null, domain_state: row.defined ? 'SHUTOFF' : null };
}

function deviceEntry(d: { id: number; container: number; attributes: SimObject }): SimObject {
  return { id: d.id, container: d.container, attributes: { ...d.attributes } };
}

/** ContainerEntry (api/v26_0_0/container.py), built as pc/container.py extend does. */
export function containerEntry(
  ctx: SimContext,
  row: ContainerRow,
  rec: InstanceRecord | undefined,
): SimObject {
  const devices = store(ctx).devicesOf(row.id);
  const hasNic = devices.some((d) => d.attributes.dtype === 'NIC');
  return {
    id: row.id,
    uuid: row.uuid,
    name: row.name,
    description: row.description,
    devices: devices.map(deviceEntry),
    cpuset: row.cpuset,
    autostart: row.autostart,
    time: row.time,
    shutdown_timeout: row.shutdown_timeout,
    dataset: row.dataset,
    init: row.init,
    initdir: row.initdir,
    initenv: { ...row.initenv },
    inituser: row.inituser,
    initgroup: row.initgroup,
    idmap: row.idmap ? { ...row.idmap } : null,
    capabilities_policy: row.capabilities_policy,
    capabilities_state: { ...row.capabilities_state },
    default_network: hasNic ? null : store(ctx).bridgeName(),
    status: statusOf(ctx, row, rec),
  };
}

async function records(ctx: SimContext): Promise<Map<string, InstanceRecord>> {
  return new Map((await ctx.engine.listInstances()).map((r) => [r.name, r]));
}

export async function allEntries(ctx: SimContext): Promise<SimObject[]> {
  const recs = await records(ctx);
  return [...store(ctx).rows.values()]
    .sort((a, b) => a.id - b.id)
    .map((row) => containerEntry(ctx, row, recs.get(row.name)));
}

async function entryOf(ctx: SimContext, row: ContainerRow): Promise<SimObject> {
  return containerEntry(ctx, row, (await records(ctx)).get(row.name));
}

/** get_instance: InstanceNotFound("Container <id> does not exist"). */
function mustRow(ctx: SimContext, id: number): ContainerRow {
  const row = store(ctx).rows.get(id);
  if (!row) throw instanceNotFound(`Container ${id} does not exist`);
  return row;
}

async function isRunning(ctx: SimContext, row: ContainerRow): Promise<boolean> {
  const rec = (await records(ctx)).get(row.name);
  return rec?.status === 'RUNNING' || rec?.status === 'FROZEN' || rec?.status === 'STOPPING';
}

/** container.query CHANGED with the whole entry (pc/event.py domain_event_callback, CRUD update). */
export async function sendChanged(ctx: SimContext, row: ContainerRow): Promise<void> {
  if (!store(ctx).rows.has(row.id)) return;
  ctx.events.send('container.query', 'CHANGED', { id: row.id, fields: await entryOf(ctx, row) });
}

/** The libvirt domain event of a status change (start, stop, a guest that shut itself down). */
export function domainEvent(ctx: SimContext, name: string): void {
  const row = ctx.containers?.byName(name);
  if (row) void sendChanged(ctx, row).catch(() => undefined);
}

// ------------------------------------------------------------------ models and validation

function createModel(update: boolean): Model {
  const opt = (field: Model[string]): Model[string] =>
    update ? { ...field, default: undefined, required: false } : field;
  const model: Model = {
    name: opt({ type: 'str', required: !update, minLength: 1 }),
    uuid: opt({ type: 'str', nullable: true, default: null }),
    description: opt({ type: 'str', default: '' }),
    cpuset: opt({ type: 'str', nullable: true, default: null }),
    autostart: opt({ type: 'bool', default: true }),
    time: opt({ type: 'str', literals: ['LOCAL', 'UTC'], default: 'LOCAL' }),
    shutdown_timeout: opt({
      type: 'int',
      ge: 5,
      default: 90,
      check: (v) => ((v as number) > 300 ? 'Input should be less than or equal to 300' : null),
    }),
    init: opt({ type: 'str', default: '/sbin/init' }),
    initdir: opt({ type: 'str', nullable: true, default: null }),
    initenv: opt({
      type: 'dict',
      default: {},
      check: (v) => {
        for (const [k, val] of Object.entries(v as SimObject))
          if (typeof val !== 'string') return [`.${k}`, 'Input should be a valid string'];
        return null;
      },
    }),
    inituser: opt({ type: 'str', nullable: true, default: null }),
    initgroup: opt({ type: 'str', nullable: true, default: null }),
    capabilities_policy: opt({ type: 'str', literals: ['DEFAULT', 'ALLOW', 'DENY'], default: 'DEFAULT' }),
    capabilities_state: opt({
      type: 'dict',
      default: {},
      check: (v) => {
        for (const [k, val] of Object.entries(v as SimObject))
          if (typeof val !== 'boolean') return [`.${k}`, 'Input should be a valid boolean'];
        return null;
      },
    }),
  };
  if (!update) {
    model.pool = { type: 'str', nullable: true, default: null };
    model.image = { type: 'dict', required: true };
    model.idmap = { type: 'dict', nullable: true, default: { type: 'DEFAULT' } };
  }
  return model;
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The pydantic part of create/update: types, literals, extra keys, nested image/idmap. */
function parseFields(value: SimValue | undefined, schema: string, update: boolean): SimObject {
  const errors: ValidationItem[] = [];
  const data = validateModel(value, schema, createModel(update), errors);
  if (typeof data.uuid === 'string' && !UUID4.test(data.uuid))
    errors.push([`${schema}.uuid`, 'Value error, Invalid UUIDv4 string', ERRNO.EINVAL]);
  if (!update && isSimObject(data.image)) {
    data.image = validateModel(
      data.image,
      `${schema}.image`,
      { name: { type: 'str', required: true }, version: { type: 'str', required: true } },
      errors,
    );
  }
  if (!update && isSimObject(data.idmap)) {
    const type = data.idmap.type;
    if (type === 'DEFAULT') {
      data.idmap = validateModel(data.idmap, `${schema}.idmap.DEFAULT`, { type: { type: 'str' } }, errors);
    } else if (type === 'ISOLATED') {
      const parsed = validateModel(
        data.idmap,
        `${schema}.idmap.ISOLATED`,
        {
          type: { type: 'str' },
          slice: {
            type: 'int',
            nullable: true,
            required: true,
            check: (v) =>
              (v as number) < 1
                ? 'Input should be greater than 0'
                : (v as number) >= 1000
                  ? 'Input should be less than 1000'
                  : null,
          },
        },
        errors,
      );
      data.idmap = parsed;
    } else {
      errors.push([
        `${schema}.idmap`,
        typeof type === 'string'
          ? `Input tag '${type}' found using 'type' does not match any of the expected tags: 'DEFAULT', 'ISOLATED'`
          : "Unable to extract tag using discriminator 'type'",
        ERRNO.EINVAL,
      ]);
    }
  }
  if (errors.length) throw new ValidationErrors(errors);
  return data;
}

/** pc/container.py validate(): what needs state. Fills uuid and an ISOLATED slice. */
function validate(ctx: SimContext, schema: string, data: SimObject, old?: ContainerRow): ValidationItem[] {
  const errors: ValidationItem[] = [];
  if (data.uuid === null || data.uuid === undefined) data.uuid = randomUUID();
  if (isSimObject(data.idmap) && data.idmap.type === 'ISOLATED' && data.idmap.slice === null) {
    const used = new Set(
      [...store(ctx).rows.values()].map((r) => (r.idmap?.type === 'ISOLATED' ? r.idmap.slice : null)),
    );
    let slice = 1;
    while (used.has(slice)) slice += 1;
    data.idmap = { type: 'ISOLATED', slice };
  }
  const invalid = Object.keys((data.capabilities_state as SimObject | undefined) ?? {})
    .filter((c) => !CAPABILITIES.has(c))
    .sort();
  if (invalid.length)
    errors.push([
      `${schema}.capabilities_state`,
      `Invalid capabilities: ${invalid.join(', ')}`,
      ERRNO.EINVAL,
    ]);
  if (typeof data.cpuset === 'string' && data.cpuset) {
    if (data.cpuset.includes('_'))
      errors.push([`${schema}.cpuset`, 'Underscores are not allowed in CPU set values', ERRNO.EINVAL]);
    else {
      const problem = cpusetProblem(data.cpuset);
      if (problem) errors.push([`${schema}.cpuset`, `Invalid cpuset format: ${problem}`, ERRNO.EINVAL]);
    }
  }
  const name = data.name as string;
  const taken = [...store(ctx).rows.values()].some((r) => r.name === name && r.id !== old?.id);
  if (taken) errors.push([`${schema}.name`, 'A container with this name already exists.', ERRNO.EEXIST]);
  else if (!RE_NAME.test(name)) errors.push([`${schema}.name`, NAME_RULE, ERRNO.EINVAL]);
  return errors;
}

/** parse_numeric_set (truenas_pylibvirt domain/base/configuration.py): "0-3,8"; the ValueError text is Python's. */
function cpusetProblem(value: string): string | null {
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) {
      const bad = part.includes('-') ? (part.split('-').find((p) => !/^\s*\d+\s*$/.test(p)) ?? part) : part;
      return `invalid literal for int() with base 10: '${bad}'`;
    }
    if (m[2] !== undefined && Number(m[2]) < Number(m[1])) return `Invalid range: ${part.trim()}`;
  }
  return null;
}

// ------------------------------------------------------------------ devices as the engine plays them

/**
 * The NICs of a container as the engine's devices: a NIC device on the NAS's LAN bridge is a bridged NIC there, one
 * on a physical interface (or nic_attach null, the default-route interface) a macvlan child of it; one on the
 * container bridge is the default network. The default bridge is lxc.config's (null: truenasbr0, NAT'd).
 */
function engineNetwork(
  ctx: SimContext,
  row: ContainerRow,
): { devices: DeviceSpec[]; defaultBridge: string | null } {
  const nic = store(ctx)
    .devicesOf(row.id)
    .find((d) => d.attributes.dtype === 'NIC');
  const bridge = store(ctx).lxc.bridge;
  if (!nic) return { devices: [], defaultBridge: bridge };
  const attach = nic.attributes.nic_attach as string | null;
  if (attach === null || attach === SIM_LAN.physical)
    return {
      devices: [{ dev_type: 'NIC', nic_type: 'MACVLAN', parent: SIM_LAN.physical }],
      defaultBridge: bridge,
    };
  if (attach === SIM_LAN.bridge)
    return {
      devices: [{ dev_type: 'NIC', nic_type: 'BRIDGED', parent: SIM_LAN.bridge }],
      defaultBridge: bridge,
    };
  return { devices: [], defaultBridge: attach === CONTAINER_BRIDGE ? null : attach };
}

function nicAttachChoices(ctx: SimContext): { BRIDGE: string[]; MACVLAN: string[] } {
  const choices = { BRIDGE: [store(ctx).bridgeName()], MACVLAN: [] as string[] };
  for (const i of interfaces(ctx, ctx.networkLayout)) {
    const name = i.name as string;
    if (name.startsWith('br')) choices.BRIDGE.push(name);
    else choices.MACVLAN.push(name);
  }
  return choices;
}

/** NICDelegate: a random 00:a0:98 MAC, stored with the device. */
function randomMac(): string {
  return ['00', 'a0', '98', ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

// ------------------------------------------------------------------ lifecycle primitives

function engineFailure(error: unknown): never {
  if (error instanceof EngineError) throw new CallError(error.message, ERRNO.EFAULT);
  throw error;
}

/** container.start: the domain XML is regenerated from the row on every start (pylibvirt manager.start). */
async function startContainer(ctx: SimContext, row: ContainerRow): Promise<void> {
  const datasets = await ctx.engine.listDatasets();
  if (!datasets.some((d) => d.name === row.dataset))
    throw new CallError(`Dataset '${row.dataset}' not found`, ERRNO.ENOTDIR);
  if (await isRunning(ctx, row)) {
    const message = `Domain '${row.name}' is already started ('RUNNING').`;
    // B3: pylibvirt's own Error reaches the client as a generic exception; RC1 wraps it in a CallError.
    if (isRc1(ctx)) throw new CallError(message, ERRNO.EFAULT);
    throw new Error(message);
  }
  await writeHostname(ctx, row);
  const network = engineNetwork(ctx, row);
  try {
    await ctx.engine.updateInstance(row.name, {
      cpu: row.cpuset,
      autostart: row.autostart,
      environment: { ...row.initenv },
      devices: network.devices,
      defaultBridge: network.defaultBridge,
    });
    await ctx.engine.startInstance(row.name);
  } catch (error) {
    engineFailure(error);
  }
  row.defined = true;
  ctx.notifyStatus(row.name, 'RUNNING');
}

/**
 * Before init reads them, start writes `<rootfs>/etc/hostname` (the name) and the `127.0.1.1 <name>` line of
 * `/etc/hosts` (pc/utils.py, atomic_write: no symlinks on the way). A failure is only a warning in the log.
 */
async function writeHostname(ctx: SimContext, row: ContainerRow): Promise<void> {
  const options = { append: false, mode: 0o644, uid: 0, gid: 0 };
  try {
    for (const path of ['etc', 'etc/hostname', 'etc/hosts'])
      if ((await ctx.engine.statPath(row.dataset, path))?.type === 'SYMLINK') return;
    await ctx.engine.writeFile(row.dataset, 'etc/hostname', Buffer.from(`${row.name}\n`), options);
    const old = (await ctx.engine.readFile(row.dataset, 'etc/hosts'))?.toString() ?? '';
    const lines = old ? old.split(/(?<=\n)/) : [];
    let found = false;
    const out = lines.map((line) => {
      if (line.split(/\s+/)[0] !== '127.0.1.1') return line;
      found = true;
      return `127.0.1.1\t${row.name}\n`;
    });
    if (!found) out.push(`127.0.1.1\t${row.name}\n`);
    await ctx.engine.writeFile(row.dataset, 'etc/hosts', Buffer.from(out.join('')), options);
  } catch {
    // 'Failed to configure hostname for container %r' (a warning; the start goes on)
  }
}

/** libvirt destroy (a kill), as stop {force} and delete of a running domain do it. */
async function destroyDomain(ctx: SimContext, row: ContainerRow): Promise<void> {
  try {
    await ctx.engine.stopInstance(row.name, true, -1);
  } catch (error) {
    engineFailure(error);
  }
  ctx.notifyStatus(row.name, 'STOPPED');
}

/** The domain must exist and be active to be stopped (manager._libvirt_domain_for_stop). */
async function mustBeActive(ctx: SimContext, row: ContainerRow): Promise<void> {
  if (!row.defined) throw new Error(`Domain '${row.name}' does not exist`);
  if (!(await isRunning(ctx, row))) throw new Error(`Domain '${row.name}' is not active`);
}

/**
 * manager.shutdown: a clean shutdown request every second while it runs, for up to shutdown_timeout seconds. A
 * guest that honours it is down after the first second; one that ignores it (faults.ignoreShutdown) stays up.
 */
async function shutdownDomain(env: CallEnv, row: ContainerRow): Promise<void> {
  const ctx = env.ctx;
  if (ctx.faults.ignoresShutdown(row.name)) {
    for (let left = row.shutdown_timeout; left > 0 && (await isRunning(ctx, row)); left -= 1)
      await env.job!.sleep(1000);
    return;
  }
  await env.job!.sleep(Math.min(1000, ctx.jobDurationMs));
  try {
    await ctx.engine.stopInstance(row.name, false, row.shutdown_timeout);
  } catch (error) {
    engineFailure(error);
  }
  ctx.notifyStatus(row.name, 'STOPPED');
}

/** container.image.pull (private job, wrapped by create): the cached `<pool>/.truenas_containers/images/<n>:<v>@image`. */
async function pullImage(env: CallEnv, pool: string, image: SimObject): Promise<string> {
  const ctx = env.ctx;
  const dataset = `${pool}/.truenas_containers/images/${String(image.name)}:${String(image.version)}`;
  const snapshot = `${dataset}@image`;
  const datasets = new Set((await ctx.engine.listDatasets()).map((d) => d.name));
  if (datasets.has(dataset)) {
    const snaps = await ctx.engine.listSnapshots((d) => d === dataset);
    if (snaps.some((s) => s.id === snapshot)) return snapshot;
    await ctx.engine.destroyDataset(dataset); // an orphan of a failed pull
  }
  await ctx.engine.createDataset(dataset);
  const product = REGISTRY.find((p) => p.name === image.name);
  const errors: ValidationItem[] = [];
  if (!product)
    errors.push(['container_create.image.name', 'Image does not exist in the registry.', ERRNO.EINVAL]);
  else if (!product.versions.includes(String(image.version)))
    errors.push(['container_create.image.version', 'Version does not exist in the registry.', ERRNO.EINVAL]);
  // The dataset made above stays (the next pull removes it): pc/image.py validates after creating it.
  if (errors.length) throw new ValidationErrors(errors);
  const job = env.job!;
  const step = ctx.jobDurationMs / 5;
  job.progress(0, 'Connecting to image repository...');
  await job.sleep(step);
  job.progress(40, 'Downloading image: 61.3MB / 122.6MB');
  await job.sleep(step);
  job.progress(80, 'Extracting image files...');
  await job.sleep(step);
  job.progress(95, 'Cleaning up temporary files...');
  job.progress(98, 'Creating ZFS snapshot...');
  await ctx.engine.createSnapshot(dataset, 'image');
  return snapshot;
}

function registryAlias(image: SimObject): string {
  return REGISTRY.find((p) => p.name === image.name)!.alias;
}

// ------------------------------------------------------------------ registration

export function registerContainer(registry: Registry, ctx: SimContext): void {
  registry.add({
    name: 'container.query',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      return query(await allEntries(env.ctx), args[0], args[1]);
    },
  });

  registry.add({
    name: 'container.get_instance',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = intArg(args, 0, 'id');
      return entryOf(env.ctx, mustRow(env.ctx, id));
    },
  });

  registry.add({
    name: 'container.pool_choices',
    handler: async (env, args) => {
      checkArgCount(args, 0);
      return { [env.ctx.engine.pool]: env.ctx.engine.pool };
    },
  });

  registry.add({
    name: 'container.image.query_registry',
    handler: async (_env, args) => {
      checkArgCount(args, 0);
      return REGISTRY.map((p) => ({ name: p.name, versions: p.versions.map((version) => ({ version })) }));
    },
  });

  registry.add({
    name: 'container.create',
    job: {
      lock: (args) => {
        const data = args[0];
        if (!isSimObject(data)) throw new Error("AttributeError: object has no attribute 'get'");
        return `container_create:${data.name === undefined || data.name === null ? 'None' : String(data.name)}`;
      },
    },
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const ctx = env.ctx;
      const data = parseFields(args[0] ?? {}, 'container_create', false);
      const pool = (data.pool as string | null) ?? store(ctx).lxc.preferred_pool;
      delete data.pool;
      const errors = validate(ctx, 'container_create', data);
      if (!pool)
        errors.push([
          'container_create.pool',
          'Either configure a preferred pool in lxc settings or provide a pool name.',
          ERRNO.EINVAL,
        ]);
      else if (pool !== ctx.engine.pool)
        errors.push(['container_create.pool', 'Pool not found.', ERRNO.EINVAL]);
      if (errors.length) throw new ValidationErrors(errors);
      const image = data.image as SimObject;
      const snapshot = await pullImage(env, pool!, image);
      const name = data.name as string;
      const dataset = `${pool!}/.truenas_containers/containers/${name}`;
      // pool.snapshot.clone of the image, then the DB row (create_with_dataset).
      try {
        await ctx.engine.createInstance({
          name,
          image: registryAlias(image),
          cpu: (data.cpuset as string | null) ?? null,
          memory: null,
          environment: { ...(data.initenv as Record<string, string>) },
          autostart: data.autostart as boolean,
          privilegedMode: data.idmap === null,
          storagePool: pool!,
          devices: [],
          defaultBridge: store(ctx).lxc.bridge,
          origin: snapshot,
        });
      } catch (error) {
        if (error instanceof EngineError && error.code === 'EEXIST')
          throw new CallError(
            `Failed to clone snapshot: cannot create '${dataset}': dataset already exists`,
            ERRNO.EEXIST,
          );
        engineFailure(error);
      }
      const row = store(ctx).insert({
        uuid: data.uuid as string,
        name,
        description: data.description as string,
        autostart: data.autostart as boolean,
        time: data.time as 'LOCAL' | 'UTC',
        cpuset: (data.cpuset as string | null) ?? null,
        shutdown_timeout: data.shutdown_timeout as number,
        dataset,
        init: data.init as string,
        initdir: (data.initdir as string | null) ?? null,
        initenv: { ...(data.initenv as Record<string, string>) },
        inituser: (data.inituser as string | null) ?? null,
        initgroup: (data.initgroup as string | null) ?? null,
        idmap: (data.idmap as SimObject | null) ?? null,
        capabilities_policy: data.capabilities_policy as 'DEFAULT' | 'ALLOW' | 'DENY',
        capabilities_state: { ...(data.capabilities_state as Record<string, boolean>) },
        defined: false,
      });
      const entry = await entryOf(ctx, row);
      ctx.events.send('container.query', 'ADDED', { id: row.id, fields: entry });
      return entry;
    },
  });

  registry.add({
    name: 'container.update',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const ctx = env.ctx;
      const id = intArg(args, 0, 'id');
      if (args.length < 2) throw new ValidationErrors([['container_update', 'Field required', ERRNO.EINVAL]]);
      const patch = parseFields(args[1], 'container_update', true);
      const old = mustRow(ctx, id);
      const next: SimObject = { ...(old as unknown as SimObject), ...patch };
      const errors = validate(ctx, 'container_update', next, old);
      if (errors.length) throw new ValidationErrors(errors);
      const newName = next.name as string;
      if (newName !== old.name) {
        if (await isRunning(ctx, old)) throw new CallError('Container must be stopped before renaming.');
        try {
          await ctx.engine.renameInstance(old.name, newName);
        } catch (error) {
          engineFailure(error);
        }
        old.dataset = `${old.dataset.slice(0, old.dataset.lastIndexOf('/') + 1)}${newName}`;
        old.name = newName;
      }
      for (const key of [
        'uuid',
        'description',
        'cpuset',
        'autostart',
        'time',
        'shutdown_timeout',
        'init',
        'initdir',
        'initenv',
        'inituser',
        'initgroup',
        'capabilities_policy',
        'capabilities_state',
      ] as const)
        if (key in patch) (old as unknown as Record<string, SimValue>)[key] = patch[key];
      // autostart is a DB flag; cpuset/initenv reach the domain at its next start.
      await ctx.engine.updateInstance(old.name, { autostart: old.autostart });
      const entry = await entryOf(ctx, old);
      ctx.events.send('container.query', 'CHANGED', { id, fields: entry });
      return entry;
    },
  });

  registry.add({
    name: 'container.start',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const row = mustRow(env.ctx, intArg(args, 0, 'id'));
      await env.ctx.exclusive(() => startContainer(env.ctx, row));
      return null;
    },
  });

  registry.add({
    name: 'container.stop',
    job: { lock: (args) => `container_stop_${String(args[0])}` },
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = intArg(args, 0, 'id');
      const optErrors: ValidationItem[] = [];
      const options = validateModel(
        args[1] ?? {},
        'options',
        { force: { type: 'bool', default: false }, force_after_timeout: { type: 'bool', default: false } },
        optErrors,
      );
      if (optErrors.length) throw new ValidationErrors(optErrors);
      const row = mustRow(env.ctx, id);
      await mustBeActive(env.ctx, row);
      if (options.force === true) {
        await destroyDomain(env.ctx, row);
        return null;
      }
      await shutdownDomain(env, row);
      if (options.force_after_timeout === true && (await isRunning(env.ctx, row)))
        await destroyDomain(env.ctx, row);
      return null;
    },
  });

  registerDelete(registry, ctx);
  registerDevices(registry);
  registerLxc(registry);
}

/** Snapshot ids of a dataset (zfs.resource.snapshot.count of one path). */
async function snapshotsOf(ctx: SimContext, dataset: string): Promise<string[]> {
  return (await ctx.engine.listSnapshots((d) => d === dataset)).map((s) => s.id);
}

/** Removes the domain (a running one is killed, then libvirt waits 7 s: manager.delete) and the DB rows. */
async function deleteDomain(
  env: CallEnv,
  row: ContainerRow,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  if (await isRunning(env.ctx, row)) {
    await destroyDomain(env.ctx, row);
    await sleep(Math.min(7000, env.ctx.jobDurationMs * 4));
  }
}

function registerDelete(registry: Registry, ctx: SimContext): void {
  const removeRows = (row: ContainerRow) => {
    store(ctx).remove(row.id);
    ctx.notifyStatus(row.name, null);
    ctx.events.send('container.query', 'REMOVED', { id: row.id });
  };

  if (!isRc1(ctx)) {
    // B3 do_delete(id): domain and DB rows go first, then a non-recursive zfs.resource.destroy_impl. A dataset with
    // snapshots makes that fail after the container has vanished: the dataset is left behind, orphaned.
    registry.add({
      name: 'container.delete',
      handler: async (env, args) => {
        checkArgCount(args, 1);
        const row = mustRow(env.ctx, intArg(args, 0, 'id'));
        await deleteDomain(env, row, (ms) => new Promise((resolve) => setTimeout(resolve, ms)));
        await env.ctx.engine.forgetInstance(row.name);
        removeRows(row);
        await destroyDatasetNonRecursive(env.ctx, row.dataset);
        return null;
      },
    });
    return;
  }

  // RC1: a job; refuses a running container without force and a dataset with children/snapshots without
  // recursive before libvirt is touched; the dataset goes before the DB rows.
  registry.add({
    name: 'container.delete',
    job: { lock: (args) => `container_delete:${String(args[0])}` },
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = intArg(args, 0, 'id');
      const errors: ValidationItem[] = [];
      const options = validateModel(
        args[1] ?? {},
        'options',
        { force: { type: 'bool', default: false }, recursive: { type: 'bool', default: false } },
        errors,
      );
      if (errors.length) throw new ValidationErrors(errors);
      const row = mustRow(env.ctx, id);
      const entry = await entryOf(env.ctx, row);
      const state = (entry.status as SimObject).state as string;
      if (state !== 'STOPPED' && options.force !== true)
        throw ValidationErrors.one(
          'container_delete.force',
          `Container '${row.name}' is ${state.toLowerCase()}. Stop it first, or pass force=True to stop and delete it.`,
          ERRNO.EBUSY,
        );
      const datasets = (await env.ctx.engine.listDatasets()).map((d) => d.name);
      const exists = datasets.includes(row.dataset);
      if (exists && options.recursive !== true) {
        if (datasets.some((d) => d.startsWith(`${row.dataset}/`)))
          throw ValidationErrors.one(
            'container_delete.recursive',
            `Container '${row.name}' dataset '${row.dataset}' has child datasets. Set \`recursive\` to delete the container together with them.`,
            ERRNO.ENOTEMPTY,
          );
        const count = (await snapshotsOf(env.ctx, row.dataset)).length;
        if (count)
          throw ValidationErrors.one(
            'container_delete.recursive',
            `Container '${row.name}' dataset '${row.dataset}' has ${count} snapshot(s). Set \`recursive\` to delete the container together with them.`,
            ERRNO.ENOTEMPTY,
          );
      }
      await deleteDomain(env, row, (ms) => env.job!.sleep(ms));
      await env.ctx.engine.forgetInstance(row.name);
      if (exists) {
        try {
          await env.ctx.exclusive(() => destroyTree(env.ctx, row.dataset));
        } catch (error) {
          const reason =
            error instanceof CallError
              ? error.errmsg
              : error instanceof Error
                ? error.message
                : String(error);
          throw new CallError(`Failed to delete container '${row.name}' dataset: ${reason}`);
        }
      }
      removeRows(row);
      return null;
    },
  });
}

/** zfs.resource.destroy_impl(path) without recursive (resource_crud.py): refuses children and snapshots. */
async function destroyDatasetNonRecursive(ctx: SimContext, dataset: string): Promise<void> {
  const schema = 'zfs.resource.destroy';
  const extra = 'Set recursive=True to remove them.';
  const datasets = (await ctx.engine.listDatasets()).map((d) => d.name);
  if (!datasets.includes(dataset))
    throw ValidationErrors.one(schema, `'${dataset}' does not exist.`, ERRNO.ENOENT);
  if (datasets.some((d) => d.startsWith(`${dataset}/`)))
    throw ValidationErrors.one(schema, `'${dataset}' has children. ${extra}`, ERRNO.ENOTEMPTY);
  if ((await snapshotsOf(ctx, dataset)).length)
    throw ValidationErrors.one(schema, `'${dataset}' has snapshots. ${extra}`, ERRNO.ENOTEMPTY);
  try {
    await ctx.engine.destroyDataset(dataset);
  } catch (error) {
    engineFailure(error);
  }
}

/**
 * zfs destroy -R: the dataset, its children and snapshots, and every clone of those snapshots anywhere in the pool
 * (other containers cloned from its checkpoints included; their rows stay, pointing at nothing). A running
 * clone's mounted dataset is busy and stops it there.
 */
export async function destroyTree(ctx: SimContext, dataset: string): Promise<void> {
  await destroyDatasetTree(ctx, dataset, { recursive: true, recursiveClones: true });
}

// ------------------------------------------------------------------ devices

const NIC_MAC_B3 = /^([0-9A-Fa-f]{2}[:-]?){5}([0-9A-Fa-f]{2})$/;
const NIC_MAC_RC1 = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

/** ContainerDeviceEntry attributes: NIC and FILESYSTEM validated; USB/GPU accepted by shape only. */
function parseAttributes(
  ctx: SimContext,
  value: SimValue | undefined,
  prefix: string,
  containerId: number,
  ownId: number | null,
): SimObject {
  const errors: ValidationItem[] = [];
  if (!isSimObject(value))
    throw new ValidationErrors([[prefix, 'Input should be a valid dictionary', ERRNO.EINVAL]]);
  const dtype = value.dtype;
  let attrs: SimObject;
  switch (dtype) {
    case 'NIC': {
      attrs = validateModel(
        value,
        `${prefix}.NIC`,
        {
          dtype: { type: 'str' },
          type: { type: 'str', literals: ['E1000', 'VIRTIO'], default: 'E1000' },
          nic_attach: { type: 'str', nullable: true, default: null },
          mac: { type: 'str', nullable: true, default: null },
          trust_guest_rx_filters: { type: 'bool', default: false },
        },
        errors,
      );
      if (typeof attrs.mac === 'string') {
        if (isRc1(ctx)) {
          if (!NIC_MAC_RC1.test(attrs.mac))
            errors.push([
              `${prefix}.NIC.mac`,
              'Value error, MAC address must be a colon-separated hexadecimal value (e.g. 00:a0:99:7e:bb:8a).',
              ERRNO.EINVAL,
            ]);
          else attrs.mac = attrs.mac.toLowerCase();
        } else if (!NIC_MAC_B3.test(attrs.mac))
          errors.push([
            `${prefix}.NIC.mac`,
            `String should match pattern '${NIC_MAC_B3.source}'`,
            ERRNO.EINVAL,
          ]);
      }
      break;
    }
    case 'FILESYSTEM':
      attrs = validateModel(
        value,
        `${prefix}.FILESYSTEM`,
        {
          dtype: { type: 'str' },
          source: { type: 'str', required: true, minLength: 1 },
          target: { type: 'str', required: true, minLength: 1 },
        },
        errors,
      );
      break;
    case 'USB':
      attrs = validateModel(
        value,
        `${prefix}.USB`,
        {
          dtype: { type: 'str' },
          usb: { type: 'dict', nullable: true, default: null },
          device: { type: 'str', nullable: true, default: null },
        },
        errors,
      );
      break;
    case 'GPU':
      attrs = validateModel(
        value,
        `${prefix}.GPU`,
        {
          dtype: { type: 'str' },
          gpu_type: { type: 'str', literals: ['AMD', 'INTEL', 'NVIDIA'], required: true },
          pci_address: { type: 'str', required: true },
        },
        errors,
      );
      break;
    default:
      throw new ValidationErrors([
        [
          prefix,
          typeof dtype === 'string'
            ? `Input tag '${dtype}' found using 'dtype' does not match any of the expected tags: 'GPU', 'FILESYSTEM', 'NIC', 'USB'`
            : "Unable to extract tag using discriminator 'dtype'",
          ERRNO.EINVAL,
        ],
      ]);
  }
  if (errors.length) throw new ValidationErrors(errors);
  // The device's own validation (utils/libvirt/*.py delegates) on the validated attributes.
  const row = mustRow(ctx, containerId);
  if (dtype === 'NIC') {
    const choices = nicAttachChoices(ctx);
    const attach = attrs.nic_attach;
    if (attach !== null && ![...choices.BRIDGE, ...choices.MACVLAN].includes(attach as string))
      errors.push(['attributes.nic_attach', 'Not a valid choice.', ERRNO.EINVAL]);
    if (attrs.trust_guest_rx_filters === true && attach !== null && choices.BRIDGE.includes(attach as string))
      errors.push([
        'attributes.trust_guest_rx_filters',
        'This can only be set when "nic_attach" is not a bridge',
        ERRNO.EINVAL,
      ]);
    if (attrs.mac === null) attrs.mac = randomMac();
    const clash = store(ctx)
      .devicesOf(containerId)
      .some(
        (d) =>
          d.id !== ownId &&
          d.attributes.dtype === 'NIC' &&
          String(d.attributes.mac).toLowerCase() === String(attrs.mac).toLowerCase(),
      );
    if (clash)
      errors.push([
        'attributes.mac',
        `${row.name} already has a NIC with MAC address '${String(attrs.mac)}' configured`,
        ERRNO.EINVAL,
      ]);
  }
  if (dtype === 'FILESYSTEM') {
    for (const key of ['source', 'target'])
      if (/[{}]/.test(String(attrs[key])))
        errors.push([`attributes.${key}`, 'Must not contain "{" or "}" characters', ERRNO.EINVAL]);
    if (!/^\/mnt\/[^/]+/.test(String(attrs.source)))
      errors.push(['attributes.source', 'The path must reside within a pool mount point', ERRNO.EINVAL]);
  }
  if (errors.length) throw new ValidationErrors(errors);
  return attrs;
}

function mustDevice(ctx: SimContext, id: number) {
  const device = store(ctx).devices.get(id);
  if (!device) throw instanceNotFound(`ContainerDevice ${id} does not exist`);
  return device;
}

/** container.device.* (pc/devices.py): CRUD events on container.device.query only; container.query sends none. */
function registerDevices(registry: Registry): void {
  registry.add({
    name: 'container.device.query',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const rows = [...store(env.ctx).devices.values()].sort((a, b) => a.id - b.id).map(deviceEntry);
      return query(rows, args[0], args[1]);
    },
  });
  registry.add({
    name: 'container.device.get_instance',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      return deviceEntry(mustDevice(env.ctx, intArg(args, 0, 'id')));
    },
  });
  registry.add({
    name: 'container.device.create',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const errors: ValidationItem[] = [];
      const data = validateModel(
        args[0] ?? {},
        'container_device_create',
        { container: { type: 'int', required: true }, attributes: { type: 'dict', required: true } },
        errors,
      );
      if (errors.length) throw new ValidationErrors(errors);
      const container = data.container as number;
      if (!store(env.ctx).rows.has(container))
        throw ValidationErrors.one('container_device_create.container', 'Not a valid choice.', ERRNO.EINVAL);
      const attrs = parseAttributes(
        env.ctx,
        data.attributes,
        'container_device_create.attributes',
        container,
        null,
      );
      const device = store(env.ctx).insertDevice(container, attrs);
      env.ctx.events.send('container.device.query', 'ADDED', { id: device.id, fields: deviceEntry(device) });
      return deviceEntry(device);
    },
  });
  registry.add({
    name: 'container.device.update',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = intArg(args, 0, 'id');
      const errors: ValidationItem[] = [];
      const data = validateModel(
        args[1] ?? {},
        'container_device_update',
        { container: { type: 'int' }, attributes: { type: 'dict' } },
        errors,
      );
      if (errors.length) throw new ValidationErrors(errors);
      const device = mustDevice(env.ctx, id);
      const container = (data.container as number | undefined) ?? device.container;
      const merged = { ...device.attributes, ...((data.attributes as SimObject | undefined) ?? {}) };
      const attrs = parseAttributes(env.ctx, merged, 'container_device_update.attributes', container, id);
      device.container = container;
      device.attributes = attrs;
      env.ctx.events.send('container.device.query', 'CHANGED', { id, fields: deviceEntry(device) });
      return deviceEntry(device);
    },
  });
  registry.add({
    name: 'container.device.delete',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const id = intArg(args, 0, 'id');
      const errors: ValidationItem[] = [];
      validateModel(
        args[1] ?? {},
        'options',
        {
          force: { type: 'bool', default: false },
          raw_file: { type: 'bool', default: false },
          zvol: { type: 'bool', default: false },
        },
        errors,
      );
      if (errors.length) throw new ValidationErrors(errors);
      const device = mustDevice(env.ctx, id);
      const row = mustRow(env.ctx, device.container);
      if (await isRunning(env.ctx, row))
        throw new CallError('Please stop associated container before deleting container device.');
      store(env.ctx).devices.delete(id);
      env.ctx.events.send('container.device.query', 'REMOVED', { id });
      return true;
    },
  });
  registry.add({
    name: 'container.device.nic_attach_choices',
    handler: async (env, args) => {
      checkArgCount(args, 0);
      return nicAttachChoices(env.ctx);
    },
  });
  registry.add({
    name: 'container.device.usb_choices',
    handler: async (_env, args) => {
      checkArgCount(args, 0);
      return {};
    },
  });
  registry.add({
    name: 'container.device.gpu_choices',
    handler: async (_env, args) => {
      checkArgCount(args, 0);
      return {};
    },
  });
}

// ------------------------------------------------------------------ lxc (pc/config.py)

function lxcConfig(ctx: SimContext): SimObject {
  const c = store(ctx).lxc;
  return {
    id: 1,
    preferred_pool: c.preferred_pool,
    bridge: c.bridge,
    v4_network: c.v4_network,
    v6_network: c.v6_network,
  };
}

function bridgeChoices(ctx: SimContext): SimObject {
  const choices: SimObject = { '[AUTO]': 'Automatic' };
  for (const i of interfaces(ctx, ctx.networkLayout))
    if (i.type === 'BRIDGE') choices[i.name as string] = i.name as string;
  return choices;
}

function registerLxc(registry: Registry): void {
  registry.add({
    name: 'lxc.config',
    handler: async (env, args) => {
      checkArgCount(args, 0);
      return lxcConfig(env.ctx);
    },
  });
  registry.add({
    name: 'lxc.bridge_choices',
    handler: async (env, args) => {
      checkArgCount(args, 0);
      return bridgeChoices(env.ctx);
    },
  });
  registry.add({
    name: 'lxc.update',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const errors: ValidationItem[] = [];
      const data = validateModel(
        args[0] ?? {},
        'lxc_config_update',
        {
          preferred_pool: { type: 'str', nullable: true },
          bridge: { type: 'str', nullable: true },
          v4_network: { type: 'str', nullable: true },
          v6_network: { type: 'str', nullable: true },
        },
        errors,
      );
      if (errors.length) throw new ValidationErrors(errors);
      const c = store(env.ctx).lxc;
      const next = { ...c };
      if ('preferred_pool' in data) next.preferred_pool = data.preferred_pool as string | null;
      if ('bridge' in data)
        next.bridge = data.bridge === '' || data.bridge === '[AUTO]' ? null : (data.bridge as string | null);
      if ('v4_network' in data) next.v4_network = data.v4_network as string | null;
      if ('v6_network' in data) next.v6_network = data.v6_network as string | null;
      if (next.bridge !== null && !(next.bridge in bridgeChoices(env.ctx)))
        errors.push(['lxc_config_update.bridge', 'Invalid bridge', ERRNO.EINVAL]);
      if (next.bridge === null && !next.v4_network && !next.v6_network)
        errors.push([
          'lxc_config_update.bridge',
          'You must specify either IPv4 network of IPv6 network for automatically-configured bridge',
          ERRNO.EINVAL,
        ]);
      if (next.v4_network) {
        const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(next.v4_network);
        if (!m) errors.push(['lxc_config_update.v4_network', 'Not a valid IPv4 network', ERRNO.EINVAL]);
        else if (Number(m[2]) > 30)
          errors.push([
            'lxc_config_update.v4_network',
            'The network must have at least 4 addresses',
            ERRNO.EINVAL,
          ]);
      }
      if (next.preferred_pool !== null && next.preferred_pool !== env.ctx.engine.pool)
        errors.push(['lxc_config_update.preferred_pool', 'Pool not found.', ERRNO.EINVAL]);
      if (errors.length) throw new ValidationErrors(errors);
      Object.assign(c, next);
      return lxcConfig(env.ctx);
    },
  });
}
