// The Backend for TrueNAS 26: libvirt LXC containers under container.* (no virt.*, no exec API, no IP field).
// The address comes from a boot hook that reports it into the rootfs (read back with filesystem.listdir), SSH
// access is written into the rootfs before the first start (file_receive refuses symlinks on 26: ELOOP), and
// checkpoints are ZFS snapshots where the build allows them. Facts: ../shared/docs/truenas-26.md.
import { randomBytes } from 'node:crypto';
import type { Backend, BackendCapabilities, BackendChange, ServerInfo } from '../../core/backend';
import type { Disposable } from '../../core/disposable';
import { Emitter } from '../../core/disposable';
import {
  AlreadyExistsError,
  ConnectionError,
  DependentClonesError,
  NotFoundError,
  SecurityError,
  ServerError,
  TimeoutError,
  UnsupportedError,
  ValidationError,
} from '../../core/errors';
import type { Logger } from '../../core/log';
import { silentLogger } from '../../core/log';
import {
  checkpointLabelProblem,
  cpuProblem,
  defaultCheckpointLabel,
  type ServerLimits,
  validateCheckpointLabel,
  validateSandboxName,
} from '../../core/names';
import type { NetworkPlan, NicSetting } from '../../core/network-plan';
import {
  type Checkpoint,
  type CloneSource,
  type CreateOptions,
  INSTANCE_PREFIX,
  instanceName,
  type OperationOptions,
  type Sandbox,
  shortName,
  type StopOptions,
  type WriteFileOptions,
} from '../../core/sandbox';
import { objectWith, rowsWith } from '../../core/reply-shape';
import type { CollectionUpdate, TrueNASClient } from './client';
import {
  ADDRESS_DIR,
  BOOT_HOOK_PATH,
  bootHookScript,
  byDataset,
  checkpointsOf,
  CLONE_SNAPSHOT_PREFIX,
  type ContainerEntry,
  containerDataset,
  containerToSandbox,
  cpusetFor,
  isOurs,
  isProtectedPathRefusal,
  machineIdText,
  poolOfDataset,
  type RegistryImage,
  type ReportedAddress,
  addressFromListing,
  resolveImage,
  rootfsPath,
  SSHD_HOSTKEY_DROPIN,
  SSHD_HOSTKEY_DROPIN_TEXT,
  STALE_MARKER,
  stopOptions,
} from './container-model';
import { ContainerSnapshots, type SnapshotSupport } from './container-snapshots';
import { receiveFile, validateWriteTarget } from './file-receive';

const CONTAINER_ROWS = rowsWith({ id: 'number', name: 'string', dataset: 'string', status: 'object' });
/**
 * What a list reads of a container (containerToSandbox, the address, the names): container.query is a datastore
 * query with an extend step, so filter_list makes the selection (CRUDService.query, 26.0 BETA.3 and stable/26). A
 * server that ignores `select` sends whole rows, read the same way.
 */
const CONTAINER_LIST_FIELDS = ['id', 'name', 'dataset', 'status', 'description', 'cpuset'];
/** How long after a start the boot hook's address report is looked for (it retries for 120 s inside). */
const ADDRESS_WATCH_MS = 120_000;
const ELOOP = 40;

export interface ContainerBackendOptions {
  nic?: NicSetting;
  /** Setting: checkpoints through one-off root cron jobs where the API refuses them (RC.1 and later). */
  hostJobCheckpoints?: boolean;
}

/** A symbolic link in the path (file_receive's RESOLVE_NO_SYMLINKS, §3), anywhere in an error's chain. */
function isSymlinkRefusal(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const errno = (e as { errno?: unknown; data?: { errno?: unknown } }).data?.errno;
    if (errno === ELOOP || /ELOOP|symbolic link|symlink/i.test(e.message)) return true;
  }
  return false;
}

export class TrueNASContainerBackend implements Backend {
  readonly kind = 'truenas' as const;
  private readonly changes = new Emitter<BackendChange>();
  private readonly snapshots: ContainerSnapshots;
  private support: SnapshotSupport = { state: 'unknown' };
  private lxcPromise?: Promise<{ pool: string | null; bridge: string | null; v4: string | null }>;
  /** Addresses the boot hook reported, per boot (name + init pid). */
  private readonly addresses = new Map<string, ReportedAddress>();
  /** Container ids to names: REMOVED events carry only the id. */
  private readonly names = new Map<number, string>();
  private readonly watching = new Set<string>();
  private eventsStarted = false;
  private disposed = false;
  private unsubscribers: (() => void)[] = [];

  constructor(
    readonly serverId: string,
    private readonly client: TrueNASClient,
    private readonly options: ContainerBackendOptions = {},
    private readonly log: Logger = silentLogger,
  ) {
    this.snapshots = new ContainerSnapshots(client, options.hostJobCheckpoints ?? false);
  }

  readonly onDidChange = (listener: (change: BackendChange) => void): Disposable => {
    const d = this.changes.event(listener);
    if (!this.eventsStarted) {
      this.eventsStarted = true;
      this.startEvents().catch((e: unknown) => {
        this.eventsStarted = false;
        this.log.warn(`truenas: could not subscribe to changes on ${this.client.host}: ${String(e)}`);
      });
    }
    return d;
  };

  async info(): Promise<ServerInfo> {
    const version = await this.client.version();
    return { version: `TrueNAS ${version.display}` };
  }

  async limits(): Promise<ServerLimits> {
    const info = await this.client.call<{ cores?: number }>('system.info', [], {
      context: 'Reading the NAS',
    });
    return { cpus: typeof info.cores === 'number' && info.cores > 0 ? info.cores : undefined };
  }

  async capabilities(): Promise<BackendCapabilities> {
    const unavailable = this.support.state === 'refused' ? this.support.reason : undefined;
    return {
      restoreAnyCheckpoint: !unavailable,
      cloneFromCheckpoint: !unavailable,
      cloneFromCurrentState: !unavailable,
      writeFiles: true,
      // file_receive opens with RESOLVE_NO_SYMLINKS on 26: a link planted inside fails the write (ELOOP).
      writesResolveInSandbox: true,
      exec: false,
      cancel: true,
      clusterMembers: false,
      events: true,
      ...(unavailable ? { checkpointsUnavailable: unavailable } : {}),
    };
  }

  // --- sandboxes ---------------------------------------------------------------------------------------

  /** container.query + one snapshot query; an address read only for a boot not seen yet. */
  async list(): Promise<Sandbox[]> {
    const rows = await this.query([['name', '^', INSTANCE_PREFIX]], 'Listing sandboxes', {
      select: CONTAINER_LIST_FIELDS,
    });
    return this.toSandboxes(rows);
  }

  async get(name: string): Promise<Sandbox> {
    validateSandboxName(name);
    const entry = await this.require(name);
    const [sandbox] = await this.toSandboxes([entry]);
    return sandbox;
  }

  async create(options: CreateOptions, op?: OperationOptions): Promise<Sandbox> {
    validateSandboxName(options.name);
    const problems: { field: string; message: string }[] = [];
    if (!options.image?.trim()) problems.push({ field: 'image', message: 'An image is required.' });
    const cpuset = options.cpu !== undefined ? cpusetFor(options.cpu) : undefined;
    if (options.cpu !== undefined) {
      const p = cpuProblem(options.cpu);
      if (p) problems.push({ field: 'cpu', message: p });
    }
    for (const [k, v] of Object.entries(options.environment ?? {})) {
      if (!/^\w+$/.test(k))
        problems.push({ field: 'environment', message: `"${k}" is not a valid variable name.` });
      else if (!v.trim())
        problems.push({ field: 'environment', message: `The value of ${k} cannot be blank.` });
    }
    if (problems.length)
      throw new ValidationError(
        `Cannot create "${options.name}": ${problems.map((p) => p.message).join(' ')}`,
        problems,
      );
    if (options.memoryMiB !== undefined)
      this.log.info(`truenas: "${options.name}": TrueNAS 26 containers have no memory limit; none is set`);
    const name = options.name;
    if (await this.find(name)) throw new AlreadyExistsError(`A sandbox named "${name}" already exists.`);
    const [pool, registry] = await Promise.all([this.pool(), this.registry()]);
    const image = resolveImage(options.image, registry);
    const payload: Record<string, unknown> = {
      name: instanceName(name),
      image,
      pool,
      description: `${image.name}@${image.version}`,
      autostart: true,
    };
    if (cpuset) payload.cpuset = cpuset;
    if (options.environment && Object.keys(options.environment).length) payload.initenv = options.environment;
    try {
      await this.client.callJob('container.create', [payload], {
        context: `Creating sandbox "${name}"`,
        onProgress: op?.onProgress,
        signal: op?.signal,
      });
    } catch (err) {
      // Someone else's sandbox of that name is never removed; anything this job may have made is.
      if (!(err instanceof AlreadyExistsError)) await this.removeHalfMade(name);
      throw err;
    }
    try {
      const entry = await this.require(name);
      await this.addNic(entry, this.nicDevice());
      // Before the first start: the hook that reports the address and runs sshd (there is no exec API).
      await this.receive(entry, BOOT_HOOK_PATH, Buffer.from(bootHookScript()), { mode: 0o755 });
      if (options.start ?? true) await this.start(name, op);
    } catch (err) {
      await this.removeHalfMade(name);
      throw err;
    }
    return this.get(name);
  }

  async start(name: string, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    const entry = await this.require(name);
    if (entry.status.state === 'RUNNING') return;
    await this.ensureBootHook(entry);
    // What the hook reported last boot is stale until it reports again (it clears the directory first).
    await this.receive(entry, `${ADDRESS_DIR}/${STALE_MARKER}`, Buffer.from('\n'), {}).catch((e: unknown) =>
      this.log.warn(`truenas: could not mark the old address of "${name}": ${String(e)}`),
    );
    op?.onProgress?.({ description: `Starting "${name}"` });
    try {
      await this.client.call('container.start', [entry.id], { context: `Starting sandbox "${name}"` });
    } catch (err) {
      if (!(await this.happenedAnyway(err, name, (e) => e?.status.state === 'RUNNING'))) throw err;
    }
    this.watchAddress(name);
  }

  async stop(name: string, options?: StopOptions, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    const entry = await this.require(name);
    if (entry.status.state === 'STOPPED') return;
    try {
      await this.client.callJob('container.stop', [entry.id, stopOptions(options)], {
        context: `Stopping sandbox "${name}"`,
        onProgress: op?.onProgress,
        signal: op?.signal,
      });
    } catch (err) {
      if (!(await this.happenedAnyway(err, name, (e) => e?.status.state === 'STOPPED'))) throw err;
    }
  }

  /** 26 has no restart: stop (forced after the container's timeout), then start. */
  async restart(name: string, options?: StopOptions, op?: OperationOptions): Promise<void> {
    await this.stop(name, options, op);
    await this.start(name, op);
  }

  /**
   * Nothing may be left: BETA.3's container.delete removes the row first and then fails on a dataset with
   * snapshots (orphaning it), RC.1's `recursive` also destroys clones of its snapshots in other sandboxes. So
   * dependent clones are refused first, snapshots go first, and the dataset is checked afterwards.
   */
  async destroy(name: string, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    const entry = await this.require(name);
    const dataset = entry.dataset;
    await this.refuseDependentClones(name, dataset);
    if (entry.status.state !== 'STOPPED') {
      await this.client.callJob('container.stop', [entry.id, { force: true, force_after_timeout: true }], {
        context: `Stopping sandbox "${name}" to destroy it`,
        signal: op?.signal,
      });
    }
    const snaps = await this.snapshots.query([dataset], false, `Reading the checkpoints of "${name}"`);
    const rc1 = await this.deleteIsJob();
    if (snaps.length && !rc1) {
      const support = await this.supportFor(dataset);
      await this.snapshots.destroyAll(support, dataset, `Deleting the checkpoints of "${name}"`);
    }
    try {
      if (rc1) {
        await this.client.callJob('container.delete', [entry.id, { force: true, recursive: true }], {
          context: `Destroying sandbox "${name}"`,
          onProgress: op?.onProgress,
        });
      } else {
        await this.client.call('container.delete', [entry.id], { context: `Destroying sandbox "${name}"` });
      }
    } catch (err) {
      if (!(await this.happenedAnyway(err, name, (e) => e === undefined))) throw err;
    }
    this.addresses.delete(name);
    const left = await this.datasetExists(dataset);
    if (left) {
      throw new ServerError(
        `Sandbox "${name}" was removed but its dataset ${dataset} is still on the NAS; remove it under ` +
          'Datasets in the TrueNAS UI.',
      );
    }
  }

  // --- checkpoints -------------------------------------------------------------------------------------

  async listCheckpoints(name: string): Promise<Checkpoint[]> {
    return (await this.get(name)).checkpoints ?? [];
  }

  async createCheckpoint(name: string, label?: string): Promise<Checkpoint> {
    validateSandboxName(name);
    const chosen = label ?? defaultCheckpointLabel();
    validateCheckpointLabel(chosen);
    const entry = await this.require(name);
    const existing = await this.snapshots.query(
      [entry.dataset],
      false,
      `Reading the checkpoints of "${name}"`,
    );
    if (existing.some((s) => s.snapshot_name === chosen))
      throw new AlreadyExistsError(`Sandbox "${name}" already has a checkpoint named "${chosen}".`);
    const support = await this.supportFor(entry.dataset);
    await this.guarded(() =>
      this.snapshots.create(support, entry.dataset, chosen, `Creating checkpoint "${chosen}" of "${name}"`),
    );
    const after = await this.snapshots.query([entry.dataset], false, `Reading checkpoint "${chosen}"`);
    const made = checkpointsOf(name, after).find((c) => c.label === chosen);
    if (!made) throw new ServerError(`The server did not keep checkpoint "${chosen}" of "${name}".`);
    this.changes.fire({ kind: 'checkpoint', name });
    return made;
  }

  /** Stop, roll back past newer checkpoints (they go), start again if it was running. */
  async restoreCheckpoint(name: string, label: string, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    validateCheckpointLabel(label);
    const entry = await this.require(name);
    const snaps = await this.snapshots.query([entry.dataset], false, `Reading the checkpoints of "${name}"`);
    const target = snaps.find((s) => s.snapshot_name === label);
    if (!target) throw this.checkpointNotFound(name, label);
    await this.refuseRestorePastClones(name, label, entry.dataset, target.createtxg ?? 0, snaps);
    const support = await this.supportFor(entry.dataset);
    if (support.state === 'refused') throw new UnsupportedError(support.reason);
    const wasRunning = entry.status.state !== 'STOPPED';
    if (wasRunning) {
      op?.onProgress?.({ description: `Stopping "${name}"`, percent: 10 });
      await this.client.callJob('container.stop', [entry.id, { force: true, force_after_timeout: true }], {
        context: `Stopping sandbox "${name}" to restore "${label}"`,
        signal: op?.signal,
      });
    }
    op?.onProgress?.({ description: `Rolling back to "${label}"`, percent: 50 });
    try {
      await this.guarded(() =>
        this.snapshots.rollback(support, target.name, `Restoring checkpoint "${label}" of "${name}"`),
      );
    } finally {
      if (wasRunning) await this.start(name, op);
    }
    this.changes.fire({ kind: 'checkpoint', name });
  }

  async deleteCheckpoint(name: string, label: string): Promise<void> {
    validateSandboxName(name);
    validateCheckpointLabel(label);
    const entry = await this.require(name);
    const snaps = await this.snapshots.query([entry.dataset], false, `Reading the checkpoints of "${name}"`);
    const target = snaps.find((s) => s.snapshot_name === label);
    if (!target) throw this.checkpointNotFound(name, label);
    const clones = await this.clonesOf(entry.dataset, [target.name]);
    if (clones.length) {
      const names = clones.map((c) => `"${c}"`).join(', ');
      const problem = `Checkpoint "${label}" of "${name}" cannot be deleted: ${names} ${clones.length > 1 ? 'were' : 'was'} cloned from it. Destroy ${clones.length > 1 ? 'them' : 'that sandbox'} first.`;
      throw new ValidationError(problem, [{ field: 'label', message: problem }]);
    }
    const support = await this.supportFor(entry.dataset);
    await this.guarded(() =>
      this.snapshots.destroy(support, target.name, `Deleting checkpoint "${label}" of "${name}"`),
    );
    this.changes.fire({ kind: 'checkpoint', name });
  }

  // --- clone -------------------------------------------------------------------------------------------

  /**
   * A new container from the cached image (for its row), whose dataset is then replaced by a clone of the
   * snapshot (§4.4). Before its first start it gets a fresh machine-id, sshd limited to the key the caller
   * pins, and the source's NICs without their MAC (the middleware gives new ones). Left stopped.
   */
  async clone(source: CloneSource, newName: string, op?: OperationOptions): Promise<Sandbox> {
    validateSandboxName(source.sandbox);
    validateSandboxName(newName);
    if (source.checkpoint !== undefined) validateCheckpointLabel(source.checkpoint);
    if (source.sandbox === newName)
      throw new ValidationError(`A clone needs a new name, not "${newName}".`, [
        { field: 'name', message: 'The clone must have a different name.' },
      ]);
    const [src, existing] = await Promise.all([this.require(source.sandbox), this.find(newName)]);
    if (existing) throw new AlreadyExistsError(`A sandbox named "${newName}" already exists.`);
    const support = await this.supportFor(src.dataset);
    if (support.state === 'refused') throw new UnsupportedError(support.reason);
    const progress = (description: string, percent: number) => op?.onProgress?.({ description, percent });
    let label = source.checkpoint;
    let temporary = false;
    if (label !== undefined) {
      const snaps = await this.snapshots.query([src.dataset], false, `Reading checkpoint "${label}"`);
      if (!snaps.some((s) => s.snapshot_name === label)) throw this.checkpointNotFound(source.sandbox, label);
    } else {
      label = `${CLONE_SNAPSHOT_PREFIX}${newName}-${Date.now().toString(36)}`;
      if (checkpointLabelProblem(label)) throw new ServerError('Internal error: bad temporary label.');
      progress(`Taking a snapshot of "${source.sandbox}"`, 5);
      await this.snapshots.create(
        support,
        src.dataset,
        label,
        `Snapshotting "${source.sandbox}" for the clone`,
      );
      temporary = true;
    }
    const snapshot = `${src.dataset}@${label}`;
    const pool = poolOfDataset(src.dataset);
    let made = false;
    try {
      progress(`Creating "${newName}"`, 15);
      const image = await this.imageForClone(src);
      made = true;
      await this.client.callJob(
        'container.create',
        [
          {
            name: instanceName(newName),
            image,
            pool,
            description: src.description ?? '',
            autostart: src.autostart ?? true,
            ...(src.cpuset ? { cpuset: src.cpuset } : {}),
          },
        ],
        { context: `Creating sandbox "${newName}" for the clone`, signal: op?.signal },
      );
      const fresh = await this.require(newName);
      progress(`Replacing the root of "${newName}" with "${source.sandbox}@${label}"`, 40);
      await this.snapshots.replaceWithClone(
        support,
        snapshot,
        containerDataset(pool, instanceName(newName)),
        `Cloning "${source.sandbox}@${label}"`,
      );
      progress(`Giving "${newName}" its own identity`, 70);
      await this.receive(fresh, '/etc/machine-id', Buffer.from(machineIdText(randomBytes(16))), {
        mode: 0o444,
      });
      await this.receive(fresh, SSHD_HOSTKEY_DROPIN, Buffer.from(SSHD_HOSTKEY_DROPIN_TEXT), { mode: 0o644 });
      await this.receive(fresh, `${ADDRESS_DIR}/${STALE_MARKER}`, Buffer.from('\n'), {});
      for (const device of src.devices ?? []) {
        const { dtype } = device.attributes;
        if (dtype !== 'NIC' && dtype !== 'FILESYSTEM') continue;
        const attributes: Record<string, unknown> = { ...device.attributes };
        delete attributes.mac;
        await this.client.call('container.device.create', [{ container: fresh.id, attributes }], {
          context: `Adding a ${dtype} device to "${newName}"`,
        });
      }
    } catch (err) {
      if (made) await this.removeHalfMade(newName);
      if (temporary) await this.dropTemporary(support, snapshot);
      throw err;
    }
    // A clone pins its origin: the temporary snapshot goes with the clone (deferred destroy), hidden meanwhile.
    if (temporary) await this.dropTemporary(support, snapshot);
    progress('Done', 100);
    return this.get(newName);
  }

  // --- files -------------------------------------------------------------------------------------------

  /**
   * file_receive into the container's root filesystem, running or not. 26 opens every component without
   * following links (RESOLVE_NO_SYMLINKS), so a link planted inside makes the write fail (reported as such)
   * instead of leading it onto the NAS. Missing directories are made (root-owned), except a user's home the
   * image has not got: NotFoundError, as on the other backends.
   */
  async writeFile(
    name: string,
    path: string,
    content: Buffer,
    options: WriteFileOptions = {},
  ): Promise<void> {
    validateWriteTarget(name, path);
    const entry = await this.require(name);
    // file_receive makes missing directories root-owned: never a home the image's user does not have yet.
    const home = /^\/home\/[^/]+/.exec(path)?.[0];
    if (home) {
      const host = rootfsPath(poolOfDataset(entry.dataset), entry.name) + home;
      const st = await this.client
        .call<{ type: string }>('filesystem.stat', [host], {
          context: `Checking ${home} in "${name}"`,
          idempotent: true,
        })
        .catch((err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)));
      if (!st) throw new NotFoundError(`Sandbox "${name}" has no home directory ${home}.`);
    }
    await this.receive(entry, path, content, options);
  }

  // --- network -----------------------------------------------------------------------------------------

  /** With no NIC set, the container gets one on the automatic NAT'd bridge (§7): reached through the NAS. */
  async networkPlan(): Promise<NetworkPlan> {
    const nic = this.nicDevice();
    if (nic) {
      const bridged = this.options.nic?.nicType !== 'MACVLAN';
      return {
        kind: bridged ? 'bridged' : 'macvlan',
        parent: this.options.nic?.parent,
        nic: this.options.nic,
        reachableFromClient: bridged ? 'unknown' : false,
        source: 'settings',
        summary: bridged
          ? `bridged on ${this.options.nic?.parent}`
          : `MACVLAN on ${this.options.nic?.parent}`,
        explanation: `The server's NIC setting puts new sandboxes ${bridged ? 'on the bridge' : 'in MACVLAN on'} ${this.options.nic?.parent}.`,
      };
    }
    const lxc = await this.lxc();
    const bridge = lxc.bridge ?? 'truenasbr0';
    return {
      kind: lxc.bridge ? 'bridged' : 'automatic-nat-bridge',
      parent: bridge,
      reachableFromClient: lxc.bridge ? 'unknown' : false,
      source: 'server-default',
      summary: lxc.bridge ? `bridged on ${bridge}` : `the automatic NAT'd bridge ${bridge}`,
      explanation: lxc.bridge
        ? `TrueNAS puts containers on ${bridge} (lxc.config).`
        : `TrueNAS puts containers on its NAT'd bridge ${bridge} (${lxc.v4 ?? 'subnet unknown'}), reachable from ` +
          'the NAS only: set up the NAS as jump host to reach them over SSH.',
      ...(lxc.bridge || !lxc.v4 ? {} : { natSubnet: lxc.v4 }),
    };
  }

  dispose(): void {
    this.disposed = true;
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    this.changes.dispose();
    this.client.dispose();
  }

  // --- helpers -----------------------------------------------------------------------------------------

  private async query(filters: unknown[], context: string, options?: object): Promise<ContainerEntry[]> {
    const rows = await this.client.call<ContainerEntry[]>(
      'container.query',
      options ? [filters, options] : [filters],
      {
        context,
        expect: CONTAINER_ROWS,
      },
    );
    for (const r of rows) this.names.set(r.id, r.name);
    return rows.filter(isOurs);
  }

  private async find(name: string): Promise<ContainerEntry | undefined> {
    return (await this.query([['name', '=', instanceName(name)]], `Looking up sandbox "${name}"`))[0];
  }

  private async require(name: string): Promise<ContainerEntry> {
    const entry = await this.find(name);
    if (!entry) throw new NotFoundError(`Sandbox "${name}" does not exist on ${this.client.host}.`);
    return entry;
  }

  private checkpointNotFound(name: string, label: string): NotFoundError {
    return new NotFoundError(`Sandbox "${name}" has no checkpoint named "${label}".`);
  }

  private async toSandboxes(rows: ContainerEntry[]): Promise<Sandbox[]> {
    const paths = [...new Set(rows.map((r) => r.dataset))];
    // A snapshot query that fails does not hide the sandboxes: their checkpoint rows then say why.
    let snapshotsFailed = false;
    const [snaps, addresses] = await Promise.all([
      this.snapshots.query(paths, false, 'Listing checkpoints').catch((err: unknown) => {
        if (err instanceof ConnectionError || err instanceof TimeoutError) throw err;
        this.log.warn(`truenas: could not list checkpoints on ${this.client.host}: ${String(err)}`);
        snapshotsFailed = true;
        return [];
      }),
      Promise.all(rows.map((r) => this.address(r))),
    ]);
    if (this.support.state === 'unknown' && rows.length) await this.supportFor(rows[0].dataset);
    const unavailable = this.support.state === 'refused' ? this.support.reason : undefined;
    const grouped = byDataset(snaps);
    return rows
      .map((r, i) =>
        containerToSandbox(r, {
          address: addresses[i],
          checkpoints: unavailable
            ? []
            : snapshotsFailed
              ? undefined
              : checkpointsOf(shortName(r.name), grouped.get(r.dataset) ?? []),
          checkpointsUnavailable: unavailable,
        }),
      )
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The reported address of a running container: cached per boot, read while the boot has none yet. */
  private async address(entry: ContainerEntry): Promise<ReportedAddress | undefined> {
    if (entry.status.state !== 'RUNNING') return undefined;
    const key = `${entry.name}/${entry.status.pid ?? '-'}`;
    const cached = this.addresses.get(key);
    if (cached) return cached;
    const dir = rootfsPath(poolOfDataset(entry.dataset), entry.name) + ADDRESS_DIR;
    try {
      const rows = await this.client.call<{ name: string }[]>('filesystem.listdir', [dir], {
        context: `Reading the address of "${shortName(entry.name)}"`,
        idempotent: true,
      });
      const found = addressFromListing(rows.map((r) => String(r.name)));
      if (found && entry.status.pid) this.addresses.set(key, found);
      return found;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      this.log.warn(`truenas: could not read the address of ${entry.name}: ${String(err)}`);
      return undefined;
    }
  }

  /**
   * A sandbox we did not create (migrated from 25.10, made elsewhere) gets the boot hook before it starts, so its
   * address shows too. An /etc/rc.local of someone else's (another size than ours) is left alone: the address of
   * that sandbox is then not known.
   */
  private async ensureBootHook(entry: ContainerEntry): Promise<void> {
    const name = shortName(entry.name);
    const hook = Buffer.from(bootHookScript());
    const host = rootfsPath(poolOfDataset(entry.dataset), entry.name) + BOOT_HOOK_PATH;
    try {
      const st = await this.client
        .call<{ type: string; size?: number }>('filesystem.stat', [host], {
          context: `Checking the boot hook of "${name}"`,
          idempotent: true,
        })
        .catch((err: unknown) => (err instanceof NotFoundError ? undefined : Promise.reject(err)));
      if (st && st.size === hook.length) return;
      if (st) {
        this.log.warn(
          `truenas: "${name}" has its own ${BOOT_HOOK_PATH}; Pixels leaves it, so the sandbox's address is not shown`,
        );
        return;
      }
      await this.receive(entry, BOOT_HOOK_PATH, hook, { mode: 0o755 });
    } catch (err) {
      this.log.warn(`truenas: could not put the boot hook into "${name}": ${String(err)}`);
    }
  }

  /** After a start: the tree learns the address as soon as the boot hook reports it. */
  private watchAddress(name: string): void {
    if (this.watching.has(name)) return;
    this.watching.add(name);
    const deadline = Date.now() + ADDRESS_WATCH_MS;
    const tick = async (): Promise<void> => {
      if (this.disposed) return;
      const entry = await this.find(name).catch(() => undefined);
      if (entry?.status.state === 'RUNNING' && (await this.address(entry))) {
        this.changes.fire({ kind: 'sandbox', name });
        return;
      }
      if (!entry || entry.status.state !== 'RUNNING' || Date.now() > deadline) return;
      await new Promise((r) => setTimeout(r, 1000).unref());
      return tick();
    };
    void tick().finally(() => this.watching.delete(name));
  }

  /** Checkpoint support, probed once on a container dataset (nothing is changed by the probe). */
  private async supportFor(dataset: string): Promise<SnapshotSupport> {
    if (this.support.state !== 'unknown') return this.support;
    const version = (await this.client.version()).display;
    const found = await this.snapshots.probe(dataset, version);
    if (found) {
      this.support = found;
      if (found.state === 'refused' || found.state === 'host-job') this.log.info(`truenas: ${found.reason}`);
    }
    return found ?? this.support;
  }

  /** A write the guard refused although the probe allowed it: remember, and say why. */
  private async guarded(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (!isProtectedPathRefusal(err)) throw err;
      this.support = this.snapshots.refused((await this.client.version()).display);
      this.changes.fire({ kind: 'checkpoint' });
      throw new UnsupportedError(this.support.state === 'refused' ? this.support.reason : String(err), {
        cause: err,
      });
    }
  }

  /** RC.1 made container.delete a job with {force, recursive}; BETA builds take only the id (§1.4). */
  private async deleteIsJob(): Promise<boolean> {
    const v = await this.client.version();
    return !/-BETA/i.test(v.display);
  }

  /** Container datasets cloned from one of `origins` (or from any snapshot of `dataset`), as short names. */
  private async clonesOf(dataset: string, origins?: string[]): Promise<string[]> {
    const parent = dataset.slice(0, dataset.lastIndexOf('/'));
    const rows = await this.client.call<
      { name: string; properties?: { origin?: { value?: unknown } } | null }[]
    >('zfs.resource.query', [{ paths: [parent], properties: ['origin'], get_children: true }], {
      context: 'Reading which sandboxes were cloned from which',
      idempotent: true,
    });
    return rows
      .filter((r) => {
        const origin = String(r.properties?.origin?.value ?? '');
        return origins ? origins.includes(origin) : origin.startsWith(`${dataset}@`);
      })
      .map((r) => shortName(r.name.slice(r.name.lastIndexOf('/') + 1)));
  }

  private async refuseDependentClones(name: string, dataset: string): Promise<void> {
    const clones = await this.clonesOf(dataset);
    if (!clones.length) return;
    const list = clones.map((c) => `"${c}"`).join(', ');
    const one = clones.length === 1;
    throw new ValidationError(
      `Cannot destroy "${name}": ${list} ${one ? 'was' : 'were'} cloned from it and ${one ? 'depends' : 'depend'} on ` +
        `its data (TrueNAS 26 would destroy ${one ? 'it' : 'them'} too). Destroy ${one ? 'it' : 'them'} first. Nothing was changed.`,
      [{ field: 'name', message: `${list} depend on it.` }],
    );
  }

  private async refuseRestorePastClones(
    name: string,
    label: string,
    dataset: string,
    txg: number,
    snaps: { name: string; createtxg?: number }[],
  ): Promise<void> {
    const newer = snaps.filter((s) => (s.createtxg ?? 0) > txg).map((s) => s.name);
    if (!newer.length) return;
    const clones = await this.clonesOf(dataset, newer);
    if (!clones.length) return;
    const one = clones.length === 1;
    const names = clones.map((c) => `"${c}"`).join(', ');
    throw new DependentClonesError(
      `Cannot restore "${name}" to "${label}": ${one ? 'sandbox' : 'sandboxes'} ${names} ${one ? 'was' : 'were'} cloned ` +
        `from a later state of "${name}", and rolling back would destroy ${one ? 'it' : 'them'}. Nothing was changed. ` +
        `Destroy ${one ? 'it' : 'them'} first, or clone "${label}" into a new sandbox instead.`,
      name,
      label,
      clones,
      [],
    );
  }

  private async datasetExists(dataset: string): Promise<boolean> {
    try {
      const rows = await this.client.call<unknown[]>(
        'zfs.resource.query',
        [{ paths: [dataset], properties: null }],
        {
          context: 'Checking that nothing was left',
          idempotent: true,
        },
      );
      return rows.length > 0;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  private async lxc(): Promise<{ pool: string | null; bridge: string | null; v4: string | null }> {
    if (!this.lxcPromise) {
      this.lxcPromise = this.client
        .call<{ preferred_pool: string | null; bridge: string | null; v4_network: string | null }>(
          'lxc.config',
          [],
          {
            context: 'Reading the container settings',
            expect: objectWith({ preferred_pool: 'string?', bridge: 'string?', v4_network: 'string?' }),
          },
        )
        .then((c) => ({ pool: c.preferred_pool, bridge: c.bridge, v4: c.v4_network }));
      this.lxcPromise.catch(() => (this.lxcPromise = undefined));
    }
    return this.lxcPromise;
  }

  private async pool(): Promise<string> {
    const { pool } = await this.lxc();
    if (!pool)
      throw new ServerError(
        `Containers are not set up on ${this.client.host} (lxc.config has no preferred pool): choose a pool under ` +
          'Containers → Settings in the TrueNAS UI.',
      );
    return pool;
  }

  private registry(): Promise<RegistryImage[]> {
    return this.client.call<RegistryImage[]>('container.image.query_registry', [], {
      context: 'Reading the image registry',
      expect: rowsWith({ name: 'string', versions: 'array' }),
      idempotent: true,
    });
  }

  /** The source's image if we recorded it (description `name@version`), else the registry's Debian. */
  private async imageForClone(src: ContainerEntry): Promise<{ name: string; version: string }> {
    const registry = await this.registry();
    const recorded =
      src.description && /^[\w.:-]+@[\w.:-]+$/.test(src.description) ? src.description : undefined;
    if (recorded) {
      try {
        return resolveImage(recorded, registry);
      } catch {
        // no longer offered: any image will do, its files are replaced
      }
    }
    return resolveImage(
      registry.find((p) => p.name.endsWith(':default'))?.name ?? 'debian/bookworm',
      registry,
    );
  }

  /** The NIC device the settings ask for (none: the automatic bridge, added by the middleware). */
  private nicDevice(): Record<string, unknown> | undefined {
    const nic = this.options.nic;
    if (!nic?.parent) return undefined;
    return { dtype: 'NIC', type: 'VIRTIO', nic_attach: nic.parent };
  }

  private async addNic(
    entry: ContainerEntry,
    attributes: Record<string, unknown> | undefined,
  ): Promise<void> {
    if (!attributes) return;
    await this.client.call('container.device.create', [{ container: entry.id, attributes }], {
      context: `Adding the NIC of "${shortName(entry.name)}"`,
    });
  }

  /** file_receive in pieces under the 2 MiB message limit; ELOOP becomes a clear refusal. */
  private async receive(
    entry: ContainerEntry,
    path: string,
    content: Buffer,
    o: WriteFileOptions,
  ): Promise<void> {
    const name = shortName(entry.name);
    const target = rootfsPath(poolOfDataset(entry.dataset), entry.name) + path;
    try {
      await receiveFile(this.client, target, content, o, `Writing ${path} into "${name}"`);
    } catch (err) {
      if (!isSymlinkRefusal(err)) throw err;
      throw new SecurityError(
        `Refusing to write ${path} into "${name}": a directory or file on the way is a symbolic link inside the ` +
          'sandbox, and TrueNAS 26 will not follow it (ELOOP). Nothing was written there; write it over SSH.',
        { cause: err },
      );
    }
  }

  private async dropTemporary(support: SnapshotSupport, snapshot: string): Promise<void> {
    await this.snapshots
      .destroy(support, snapshot, 'Removing the temporary snapshot', true)
      .catch((e: unknown) => this.log.warn(`truenas: could not remove ${snapshot}: ${String(e)}`));
  }

  private async removeHalfMade(name: string): Promise<void> {
    try {
      const entry = await this.find(name);
      if (!entry) return;
      if (await this.deleteIsJob())
        await this.client.callJob('container.delete', [entry.id, { force: true, recursive: false }], {
          context: `Removing the half-made sandbox "${name}"`,
        });
      else {
        if (entry.status.state !== 'STOPPED')
          await this.client.callJob(
            'container.stop',
            [entry.id, { force: true, force_after_timeout: true }],
            {
              context: `Stopping the half-made sandbox "${name}"`,
            },
          );
        await this.client.call('container.delete', [entry.id], {
          context: `Removing the half-made sandbox "${name}"`,
        });
      }
    } catch (err) {
      this.log.warn(`truenas: could not remove the half-made sandbox "${name}": ${String(err)}`);
    }
  }

  /** After a lost reply, the container as it is now decides whether the operation happened. */
  private async happenedAnyway(
    err: unknown,
    name: string,
    done: (entry: ContainerEntry | undefined) => boolean,
  ): Promise<boolean> {
    const unknownOutcome =
      (err instanceof ConnectionError || err instanceof TimeoutError) &&
      /outcome .*unknown/.test(err.message);
    if (!unknownOutcome) return false;
    try {
      return done(await this.find(name));
    } catch {
      return false;
    }
  }

  private async startEvents(): Promise<void> {
    this.unsubscribers.push(
      this.client.onUpdate((u) => this.forward(u)),
      this.client.onConnectionChange(() => this.changes.fire({ kind: 'connection' })),
    );
    await this.client.subscribe('container.query');
  }

  /** container.query ADDED/CHANGED carry the entry; REMOVED only the id (named from what we listed). */
  private forward(u: CollectionUpdate): void {
    if (u.collection !== 'container.query') return;
    const fromFields = typeof u.fields?.name === 'string' ? u.fields.name : undefined;
    const id = typeof u.id === 'number' ? u.id : undefined;
    const instance = fromFields ?? (id !== undefined ? this.names.get(id) : undefined);
    if (instance && !instance.startsWith(INSTANCE_PREFIX)) return;
    if (instance && id !== undefined) this.names.set(id, instance);
    const name = instance ? shortName(instance) : undefined;
    const state = (u.fields?.status as { state?: unknown } | undefined)?.state;
    if (name && state === 'RUNNING') this.watchAddress(name);
    this.changes.fire({ kind: 'sandbox', name });
  }
}
