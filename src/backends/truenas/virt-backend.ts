// The Backend for TrueNAS 25.04 / 25.10 (Incus under virt.*, checkpoints as ZFS snapshots of the instance
// dataset). Every operation validates its input first, and cleans up after itself when it fails half-way.
import type { Backend, BackendCapabilities, BackendChange, ServerInfo } from '../../core/backend';
import { Emitter } from '../../core/disposable';
import type { Disposable } from '../../core/disposable';
import {
  AlreadyExistsError,
  CancelledError,
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
  memoryProblem,
  type ServerLimits,
  validateCheckpointLabel,
  validateSandboxName,
} from '../../core/names';
import {
  Checkpoint,
  CloneSource,
  CreateOptions,
  INSTANCE_PREFIX,
  instanceName,
  OperationOptions,
  Sandbox,
  SandboxStatus,
  shortName,
  StopOptions,
  WriteFileOptions,
} from '../../core/sandbox';
import type { NetworkPlan, NicSetting } from '../../core/network-plan';
import type { CollectionUpdate, TrueNASClient } from './client';
import {
  AUTOMATIC_BRIDGE,
  chooseAutomatically,
  planFromSetting,
  type InterfaceEntry,
  type NetworkFacts,
} from './nic-choice';
import {
  createTxg,
  creationDate,
  datasetOfId,
  isDeferredDestroy,
  type ListedSnapshot,
  SnapshotApi,
  SnapshotEntry,
  snapshotClones,
  sortNewestFirst,
  toCheckpoint,
} from './snapshots';
import { receiveFile, validateWriteTarget } from './file-receive';
import { apiFamily, isVirtFamily, type VirtFamily } from './version';
import { objectWith, rowsWith } from '../../core/reply-shape';

const MiB = 1024 * 1024;
const DEFAULT_STOP_TIMEOUT_SEC = 30;
/** The fields of virt.instance.query rows that toSandbox and the operations read. */
const INSTANCE_ROWS = rowsWith({
  name: 'string',
  status: 'string',
  cpu: 'string?',
  memory: 'number?',
  autostart: 'boolean?',
  aliases: 'array?',
  image: 'object?',
});
/**
 * What a list reads of an instance (toSandbox): virt.instance.query runs filter_list, which builds each row from
 * these names only (dotted names nest). A server that ignores `select` sends whole rows, read the same way.
 */
const INSTANCE_LIST_FIELDS = [
  'name',
  'status',
  'cpu',
  'memory',
  'aliases',
  'image.description',
  'image.os',
  'image.release',
];
/** How long after its creation a sandbox counts as untouched (only the image's own start has run in it). */
const FRESH_FOR_MS = 15 * 60_000;

/** Tries of a check or clean-up after a lost reply while the server may be restarting (see whileAway). */
const AWAY_ATTEMPTS = 5;

/** A lost reply or a timeout of a call that changes something: the server may or may not have done it. */
function isUnknownOutcome(err: unknown): boolean {
  return (
    (err instanceof ConnectionError || err instanceof TimeoutError) && /outcome .*unknown/.test(err.message)
  );
}

export type NicConfig = NicSetting;

interface VirtGlobalConfig {
  pool: string | null;
  dataset: string | null;
  bridge?: string | null;
  state: string | null;
}

/** How long a network plan is reused (the create flow asks, then create uses it). */
const PLAN_TTL_MS = 30_000;

export interface VirtInstance {
  id?: string;
  name: string;
  status: string;
  cpu?: string | null;
  memory?: number | null;
  autostart?: boolean;
  aliases?: { type: string; address: string; netmask?: number | null }[] | null;
  image?: { description?: string | null; os?: string | null; release?: string | null } | null;
}

export function mapStatus(status: string | undefined): SandboxStatus {
  switch ((status ?? '').toUpperCase()) {
    case 'RUNNING':
      return 'running';
    case 'STOPPED':
      return 'stopped';
    case 'STARTING':
      return 'starting';
    case 'STOPPING':
    case 'ABORTING':
      return 'stopping';
    case 'FROZEN':
    case 'FREEZING':
      return 'frozen';
    case 'ERROR':
      return 'error';
    default:
      return 'unknown';
  }
}

export function toSandbox(inst: VirtInstance, checkpoints?: Checkpoint[]): Sandbox {
  const aliases = inst.aliases ?? [];
  const v4 = aliases.find((a) => a.type === 'INET' || a.type === 'ipv4');
  const v6 = aliases.find((a) => a.type === 'INET6' || a.type === 'ipv6');
  const img = inst.image;
  const image = img?.description || [img?.os, img?.release].filter(Boolean).join(' ') || undefined;
  return {
    name: shortName(inst.name),
    instanceName: inst.name,
    status: mapStatus(inst.status),
    ipv4: v4?.address,
    ipv6: v6?.address,
    image,
    cpu: inst.cpu ?? undefined,
    memoryMiB: typeof inst.memory === 'number' ? Math.round(inst.memory / MiB) : undefined,
    checkpoints,
  };
}

export class TrueNASVirtBackend implements Backend {
  readonly kind = 'truenas' as const;
  private readonly changes = new Emitter<BackendChange>();
  private familyPromise?: Promise<VirtFamily>;
  private globalPromise?: Promise<{ pool: string; dataset: string; bridge: string | null }>;
  private planCache?: { at: number; plan: Promise<NetworkPlan> };
  private networkIgnoredLogged = false;
  private snapshotsApi?: SnapshotApi;
  private eventsStarted = false;
  private unsubscribers: (() => void)[] = [];
  /**
   * Sandboxes this backend created from an image and that have not been restarted, stopped, restored or handed
   * out since (name -> creation time): nothing but the image's own start has run in them, so nothing inside
   * can have planted a symlink for file_receive to follow. Only these are written through the NAS's file API.
   */
  private readonly fresh = new Map<string, number>();

  constructor(
    readonly serverId: string,
    private readonly client: TrueNASClient,
    private readonly nic: NicConfig | undefined,
    private readonly log: Logger = silentLogger,
  ) {}

  readonly onDidChange = (listener: (change: BackendChange) => void): Disposable => {
    const d = this.changes.event(listener);
    if (!this.eventsStarted) {
      this.eventsStarted = true;
      this.startEvents().catch((e: unknown) =>
        this.log.warn(`truenas: could not subscribe to changes on ${this.client.host}: ${String(e)}`),
      );
    }
    return d;
  };

  async info(): Promise<ServerInfo> {
    const version = await this.client.version();
    await this.family();
    return { version: `TrueNAS ${version.display}` };
  }

  /**
   * system.info's `cores` and `physmem`: what virt.instance.create checks a request against ("Cannot reserve
   * more than system cores" / "… physical memory").
   */
  async limits(): Promise<ServerLimits> {
    const info = await this.client.call<{ cores?: number; physmem?: number }>('system.info', []);
    return {
      cpus: typeof info.cores === 'number' && info.cores > 0 ? info.cores : undefined,
      memoryMiB: typeof info.physmem === 'number' ? Math.floor(info.physmem / 1024 ** 2) : undefined,
    };
  }

  async capabilities(): Promise<BackendCapabilities> {
    return {
      restoreAnyCheckpoint: true,
      cloneFromCheckpoint: true,
      cloneFromCurrentState: true,
      writeFiles: true,
      writesResolveInSandbox: false,
      exec: false,
      cancel: true,
      clusterMembers: false,
      events: true,
    };
  }

  // --- sandboxes ---------------------------------------------------------------------------------------

  /** Two calls whatever the number of sandboxes: one instance query, one snapshot query, each for what it shows. */
  async list(): Promise<Sandbox[]> {
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    const prefix = `${g.dataset}/containers/${INSTANCE_PREFIX}`;
    const [instances, snaps] = await Promise.all([
      this.client.call<VirtInstance[]>(
        'virt.instance.query',
        [[['name', '^', INSTANCE_PREFIX]], { select: INSTANCE_LIST_FIELDS }],
        { context: 'Listing sandboxes', expect: INSTANCE_ROWS },
      ),
      snapshots.list([['dataset', '^', prefix]], 'Listing checkpoints'),
    ]);
    const byDataset = new Map<string, ListedSnapshot[]>();
    for (const s of snaps) {
      if (isDeferredDestroy(s)) continue;
      const dataset = datasetOfId(s.id);
      const list = byDataset.get(dataset);
      if (list) list.push(s);
      else byDataset.set(dataset, [s]);
    }
    return instances
      .filter((i) => i.name.startsWith(INSTANCE_PREFIX))
      .map((inst) => {
        const short = shortName(inst.name);
        const own = byDataset.get(this.datasetOf(g, short)) ?? [];
        return toSandbox(inst, sortNewestFirst(own.map((s) => toCheckpoint(short, s))));
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<Sandbox> {
    validateSandboxName(name);
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    const [inst, snaps] = await Promise.all([
      this.findInstance(name),
      snapshots.query([['dataset', '=', this.datasetOf(g, name)]], `Listing checkpoints of "${name}"`),
    ]);
    if (!inst) throw this.notFound(name);
    const cps = snaps.filter((s) => !isDeferredDestroy(s)).map((s) => toCheckpoint(name, s));
    return toSandbox(inst, sortNewestFirst(cps));
  }

  async create(options: CreateOptions, op?: OperationOptions): Promise<Sandbox> {
    validateSandboxName(options.name);
    const problems = [];
    if (!options.image || !options.image.trim())
      problems.push({ field: 'image', message: 'An image is required.' });
    if (options.memoryMiB !== undefined) {
      const p = memoryProblem(options.memoryMiB);
      if (p) problems.push({ field: 'memory', message: p });
    }
    if (options.cpu !== undefined) {
      const p = cpuProblem(options.cpu);
      if (p) problems.push({ field: 'cpu', message: p });
    }
    if (options.environment) {
      for (const [k, v] of Object.entries(options.environment)) {
        if (!/^\w[\w/]*$/.test(k))
          problems.push({ field: 'environment', message: `"${k}" is not a valid variable name.` });
        else if (!v.trim())
          problems.push({ field: 'environment', message: `The value of ${k} cannot be blank.` });
      }
    }
    if (problems.length) {
      throw new ValidationError(
        `Cannot create "${options.name}": ${problems.map((p) => p.message).join(' ')}`,
        problems,
      );
    }
    await this.family();
    const name = options.name;
    const payload = this.createPayload(name, options.image.trim(), {
      cpu: options.cpu,
      memoryMiB: options.memoryMiB,
      environment: options.environment,
      autostart: options.start ?? true,
      nic: options.nic ?? (await this.plannedNic()),
    });
    try {
      await this.client.callJob('virt.instance.create', [payload], {
        context: `Creating sandbox "${name}"`,
        onProgress: op?.onProgress,
        signal: op?.signal,
      });
    } catch (err) {
      if (err instanceof CancelledError) {
        await this.removeHalfMade(name);
        throw err;
      }
      if (!(await this.happenedAnyway(err, name, (inst) => inst !== undefined))) throw err;
    }
    this.fresh.set(name, Date.now());
    return this.get(name);
  }

  async start(name: string, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    const inst = await this.requireInstance(name);
    if (inst.status === 'RUNNING') return;
    try {
      await this.client.callJob('virt.instance.start', [instanceName(name)], {
        context: `Starting sandbox "${name}"`,
        onProgress: op?.onProgress,
        signal: op?.signal,
      });
    } catch (err) {
      if (!(await this.happenedAnyway(err, name, (i) => i?.status === 'RUNNING'))) throw err;
    }
  }

  async stop(name: string, options?: StopOptions, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    this.fresh.delete(name);
    const inst = await this.requireInstance(name);
    if (inst.status === 'STOPPED') return;
    try {
      await this.client.callJob('virt.instance.stop', [instanceName(name), this.stopArgs(options)], {
        context: `Stopping sandbox "${name}"`,
        onProgress: op?.onProgress,
        signal: op?.signal,
      });
    } catch (err) {
      if (!(await this.happenedAnyway(err, name, (i) => i?.status === 'STOPPED'))) throw err;
    }
  }

  async restart(name: string, options?: StopOptions, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    // After the restart that hands it over (keys in, sshd serving the pinned key) it is no longer untouched.
    this.fresh.delete(name);
    const inst = await this.requireInstance(name);
    if (inst.status === 'STOPPED') return this.start(name, op);
    await this.client.callJob('virt.instance.restart', [instanceName(name), this.stopArgs(options)], {
      context: `Restarting sandbox "${name}"`,
      onProgress: op?.onProgress,
      signal: op?.signal,
    });
  }

  /** Deletes the instance; its dataset and snapshots go with it (Incus keeps a dataset clones depend on). */
  async destroy(name: string, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    this.fresh.delete(name);
    await this.requireInstance(name);
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    try {
      await this.client.callJob('virt.instance.delete', [instanceName(name)], {
        context: `Destroying sandbox "${name}"`,
        onProgress: op?.onProgress,
        signal: op?.signal,
      });
    } catch (err) {
      if (!(await this.happenedAnyway(err, name, (i) => i === undefined))) throw err;
    }
    // Belt and braces: nothing of it may stay listed under its name.
    const left = await snapshots.query(
      [['dataset', '=', this.datasetOf(g, name)]],
      `Checking that "${name}" left no checkpoints`,
    );
    for (const s of left) {
      if (snapshotClones(s).length === 0)
        await snapshots.delete(s.id, `Deleting leftover checkpoint ${s.id}`, true);
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
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    await this.requireInstance(name);
    const dataset = this.datasetOf(g, name);
    const existing = await snapshots.query(
      [['id', '=', `${dataset}@${chosen}`]],
      `Checking checkpoint "${chosen}"`,
    );
    if (existing.length) {
      throw new AlreadyExistsError(`Sandbox "${name}" already has a checkpoint named "${chosen}".`);
    }
    try {
      await snapshots.create(dataset, chosen, `Creating checkpoint "${chosen}" of "${name}"`);
    } catch (err) {
      // The label was free before: if it exists now, the lost reply was ours and the checkpoint was made.
      if (!isUnknownOutcome(err)) throw err;
      const made = await this.whileAway(() =>
        snapshots.query([['id', '=', `${dataset}@${chosen}`]], `Checking checkpoint "${chosen}"`),
      ).catch(() => undefined);
      if (!made?.length) throw err;
      this.log.info(`truenas: checkpoint "${chosen}" of "${name}" was made although its reply was lost`);
    }
    const [entry] = await snapshots.query(
      [['id', '=', `${dataset}@${chosen}`]],
      `Reading checkpoint "${chosen}"`,
    );
    if (!entry) throw new ServerError(`The server did not keep checkpoint "${chosen}" of "${name}".`);
    return toCheckpoint(name, entry);
  }

  /** Stops the sandbox if needed, rolls back past newer checkpoints (they are destroyed), starts it again. */
  async restoreCheckpoint(name: string, label: string, op?: OperationOptions): Promise<void> {
    validateSandboxName(name);
    validateCheckpointLabel(label);
    this.fresh.delete(name);
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    const inst = await this.requireInstance(name);
    const dataset = this.datasetOf(g, name);
    const id = `${dataset}@${label}`;
    // Every snapshot of the dataset, the hidden ones of clones from the current state (defer_destroy) included:
    // a clone of any snapshot newer than the target would have to go with the rollback, so ZFS refuses it
    // ("clones of previous snapshots exist"). Find that out before anything is stopped.
    const all = await snapshots.query([['dataset', '=', dataset]], `Reading the checkpoints of "${name}"`);
    const entry = all.find((s) => s.id === id);
    if (!entry || isDeferredDestroy(entry)) throw this.checkpointNotFound(name, label);
    this.refuseRestorePastClones(g, name, label, entry, all);
    const wasRunning = inst.status === 'RUNNING';
    const report = (description: string, percent: number) => op?.onProgress?.({ description, percent });
    if (wasRunning) {
      report(`Stopping "${name}"`, 10);
      // Its running state is about to be thrown away, so there is nothing to shut down cleanly for.
      await this.client.callJob('virt.instance.stop', [instanceName(name), { timeout: 10, force: true }], {
        context: `Stopping sandbox "${name}" to restore "${label}"`,
        signal: op?.signal,
      });
    }
    report(`Rolling back to "${label}"`, 50);
    try {
      await this.rollbackOnce(snapshots, id, `Restoring checkpoint "${label}" of "${name}"`);
    } catch (err) {
      // Leave the sandbox as we found it, and report the rollback's error.
      if (wasRunning) await this.startQuietly(name);
      throw err;
    }
    if (wasRunning) {
      report(`Starting "${name}"`, 80);
      await this.client.callJob('virt.instance.start', [instanceName(name)], {
        context: `Starting sandbox "${name}" after restoring "${label}"`,
      });
    }
  }

  /**
   * A rollback whose reply was lost is sent again: rolling back to a snapshot that is already the newest (the
   * lost one went through) changes nothing, so the second answer tells the outcome.
   */
  private async rollbackOnce(snapshots: SnapshotApi, id: string, context: string): Promise<void> {
    try {
      await snapshots.rollback(id, context);
    } catch (err) {
      if (!isUnknownOutcome(err)) throw err;
      this.log.info(`truenas: the reply to the rollback to ${id} was lost; rolling back again`);
      await this.whileAway(() => snapshots.rollback(id, context));
    }
  }

  /** Throws DependentClonesError when a snapshot newer than `target` has clones (a rollback would destroy them). */
  private refuseRestorePastClones(
    g: { dataset: string },
    name: string,
    label: string,
    target: SnapshotEntry,
    all: SnapshotEntry[],
  ): void {
    const txg = createTxg(target);
    const when = creationDate(target)?.getTime();
    const isNewer = (s: SnapshotEntry): boolean => {
      if (s.id === target.id) return false;
      const t = createTxg(s);
      if (txg !== undefined && t !== undefined) return t > txg;
      const c = creationDate(s)?.getTime();
      return when !== undefined && c !== undefined && c > when;
    };
    const clones = [...new Set(all.filter(isNewer).flatMap(snapshotClones))];
    if (!clones.length) return;
    const ours = `${g.dataset}/containers/${INSTANCE_PREFIX}`;
    const dependents = clones.filter((c) => c.startsWith(ours) && !c.slice(ours.length).includes('/'));
    const sandboxes = dependents.map((c) => shortName(c.slice(c.lastIndexOf('/') + 1)));
    const others = clones.filter((c) => !dependents.includes(c));
    const one = clones.length === 1;
    const names = [...sandboxes.map((s) => `"${s}"`), ...others].join(', ');
    const who = others.length === 0 ? (one ? 'sandbox' : 'sandboxes') : one ? 'dataset' : 'these';
    const message =
      `Cannot restore "${name}" to "${label}": ${who} ${names} ${one ? 'was' : 'were'} cloned from a later ` +
      `state of "${name}", and rolling back would destroy ${one ? 'it' : 'them'}. Nothing was changed. Destroy ` +
      `${one ? 'it' : 'them'} first, or clone "${label}" into a new sandbox instead.`;
    throw new DependentClonesError(message, name, label, sandboxes, others);
  }

  /** Refused while a clone depends on it (deleting would need a promote, which moves older checkpoints too). */
  async deleteCheckpoint(name: string, label: string): Promise<void> {
    validateSandboxName(name);
    validateCheckpointLabel(label);
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    const id = `${this.datasetOf(g, name)}@${label}`;
    const [entry] = await snapshots.query([['id', '=', id]], `Reading checkpoint "${label}"`);
    if (!entry || isDeferredDestroy(entry)) {
      await this.requireInstance(name);
      throw this.checkpointNotFound(name, label);
    }
    const clones = snapshotClones(entry);
    if (clones.length) {
      const names = clones.map((c) => `"${shortName(c.slice(c.lastIndexOf('/') + 1))}"`).join(', ');
      const problem = `Checkpoint "${label}" of "${name}" cannot be deleted: ${clones.length > 1 ? 'sandboxes' : 'sandbox'} ${names} ${clones.length > 1 ? 'were' : 'was'} cloned from it. Destroy ${clones.length > 1 ? 'them' : 'that sandbox'} first.`;
      throw new ValidationError(problem, [{ field: 'label', message: problem }]);
    }
    await snapshots.delete(id, `Deleting checkpoint "${label}" of "${name}"`);
  }

  // --- clone -------------------------------------------------------------------------------------------

  /**
   * The clone starts with the source's files, identity included (hostname, machine-id, SSH host keys). It is not
   * rewritten here: the clone's root filesystem is mounted only while it runs, the source's own software runs in
   * it then, and file_receive follows any link that software plants, as root on the NAS. The caller gives the
   * clone its identity over SSH (the clone still serves the source's pinned host key), from inside the sandbox.
   */
  async clone(source: CloneSource, newName: string, op?: OperationOptions): Promise<Sandbox> {
    validateSandboxName(source.sandbox);
    validateSandboxName(newName);
    if (source.checkpoint !== undefined) validateCheckpointLabel(source.checkpoint);
    if (source.sandbox === newName) {
      throw new ValidationError(`A clone needs a new name, not "${newName}".`, [
        { field: 'name', message: 'The clone must have a different name.' },
      ]);
    }
    const [snapshots, g] = await Promise.all([this.snapshots(), this.global()]);
    const [src, existing] = await Promise.all([
      this.findInstance(source.sandbox),
      this.findInstance(newName),
    ]);
    if (!src) throw this.notFound(source.sandbox);
    if (existing) throw new AlreadyExistsError(`A sandbox named "${newName}" already exists.`);
    const srcDataset = this.datasetOf(g, source.sandbox);
    const dstDataset = this.datasetOf(g, newName);
    const progress = (description: string, percent: number) => op?.onProgress?.({ description, percent });
    const checkCancel = () => {
      if (op?.signal?.aborted) throw new CancelledError(`Cloning "${source.sandbox}" was cancelled.`);
    };

    let label = source.checkpoint;
    let temporary = false;
    if (label !== undefined) {
      const [entry] = await snapshots.query(
        [['id', '=', `${srcDataset}@${label}`]],
        `Reading checkpoint "${label}"`,
      );
      if (!entry || isDeferredDestroy(entry)) throw this.checkpointNotFound(source.sandbox, label);
    } else {
      label = `px-clone-${defaultCheckpointLabel().slice(3)}-${Math.random().toString(16).slice(2, 6)}`;
      if (checkpointLabelProblem(label)) throw new ServerError('Internal error: bad temporary label.');
      progress(`Taking a snapshot of "${source.sandbox}"`, 5);
      await snapshots.create(srcDataset, label, `Snapshotting "${source.sandbox}" for the clone`);
      temporary = true;
    }
    const snapshotId = `${srcDataset}@${label}`;
    let created = false;
    let trash: string | undefined;
    try {
      checkCancel();
      progress(`Creating "${newName}"`, 15);
      const payload = this.createPayload(newName, this.imageAliasOf(src), {
        cpu: src.cpu ?? undefined,
        memoryMiB: typeof src.memory === 'number' ? Math.round(src.memory / MiB) : undefined,
        autostart: false,
        nic: await this.plannedNic(),
      });
      // From here on the instance may exist (a lost reply or a restart hides whether it does): undo checks.
      created = true;
      await this.client.callJob('virt.instance.create', [payload], {
        context: `Creating sandbox "${newName}" for the clone`,
        signal: op?.signal,
      });
      const fresh = await this.requireInstance(newName);
      if (fresh.status !== 'STOPPED') {
        await this.client.callJob(
          'virt.instance.stop',
          [instanceName(newName), { timeout: 10, force: true }],
          {
            context: `Stopping "${newName}" before the clone`,
          },
        );
      }
      checkCancel();
      progress(`Replacing the root of "${newName}" with "${source.sandbox}@${label}"`, 40);
      const family = await this.family();
      const trashName = `${g.pool}/px-trash-${newName}-${Date.now().toString(36)}`;
      trash = await snapshots.vacate(dstDataset, trashName, `Preparing the dataset of "${newName}"`);
      await snapshots.clone(snapshotId, dstDataset, `Cloning "${source.sandbox}@${label}"`);
      if (trash) {
        await snapshots.deleteDataset(trash, `Removing the old dataset of "${newName}"`);
        trash = undefined;
      }
      this.log.info(`truenas: cloned ${snapshotId} to ${dstDataset} (${family})`);
      progress(`Starting "${newName}"`, 60);
      await this.client.callJob('virt.instance.start', [instanceName(newName)], {
        context: `Starting the clone "${newName}"`,
      });
    } catch (err) {
      await this.undoClone(newName, created, trash, snapshots);
      if (temporary) await this.dropTemporary(snapshots, snapshotId);
      throw err;
    }
    if (temporary) await this.dropTemporary(snapshots, snapshotId);
    progress('Done', 100);
    return this.get(newName);
  }

  // --- files -------------------------------------------------------------------------------------------

  /**
   * filesystem.file_receive into the running sandbox's root filesystem, in chunks under 2 MiB per message.
   * file_receive runs open()/makedirs() as root on the NAS and follows symbolic links, so it is used only for a
   * sandbox nothing has run in yet (created here from an image, not restarted since), after checking that no
   * component of the path is a link and that the sandbox's dataset is really mounted there. Anything else is
   * refused, naming the path: write over SSH instead (see SshAccess).
   */
  async writeFile(
    name: string,
    path: string,
    content: Buffer,
    options: WriteFileOptions = {},
  ): Promise<void> {
    validateWriteTarget(name, path);
    const inst = await this.requireInstance(name);
    const created = this.fresh.get(name);
    if (created === undefined || Date.now() - created > FRESH_FOR_MS) {
      this.fresh.delete(name);
      throw new SecurityError(
        `Pixels will not write ${path} into "${name}" through the TrueNAS file API: it follows symbolic links ` +
          `as root on the NAS, and software has run in "${name}" that could have placed one there to reach the ` +
          "NAS's own files. Nothing was written. Pixels writes this way only into a sandbox it has just created; " +
          'for any other it writes over SSH, which needs SSH access set up from this machine.',
      );
    }
    if (inst.status !== 'RUNNING') {
      throw new ValidationError(
        `Sandbox "${name}" must be running to write ${path}: TrueNAS mounts its filesystem only while it runs.`,
        [{ field: 'name', message: 'The sandbox is not running.' }],
      );
    }
    const g = await this.global();
    await this.refuseLinks(g.pool, name, path);
    await this.receive(g.pool, name, path, content, options);
  }

  // --- network -----------------------------------------------------------------------------------------

  /**
   * Where a new sandbox lands: the configured NIC, else the choice pixels makes from the NAS's network (a LAN
   * bridge first, then MACVLAN on the interface with the default gateway), else the automatic NAT'd bridge.
   */
  networkPlan(): Promise<NetworkPlan> {
    const configured = this.nic && planFromSetting(this.nic);
    if (configured) return Promise.resolve(configured);
    if (this.nic?.network && !this.networkIgnoredLogged) {
      this.networkIgnoredLogged = true;
      this.log.warn(
        `truenas: the NIC setting "network" (${this.nic.network}) applies to Incus servers only; on TrueNAS set ` +
          'a type ("bridged"/"macvlan") and a parent. Choosing automatically.',
      );
    }
    const cached = this.planCache;
    if (cached && Date.now() - cached.at < PLAN_TTL_MS) return cached.plan;
    const plan = this.readNetworkFacts().then(chooseAutomatically, (err: unknown) => {
      const why = err instanceof Error ? err.message : String(err);
      this.log.warn(`truenas: could not read the network of ${this.client.host}: ${why}`);
      const fallback: NetworkPlan = {
        kind: 'automatic-nat-bridge',
        parent: AUTOMATIC_BRIDGE,
        reachableFromClient: false,
        source: 'server-default',
        summary: `the NAS's default network (its network could not be read)`,
        explanation:
          `Pixels could not read the NAS's network (${why}), so no NIC is added and the sandbox gets the NAS's ` +
          "default, usually the automatic NAT'd bridge. Set a NIC in the server's settings to choose.",
      };
      return fallback;
    });
    this.planCache = { at: Date.now(), plan };
    return plan;
  }

  private async plannedNic(): Promise<NicSetting | undefined> {
    const plan = await this.networkPlan();
    this.log.info(`truenas: new sandbox network: ${plan.summary}`);
    return plan.nic;
  }

  /** The calls pixels makes (interface.query, network.general.summary) plus the virt bridge facts. */
  private async readNetworkFacts(): Promise<NetworkFacts> {
    const context = 'Reading the NAS network';
    const [g, interfaces, summary, choices] = await Promise.all([
      this.global(),
      this.client.call<InterfaceEntry[]>('interface.query', [], {
        context,
        expect: rowsWith({ name: 'string', type: 'string', state: 'object', aliases: 'array' }),
      }),
      this.client.call<{ default_routes: string[] }>('network.general.summary', [], {
        context,
        expect: objectWith({ default_routes: 'array' }),
      }),
      this.client.call<Record<string, string>>('virt.global.bridge_choices', [], {
        context,
        expect: objectWith({}),
      }),
    ]);
    const facts: NetworkFacts = {
      interfaces,
      defaultRoutes: summary.default_routes.filter((r): r is string => typeof r === 'string'),
      bridgeChoices: Object.keys(choices),
      globalBridge: g.bridge,
    };
    if (!g.bridge) {
      try {
        const n = await this.client.call<{ ipv4_address: string; ipv4_nat: boolean }>(
          'virt.global.get_network',
          [AUTOMATIC_BRIDGE],
          { context, expect: objectWith({ ipv4_address: 'string', ipv4_nat: 'boolean' }) },
        );
        facts.automatic = { name: AUTOMATIC_BRIDGE, ipv4Address: n.ipv4_address, ipv4Nat: n.ipv4_nat };
      } catch (err) {
        this.log.warn(`truenas: could not read ${AUTOMATIC_BRIDGE}: ${String(err)}`);
      }
    }
    return facts;
  }

  dispose(): void {
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    this.changes.dispose();
    this.client.dispose();
  }

  // --- helpers -----------------------------------------------------------------------------------------

  private family(): Promise<VirtFamily> {
    if (!this.familyPromise) {
      this.familyPromise = this.client.version().then((v) => {
        const family = apiFamily(v);
        if (!isVirtFamily(family))
          throw new UnsupportedError(
            `TrueNAS ${v.display} has no virt.* API; it needs the container backend.`,
          );
        return family;
      });
      this.familyPromise.catch(() => (this.familyPromise = undefined));
    }
    return this.familyPromise;
  }

  private async snapshots(): Promise<SnapshotApi> {
    const family = await this.family();
    if (!this.snapshotsApi || this.snapshotsApi.family !== family)
      this.snapshotsApi = new SnapshotApi(this.client, family);
    return this.snapshotsApi;
  }

  /** virt.global.config, cached: where instance datasets live. */
  private global(): Promise<{ pool: string; dataset: string; bridge: string | null }> {
    if (!this.globalPromise) {
      this.globalPromise = this.family()
        .then(() =>
          this.client.call<VirtGlobalConfig>('virt.global.config', [], {
            context: 'Reading the virtualization settings',
            expect: objectWith({ pool: 'string?', dataset: 'string?', bridge: 'string?', state: 'string?' }),
          }),
        )
        .then((c) => {
          if (!c.pool || !c.dataset || (c.state && c.state !== 'INITIALIZED')) {
            throw new ServerError(
              `Containers are not set up on ${this.client.host} (virt.global.config: state ${c.state ?? 'unknown'}): choose a pool under ` +
                'Instances (Containers) → Global Settings in the TrueNAS UI.',
            );
          }
          return { pool: c.pool, dataset: c.dataset, bridge: c.bridge ?? null };
        });
      this.globalPromise.catch(() => (this.globalPromise = undefined));
    }
    return this.globalPromise;
  }

  private datasetOf(g: { dataset: string }, short: string): string {
    return `${g.dataset}/containers/${instanceName(short)}`;
  }

  private rootfsPath(pool: string, short: string, path: string): string {
    return `/var/lib/incus/storage-pools/${pool}/containers/${instanceName(short)}/rootfs${path}`;
  }

  private async findInstance(name: string): Promise<VirtInstance | undefined> {
    const rows = await this.client.call<VirtInstance[]>(
      'virt.instance.query',
      [[['name', '=', instanceName(name)]]],
      {
        context: `Looking up sandbox "${name}"`,
        expect: INSTANCE_ROWS,
      },
    );
    return rows[0];
  }

  private async requireInstance(name: string): Promise<VirtInstance> {
    const inst = await this.findInstance(name);
    if (!inst) throw this.notFound(name);
    return inst;
  }

  private notFound(name: string): NotFoundError {
    return new NotFoundError(`Sandbox "${name}" does not exist on ${this.client.host}.`);
  }

  private checkpointNotFound(name: string, label: string): NotFoundError {
    return new NotFoundError(`Sandbox "${name}" has no checkpoint named "${label}".`);
  }

  private stopArgs(options?: StopOptions): { timeout: number; force: boolean } {
    // The server refuses force=false with timeout=-1, so a timeout is always sent.
    const timeout = options?.timeoutSec ?? DEFAULT_STOP_TIMEOUT_SEC;
    return {
      timeout: timeout > 0 ? Math.round(timeout) : DEFAULT_STOP_TIMEOUT_SEC,
      force: options?.force ?? false,
    };
  }

  private createPayload(
    name: string,
    image: string,
    o: {
      cpu?: string;
      memoryMiB?: number;
      environment?: Record<string, string>;
      autostart: boolean;
      nic?: NicConfig;
    },
  ): Record<string, unknown> {
    const payload: Record<string, unknown> = {
      name: instanceName(name),
      source_type: 'IMAGE',
      image,
      instance_type: 'CONTAINER',
      autostart: o.autostart,
    };
    if (o.cpu !== undefined) payload.cpu = o.cpu;
    if (o.memoryMiB !== undefined) payload.memory = o.memoryMiB * MiB;
    if (o.environment && Object.keys(o.environment).length) payload.environment = o.environment;
    const nic = o.nic;
    // Without nic_type the middleware cannot build the device (it lower-cases None), so none is sent.
    if (nic?.nicType) {
      const device: Record<string, unknown> = { dev_type: 'NIC' };
      if (nic.network) device.network = nic.network;
      if (nic.nicType) device.nic_type = nic.nicType;
      if (nic.parent) device.parent = nic.parent;
      payload.devices = [device];
    }
    return payload;
  }

  /** An Incus alias for the clone's placeholder image (its root is replaced anyway). */
  private imageAliasOf(inst: VirtInstance): string {
    const os = inst.image?.os?.toLowerCase();
    const release = inst.image?.release;
    return os && release ? `${os}/${release}` : 'debian/bookworm';
  }

  /**
   * Every component of the host path below the instance's mountpoint is looked at with filesystem.stat (which
   * does not follow the last component): none may be a symbolic link, and the mountpoint must be the mounted
   * dataset (else the write would land in the NAS's own directory, hidden under the next mount). Components
   * that do not exist yet are made by file_receive's makedirs as plain directories.
   */
  private async refuseLinks(pool: string, name: string, path: string): Promise<void> {
    const mountpoint = `/var/lib/incus/storage-pools/${pool}/containers/${instanceName(name)}`;
    const top = await this.statHost(mountpoint, name, path);
    if (!top || top.type !== 'DIRECTORY' || top.is_mountpoint !== true) {
      throw new ServerError(
        `Cannot write ${path} into "${name}": its filesystem is not mounted at ${mountpoint} on the NAS. Nothing was written.`,
      );
    }
    let host = `${mountpoint}/rootfs`;
    let guest = '';
    const parts = ['', ...path.split('/').filter(Boolean)];
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) {
        host += `/${parts[i]}`;
        guest += `/${parts[i]}`;
      }
      const st = await this.statHost(host, name, path);
      if (!st) return;
      const shown = guest || '/';
      if (st.type === 'SYMLINK') {
        throw new SecurityError(
          `Refusing to write ${path} into "${name}": ${shown} is a symbolic link in the sandbox (it leads to ` +
            `${st.realpath ?? 'an unknown place'} on the NAS), and the TrueNAS file API would follow it as root. ` +
            'Nothing was written.',
        );
      }
      const last = i === parts.length - 1;
      if (!last && st.type !== 'DIRECTORY')
        throw new ValidationError(`Cannot write ${path} into "${name}": ${shown} is not a directory.`);
      if (last && st.type !== 'FILE')
        throw new ValidationError(
          `Cannot write ${path} into "${name}": it is a ${st.type.toLowerCase()}, not a file.`,
        );
    }
  }

  /** filesystem.stat, or undefined when nothing is there. */
  private async statHost(
    hostPath: string,
    name: string,
    path: string,
  ): Promise<{ type: string; realpath?: string; is_mountpoint?: boolean } | undefined> {
    try {
      return await this.client.call<{ type: string; realpath?: string; is_mountpoint?: boolean }>(
        'filesystem.stat',
        [hostPath],
        { context: `Checking the way to ${path} in "${name}"` },
      );
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private receive(
    pool: string,
    name: string,
    path: string,
    content: Buffer,
    o: WriteFileOptions,
  ): Promise<void> {
    return receiveFile(
      this.client,
      this.rootfsPath(pool, name, path),
      content,
      o,
      `Writing ${path} into "${name}"`,
    );
  }

  private async undoClone(
    newName: string,
    created: boolean,
    trash: string | undefined,
    snapshots: SnapshotApi,
  ): Promise<void> {
    if (created) await this.removeHalfMade(newName);
    if (trash) {
      await snapshots
        .deleteDataset(trash, 'Removing a leftover dataset')
        .catch((e: unknown) => this.log.warn(`truenas: could not remove ${trash}: ${String(e)}`));
    }
  }

  /** Deleted now when nothing depends on it; otherwise ZFS drops it with its last clone (defer). */
  private async dropTemporary(snapshots: SnapshotApi, id: string): Promise<void> {
    try {
      await snapshots.delete(id, 'Removing the temporary snapshot', true);
    } catch (err) {
      this.log.warn(`truenas: could not remove the temporary snapshot ${id}: ${String(err)}`);
    }
  }

  /**
   * After a lost reply (the client could not find the job either), the server's state decides whether the
   * operation happened: `done` looks at the instance as it is now (undefined: it does not exist).
   */
  private async happenedAnyway(
    err: unknown,
    name: string,
    done: (inst: VirtInstance | undefined) => boolean,
  ): Promise<boolean> {
    if (!isUnknownOutcome(err)) return false;
    try {
      if (done(await this.whileAway(() => this.findInstance(name)))) {
        this.log.info(`truenas: "${name}" is in the expected state after a lost reply; treating it as done`);
        return true;
      }
    } catch {
      // still unreachable: the original error says it best
    }
    return false;
  }

  private async startQuietly(name: string): Promise<void> {
    try {
      await this.whileAway(() =>
        this.client.callJob('virt.instance.start', [instanceName(name)], {
          context: `Starting "${name}" again`,
        }),
      );
    } catch (err) {
      this.log.warn(`truenas: could not start "${name}" again: ${String(err)}`);
    }
  }

  /** Deletes what a failed create or clone left (the failure may be the server going away: see whileAway). */
  private async removeHalfMade(name: string): Promise<void> {
    try {
      await this.whileAway(async () => {
        if (await this.findInstance(name)) {
          await this.client.callJob('virt.instance.delete', [instanceName(name)], {
            context: `Removing the half-made sandbox "${name}"`,
          });
        }
      });
    } catch (err) {
      this.log.warn(`truenas: could not remove the half-made sandbox "${name}": ${String(err)}`);
    }
  }

  /**
   * Runs a check or clean-up that follows a lost reply. The loss may be the server restarting, so a refused
   * connection or a timeout is tried again while it comes back (bounded, about 7 s in all) rather than leaving
   * the outcome unknown or the work half-done at the first refusal.
   */
  private async whileAway<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        const transient = err instanceof ConnectionError || err instanceof TimeoutError;
        if (!transient || attempt >= AWAY_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  private async startEvents(): Promise<void> {
    const snapshots = await this.snapshots();
    this.unsubscribers.push(
      this.client.onUpdate((u) => this.forward(u, snapshots.eventName)),
      this.client.onConnectionChange(() => this.changes.fire({ kind: 'connection' })),
    );
    await this.client.subscribe('virt.instance.query');
    await this.client.subscribe(snapshots.eventName);
  }

  private forward(u: CollectionUpdate, snapshotCollection: string): void {
    if (u.collection === 'virt.instance.query') {
      const id =
        typeof u.id === 'string' ? u.id : typeof u.fields?.name === 'string' ? u.fields.name : undefined;
      if (id && !id.startsWith(INSTANCE_PREFIX)) return;
      this.changes.fire({ kind: 'sandbox', name: id ? shortName(id) : undefined });
    } else if (u.collection === snapshotCollection) {
      const id = typeof u.id === 'string' ? u.id : '';
      const dataset = id.split('@')[0];
      const leaf = dataset.slice(dataset.lastIndexOf('/') + 1);
      if (leaf && !leaf.startsWith(INSTANCE_PREFIX)) return;
      this.changes.fire({ kind: 'checkpoint', name: leaf ? shortName(leaf) : undefined });
    }
  }
}
