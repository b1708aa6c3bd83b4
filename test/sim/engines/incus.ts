// IncusEngine: the simulator's state on real Incus containers (TrueNAS 25.x middleware is Incus underneath).
//
// - Every simulated instance is a real container of the same name in a project of its own
//   (`pxsim-<pid>-<random>`, removed on close; projects of dead simulator processes are swept on start).
// - The ZFS namespace (datasets, snapshot ids, createtxg, clone origins) is kept here, because Incus has no such
//   names. A dataset that holds a root filesystem is *backed* by a real container: `<pool>/.ix-virt/containers/x`
//   by container `x`; a dataset renamed out of there (the 25.10 clone route parks it as `px-trash-…`) by the same
//   container renamed to a hidden name. Snapshots of backed datasets are real Incus snapshots; rollback is an Incus
//   restore; cloneSnapshot is an `incus copy <backing>/<snap>`; file writes under `rootfs/` go through the Incus
//   file API into the real root filesystem.
// - Datasets without a root filesystem (plain ones made by createDataset) keep their files in memory.
// - promoteDataset is refused: Incus snapshots cannot move from one container to another.
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IncusEventStream } from '../../../src/backends/incus/events';
import { IncusFiles } from '../../../src/backends/incus/files';
import { Operations } from '../../../src/backends/incus/operations';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import type { IncusInstance, IncusSnapshot } from '../../../src/backends/incus/types';
import { NotFoundError, PixelsError } from '../../../src/core/errors';
import { silentLogger } from '../../../src/core/log';
import { requireLab } from '../../lab/lab';
import type { Lab } from '../../lab/lab';
import {
  EngineError,
  instanceDataset,
  rootfsPrefix,
  type DatasetLayout,
  type Address,
  type CreateInstanceSpec,
  type DatasetRecord,
  type DeviceSpec,
  type FileStat,
  type FileWriteOptions,
  type ImageInfo,
  type InstanceChangeListener,
  type InstancePatch,
  type InstanceRecord,
  type InstanceStatus,
  type SimEngine,
  type SnapshotRecord,
} from '../engine.js';
import {
  cloneFiles,
  directoryStat,
  filesBytes,
  listEntries,
  normalize,
  ownership,
  statEntry,
  writableKey,
  writeEntry,
  type FileMap,
} from './file-map.js';
import {
  applyPatch,
  checkNewInstance,
  incusErrors,
  instanceRecord,
  mustInstance,
  newInstance,
  type InstanceBase,
} from './instances.js';
import { ZfsBook, type DatasetBase, type SnapshotBase } from './zfs-book.js';
import { SIM_LAN } from '../methods/network.js';

interface InstanceState extends InstanceBase {
  /** the virt.global bridge (25.x) or the lxc bridge (26) its default NIC is on */
  defaultBridge: string | null;
}

interface DatasetState extends DatasetBase {
  /** The real container holding this dataset's root filesystem, if any. */
  backing: string | null;
  /** Files of datasets without a backing container. */
  files: FileMap;
}

interface SnapshotState extends SnapshotBase {
  /** Memory-only datasets: the files at snapshot time. */
  files?: FileMap;
}

export interface IncusEngineOptions {
  pool?: string;
  lab?: Lab;
}

const enc = encodeURIComponent;

function toEngineError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof NotFoundError) return new EngineError('ENOENT', message);
  if (err instanceof PixelsError && err.kind === 'already-exists') return new EngineError('EEXIST', message);
  return new EngineError('EFAULT', message);
}

export class IncusEngine implements SimEngine {
  readonly kind = 'incus';
  readonly pool: string;
  readonly project: string;
  private readonly client: IncusRestClient;
  private readonly ops: Operations;
  private readonly files: IncusFiles;
  private readonly events: IncusEventStream;
  private readonly instances = new Map<string, InstanceState>();
  private readonly zfs: ZfsBook<DatasetState, SnapshotState>;
  private readonly listeners = new Set<InstanceChangeListener>();
  private unsubscribe?: () => void;
  private hidden = 0;
  private imageInfo?: ImageInfo;
  /** The real bridge each instance's NIC is on (see bridgeFor). */
  private readonly bridges = new Map<string, string>();

  constructor(
    private readonly lab: Lab,
    options: IncusEngineOptions = {},
  ) {
    this.pool = options.pool ?? 'tank';
    this.project = `pxsim-${process.pid}-${randomBytes(2).toString('hex')}`;
    this.client = new IncusRestClient({ socketPath: lab.socket, project: this.project });
    this.events = new IncusEventStream(this.client, silentLogger);
    this.ops = new Operations(this.client, this.events);
    this.files = new IncusFiles(this.client);
    this.zfs = new ZfsBook(this.pool, () => ({ backing: null, files: new Map() }));
  }

  get layout(): DatasetLayout {
    return this.zfs.layout;
  }

  useLayout(layout: DatasetLayout): void {
    if (this.instances.size) throw new Error('the dataset layout can only change before any instance exists');
    this.zfs.setLayout(layout);
  }

  private datasetOf(name: string): string {
    return instanceDataset(this.layout, this.pool, name);
  }

  /** Creates the project (sweeping those of dead simulators first) and reads the lab image. */
  async open(): Promise<void> {
    const admin = new IncusRestClient({ socketPath: this.lab.socket });
    try {
      const projects = await admin.call<string[]>('GET', '/1.0/projects');
      for (const url of projects.metadata) {
        const name = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
        const m = /^pxsim-(\d+)-[0-9a-f]+$/.exec(name);
        if (!m || isAlive(Number(m[1]))) continue;
        await removeProject(admin, name).catch(() => undefined);
      }
      await admin.call('POST', '/1.0/projects', {
        body: {
          name: this.project,
          description: 'Pixels TrueNAS simulator (Incus engine); removed when the simulator stops',
          config: {
            'features.images': 'false',
            'features.profiles': 'false',
            'features.storage.volumes': 'false',
          },
        },
      });
      const alias = await admin.call<{ target: string }>('GET', `/1.0/images/aliases/${enc(this.lab.image)}`);
      const img = await admin.call<{
        properties: Record<string, string>;
        architecture: string;
        created_at: string;
      }>('GET', `/1.0/images/${alias.metadata.target}`);
      const p = img.metadata.properties;
      const serial = img.metadata.created_at.slice(0, 16).replace(/[-:]/g, '').replace('T', '_');
      this.imageInfo = {
        architecture: p.architecture ?? 'amd64',
        description: p.description ?? this.lab.image,
        os: p.os ? p.os.charAt(0).toUpperCase() + p.os.slice(1) : 'Debian',
        release: p.release ?? 'bookworm',
        serial,
        type: 'squashfs',
        variant: p.variant ?? 'default',
      };
    } finally {
      admin.close();
    }
    this.unsubscribe = this.events.subscribe((event) => {
      if (event.type !== 'lifecycle' || (event.project && event.project !== this.project)) return;
      const m = /^\/1\.0\/instances\/([^/?]+)$/.exec(String(event.metadata.source ?? ''));
      if (!m) return;
      const name = decodeURIComponent(m[1]);
      const action = String(event.metadata.action ?? '');
      const status: InstanceStatus | undefined =
        action === 'instance-started' || action === 'instance-restarted'
          ? 'RUNNING'
          : action === 'instance-stopped' || action === 'instance-shutdown'
            ? 'STOPPED'
            : undefined;
      if (status && this.instances.has(name)) for (const l of [...this.listeners]) l(name, status);
    });
    await this.events.ensureOpen().catch(() => undefined);
  }

  // ---------------------------------------------------------------- instances

  async listInstances(): Promise<InstanceRecord[]> {
    const env = await this.client.call<IncusInstance[]>('GET', '/1.0/instances', {
      query: { recursion: '2' },
    });
    const real = new Map(env.metadata.map((i) => [i.name, i]));
    return [...this.instances.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((s) => this.record(s, real.get(s.name)));
  }

  async createInstance(spec: CreateInstanceSpec): Promise<InstanceRecord> {
    checkNewInstance(this.instances, spec.name);
    const dataset = this.datasetOf(spec.name);
    this.zfs.checkInstanceDataset(dataset);
    if (!/^[a-z0-9._-]+(\/[A-Za-z0-9._-]+){0,2}$/i.test(spec.image))
      throw incusErrors.imageNotFound(spec.image);
    // Every alias runs the lab's Debian image here; the record says so instead of pretending.
    const state: InstanceState = {
      ...newInstance(spec, { ...this.imageInfo! }, new Date()),
      defaultBridge: spec.defaultBridge ?? null,
    };
    const bridge = this.bridgeFor(state.defaultBridge);
    await this.run('POST', '/1.0/instances', {
      body: {
        name: spec.name,
        type: 'container',
        source: { type: 'image', alias: this.lab.image, project: 'default' },
        config: this.realConfig(state),
        devices: this.realDevices(spec.devices, bridge),
      },
    });
    this.instances.set(spec.name, state);
    this.bridges.set(spec.name, bridge);
    this.zfs.addDataset(dataset, spec.origin ?? null, state.createdAt, {
      backing: spec.name,
      files: new Map(),
    });
    this.zfs.txg += 3;
    return this.record(state, await this.real(spec.name));
  }

  async updateInstance(name: string, patch: InstancePatch): Promise<InstanceRecord> {
    const state = mustInstance(this.instances, name);
    applyPatch(state, patch);
    if (patch.defaultBridge !== undefined) state.defaultBridge = patch.defaultBridge;
    if (patch.devices !== undefined || patch.defaultBridge !== undefined)
      this.bridges.set(name, this.bridgeFor(state.defaultBridge));
    if (this.attached(name))
      await this.applyConfig(state, patch.devices !== undefined || patch.defaultBridge !== undefined);
    return this.record(state, await this.real(name));
  }

  async startInstance(name: string): Promise<void> {
    mustInstance(this.instances, name);
    const dataset = this.datasetOf(name);
    if (!this.attached(name)) throw incusErrors.rootMissing(dataset);
    const real = await this.real(name);
    if (real?.status === 'Running') throw incusErrors.alreadyRunning();
    await this.run('PUT', `/1.0/instances/${enc(name)}/state`, { body: { action: 'start' } });
  }

  async stopInstance(name: string, force: boolean, timeoutSeconds: number): Promise<void> {
    mustInstance(this.instances, name);
    const real = this.attached(name) ? await this.real(name) : undefined;
    if (!real || real.status === 'Stopped') throw incusErrors.alreadyStopped();
    await this.run('PUT', `/1.0/instances/${enc(name)}/state`, {
      body: { action: 'stop', force, timeout: force ? -1 : timeoutSeconds },
    });
  }

  async forgetInstance(name: string): Promise<void> {
    mustInstance(this.instances, name);
    if (this.attached(name)) await this.forceStop(name);
    this.instances.delete(name);
    this.bridges.delete(name);
    // The dataset stays; its backing container takes a hidden name (no instance owns it now).
    await this.attach(this.datasetOf(name));
  }

  async renameInstance(from: string, to: string): Promise<void> {
    const state = mustInstance(this.instances, from);
    checkNewInstance(this.instances, to);
    const dataset = this.datasetOf(from);
    this.zfs.checkRename(dataset, this.datasetOf(to));
    if (await this.isRunning(this.zfs.dataset(dataset))) throw this.zfs.busy(dataset);
    if (await this.real(to))
      throw new EngineError('EEXIST', `cannot rename to '${this.datasetOf(to)}': dataset already exists`);
    this.instances.delete(from);
    state.name = to;
    this.instances.set(to, state);
    const bridge = this.bridges.get(from);
    this.bridges.delete(from);
    if (bridge) this.bridges.set(to, bridge);
    await this.moveDataset(dataset, this.datasetOf(to));
  }

  async deleteInstance(name: string): Promise<void> {
    mustInstance(this.instances, name);
    const dataset = this.datasetOf(name);
    const attached = this.attached(name);
    if (attached) await this.forceStop(name);
    this.instances.delete(name);
    this.bridges.delete(name);
    if (!this.zfs.datasets.has(dataset)) return;
    if (this.zfs.hasClonedSnapshot([dataset])) {
      // As Incus does: a volume whose snapshots have clones is parked under deleted/ until they are gone.
      await this.moveDataset(dataset, this.zfs.parkedName(name));
      return;
    }
    await this.dropBacked(dataset);
    // Incus removes a parked volume under deleted/ once no clone depends on its snapshots any more.
    for (const parked of this.zfs.collectable()) await this.dropBacked(parked);
  }

  onInstanceChange(listener: InstanceChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- datasets / snapshots

  async listDatasets(): Promise<DatasetRecord[]> {
    const running = await this.runningContainers();
    return this.zfs.sortedDatasets().map((d) => this.datasetRecord(d, running));
  }

  async createDataset(name: string): Promise<DatasetRecord> {
    return this.datasetRecord(this.zfs.createDataset(name), new Set());
  }

  async listSnapshots(onlyDataset?: (dataset: string) => boolean): Promise<SnapshotRecord[]> {
    const sizes = await this.snapshotSizes();
    return this.zfs
      .sortedSnapshots()
      .filter((s) => !onlyDataset || onlyDataset(s.dataset))
      .map((s) => this.snapshotRecord(s, sizes));
  }

  async createSnapshot(dataset: string, name: string, hint?: { creation?: Date }): Promise<SnapshotRecord> {
    const { ds } = this.zfs.checkNewSnapshot(dataset, name);
    if (ds.backing) {
      await this.run('POST', `/1.0/instances/${enc(ds.backing)}/snapshots`, {
        body: { name, stateful: false },
      });
    }
    const snap = this.zfs.addSnapshot(dataset, name, hint?.creation, {
      files: ds.backing ? undefined : cloneFiles(ds.files),
    });
    return this.snapshotRecord(snap, await this.snapshotSizes());
  }

  async destroySnapshot(id: string): Promise<void> {
    const snap = this.zfs.checkDestroySnapshot(id);
    const backing = this.zfs.datasets.get(snap.dataset)?.backing;
    if (backing) await this.run('DELETE', `/1.0/instances/${enc(backing)}/snapshots/${enc(snap.name)}`, {});
    this.zfs.snapshots.delete(id);
    this.zfs.txg += 1;
  }

  async renameSnapshot(id: string, newName: string): Promise<void> {
    const { snap } = this.zfs.checkRenameSnapshot(id, newName);
    const backing = this.zfs.datasets.get(snap.dataset)?.backing;
    if (backing)
      await this.run('POST', `/1.0/instances/${enc(backing)}/snapshots/${enc(snap.name)}`, {
        body: { name: newName },
      });
    this.zfs.renameSnapshot(snap, newName);
    this.zfs.txg += 1;
  }

  async rollbackSnapshot(id: string): Promise<void> {
    const { snap, ds } = this.zfs.checkRollback(id);
    if (ds.backing)
      await this.run('PUT', `/1.0/instances/${enc(ds.backing)}`, { body: { restore: snap.name } });
    else ds.files = cloneFiles(snap.files ?? new Map());
    this.zfs.txg += 1;
  }

  async cloneSnapshot(id: string, target: string): Promise<void> {
    const snap = this.zfs.snapshot(id);
    this.zfs.checkCreate(target);
    const source = this.zfs.datasets.get(snap.dataset)!;
    let backing: string | null = null;
    if (source.backing) {
      const owner = this.instanceOfDataset(target);
      backing = owner && !(await this.real(owner.name)) ? owner.name : this.hiddenName();
      await this.run('POST', '/1.0/instances', {
        body: {
          name: backing,
          type: 'container',
          source: { type: 'copy', source: `${source.backing}/${snap.name}`, instance_only: true },
          config: owner ? this.realConfig(owner) : {},
          devices: this.realDevices(
            owner?.devices,
            (owner && this.bridges.get(owner.name)) ?? this.lab.natBridge,
          ),
        },
      });
    }
    this.zfs.addDataset(target, id, new Date(), {
      backing,
      files: backing ? new Map() : cloneFiles(snap.files ?? new Map()),
    });
    if (backing) await this.attach(target);
    this.zfs.txg += 2;
  }

  async destroyDataset(name: string): Promise<void> {
    const ds = this.zfs.dataset(name);
    if (await this.isRunning(ds)) throw this.zfs.busy(name);
    this.zfs.checkDestroy(name);
    if (ds.backing) await this.run('DELETE', `/1.0/instances/${enc(ds.backing)}`, {});
    this.zfs.datasets.delete(name);
    this.zfs.txg += 1;
  }

  async renameDataset(from: string, to: string): Promise<void> {
    this.zfs.checkRename(from, to);
    for (const ds of this.zfs.subtree(from)) {
      if (await this.isRunning(this.zfs.datasets.get(ds)!)) throw this.zfs.busy(from);
    }
    await this.moveDataset(from, to);
    this.zfs.txg += 1;
  }

  async promoteDataset(name: string): Promise<void> {
    this.zfs.checkPromote(name);
    throw new EngineError(
      'EFAULT',
      `cannot promote '${name}': the Incus engine cannot move snapshots between containers (use the memory engine)`,
    );
  }

  // ---------------------------------------------------------------- files

  async writeFile(dataset: string, path: string, data: Buffer, options: FileWriteOptions): Promise<void> {
    const ds = this.zfs.dataset(dataset);
    const key = writableKey(path);
    const inRoot = this.rootPath(ds, key);
    if (inRoot) {
      const old = options.mode === null || options.uid < 0 ? await this.stat(ds.backing!, inRoot) : undefined;
      try {
        await this.files.write(ds.backing!, inRoot, data, {
          append: options.append,
          ...ownership(options, old),
        });
      } catch (err) {
        throw toEngineError(err);
      }
    } else {
      writeEntry(ds.files, key, data, options);
    }
    this.zfs.txg += 1;
  }

  async readFile(dataset: string, path: string): Promise<Buffer | undefined> {
    const ds = this.zfs.datasets.get(dataset);
    if (!ds) return undefined;
    const key = normalize(path);
    const inRoot = this.rootPath(ds, key);
    if (inRoot) {
      try {
        return await this.files.read(ds.backing!, inRoot);
      } catch {
        return undefined;
      }
    }
    const entry = ds.files.get(key);
    return entry ? Buffer.from(entry.data) : undefined;
  }

  /**
   * lstat of the real root filesystem as the host sees it (what the middleware's statx sees on a NAS): the btrfs
   * volume of the backing container. Read-only, and only to learn what is there; every write into a container
   * goes through the Incus file API, which cannot leave the container whatever links it finds.
   */
  async statPath(dataset: string, path: string): Promise<FileStat | undefined> {
    const ds = this.zfs.datasets.get(dataset);
    if (!ds) return undefined;
    const key = normalize(path);
    const inRoot = this.rootPath(ds, key);
    const rootKey = rootfsPrefix(this.layout).replace(/\/$/, '');
    if (inRoot || (ds.backing && key === rootKey)) return this.hostLstat(ds.backing!, inRoot ?? '/');
    if (ds.backing && (key === '' || key === 'rootfs')) return directoryStat(ds.createdAt);
    return statEntry(ds.files, key, ds.createdAt);
  }

  /** readdir of the real root filesystem on this host (read-only, like hostLstat). */
  async listDir(dataset: string, path: string): Promise<string[] | undefined> {
    const ds = this.zfs.datasets.get(dataset);
    if (!ds) return undefined;
    const key = normalize(path);
    const inRoot =
      this.rootPath(ds, key) ??
      (ds.backing && key === rootfsPrefix(this.layout).replace(/\/$/, '') ? '/' : undefined);
    if (inRoot && ds.backing) {
      if (this.hostLstat(ds.backing, inRoot)?.type !== 'DIRECTORY') return undefined;
      try {
        return readdirSync(join(this.volumeDir(ds.backing), 'rootfs', inRoot)).sort();
      } catch {
        return undefined;
      }
    }
    if (ds.backing && key === '') return ['rootfs'];
    return listEntries(ds.files, key, ds.createdAt);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.unsubscribe?.();
    this.events.dispose();
    this.client.close();
    const admin = new IncusRestClient({ socketPath: this.lab.socket });
    try {
      await removeProject(admin, this.project);
    } finally {
      admin.close();
    }
  }

  // ---------------------------------------------------------------- helpers

  private async run(method: string, path: string, request: { body?: unknown }): Promise<void> {
    try {
      await this.ops.run(method, path, request);
    } catch (err) {
      throw toEngineError(err);
    }
  }

  private async real(name: string): Promise<IncusInstance | undefined> {
    const res = await this.client.raw('GET', `/1.0/instances/${enc(name)}`, { query: { recursion: '1' } });
    if (res.status === 404) return undefined;
    const env = JSON.parse(res.body.toString('utf8')) as { metadata: IncusInstance };
    return env.metadata;
  }

  private async runningContainers(): Promise<Set<string>> {
    const env = await this.client.call<IncusInstance[]>('GET', '/1.0/instances', {
      query: { recursion: '1' },
    });
    return new Set(env.metadata.filter((i) => i.status === 'Running').map((i) => i.name));
  }

  /** Real snapshot sizes by "<container>/<snapshot>", one call per backing container. */
  private async snapshotSizes(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const backings = new Set(
      [...this.zfs.snapshots.values()]
        .map((s) => this.zfs.datasets.get(s.dataset)?.backing)
        .filter((b): b is string => !!b),
    );
    await Promise.all(
      [...backings].map(async (b) => {
        const env = await this.client
          .call<IncusSnapshot[]>('GET', `/1.0/instances/${enc(b)}/snapshots`, { query: { recursion: '1' } })
          .catch(() => undefined);
        for (const s of env?.metadata ?? []) out.set(`${b}/${s.name}`, Math.max(0, s.size ?? 0));
      }),
    );
    return out;
  }

  private async forceStop(name: string): Promise<void> {
    const real = await this.real(name);
    if (real && real.status !== 'Stopped')
      await this.run('PUT', `/1.0/instances/${enc(name)}/state`, { body: { action: 'stop', force: true } });
  }

  /** Deletes a backed dataset subtree with its snapshots (the container goes, with its Incus snapshots). */
  private async dropBacked(dataset: string): Promise<void> {
    for (const ds of this.zfs.subtree(dataset)) {
      const state = this.zfs.datasets.get(ds)!;
      if (state.backing && (await this.real(state.backing))) {
        await this.forceStop(state.backing);
        await this.run('DELETE', `/1.0/instances/${enc(state.backing)}`, {});
      }
      this.zfs.forget(ds);
    }
  }

  /** Renames a dataset subtree; backing containers follow (hidden name outside containers/, the instance's inside). */
  private async moveDataset(from: string, to: string): Promise<void> {
    this.zfs.move(from, to);
    for (const ds of this.zfs.subtree(to)) await this.attach(ds);
  }

  /** Whether the dataset's backing container runs (it is mounted then). */
  private async isRunning(ds: DatasetState): Promise<boolean> {
    return !!ds.backing && (await this.real(ds.backing))?.status === 'Running';
  }

  /**
   * Makes the backing container's name match where the dataset now lives: the instance's own name under
   * containers/ (with the instance's config), a hidden name anywhere else.
   */
  private async attach(dataset: string): Promise<void> {
    const ds = this.zfs.datasets.get(dataset);
    if (!ds?.backing) return;
    const owner = this.instanceOfDataset(dataset);
    const want = owner ? owner.name : ds.backing.startsWith('pxsim-h') ? ds.backing : this.hiddenName();
    if (want !== ds.backing) {
      if (await this.real(want))
        throw new EngineError('EEXIST', `cannot rename to '${dataset}': dataset already exists`);
      await this.run('POST', `/1.0/instances/${enc(ds.backing)}`, { body: { name: want } });
      ds.backing = want;
    }
    if (owner) await this.applyConfig(owner);
  }

  /** Pushes the instance's config (and, with `network`, its NIC) to the real container. */
  private async applyConfig(state: InstanceState, network = false): Promise<void> {
    const real = await this.real(state.name);
    if (!real) return;
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(real.config)) {
      if (
        k.startsWith('limits.') ||
        k.startsWith('environment.') ||
        k === 'boot.autostart' ||
        k === 'security.privileged'
      )
        continue;
      config[k] = v;
    }
    Object.assign(config, this.realConfig(state));
    await this.run('PUT', `/1.0/instances/${enc(state.name)}`, {
      body: {
        architecture: (real as IncusInstance & { architecture?: string }).architecture,
        config,
        devices: network
          ? this.realDevices(
              state.devices,
              this.bridges.get(state.name) ?? this.bridgeFor(state.defaultBridge),
            )
          : (real.devices ?? {}),
        profiles: real.profiles ?? ['default'],
        ephemeral: false,
        description: '',
      },
    });
  }

  private realConfig(state: InstanceState): Record<string, string> {
    const config: Record<string, string> = {};
    // 25.x `cpu` is what Incus takes; 26's `cpuset` is a CPU set, and a lone "2" means CPU 2 there (Incus: "2-2").
    if (state.cpu)
      config['limits.cpu'] =
        this.layout === 'container' && /^\d+$/.test(state.cpu) ? `${state.cpu}-${state.cpu}` : state.cpu;
    if (state.memory) config['limits.memory'] = String(state.memory);
    config['boot.autostart'] = String(state.autostart);
    for (const [k, v] of Object.entries(state.environment)) config[`environment.${k}`] = v;
    return config;
  }

  /**
   * The network of an instance without a NIC device: the default profile's, i.e. virt.global's `bridge`. Chosen
   * (the NAS's LAN bridge) it is the lab bridge; automatic, as on a stock NAS, it is the lab's stand-in for the
   * NAT'd automatic bridge, which the test client cannot reach except through the NAS (lab.natBridge).
   */
  private bridgeFor(defaultBridge: string | null): string {
    return defaultBridge === SIM_LAN.bridge ? this.lab.bridge : this.lab.natBridge;
  }

  /** Every simulated NIC is on a lab bridge: traffic stays on this machine whatever the client asked for. */
  private realDevices(
    devices: readonly DeviceSpec[] = [],
    network: string,
  ): Record<string, Record<string, string>> {
    return {
      root: { type: 'disk', path: '/', pool: this.lab.poolBtrfs },
      eth0: this.realNic(
        devices.find((d) => d.dev_type === 'NIC'),
        network,
      ),
    };
  }

  /**
   * The NAS's interfaces are played by the lab bridge. A BRIDGED NIC on the NAS's LAN bridge joins the lab bridge,
   * which this machine (the "laptop on the LAN") reaches directly. A MACVLAN NIC on the NAS's physical interface
   * becomes a real macvlan child of the lab bridge: as on a NAS, the host of its parent cannot reach it.
   */
  private realNic(nic: DeviceSpec | undefined, network: string): Record<string, string> {
    if (nic?.nic_type === 'BRIDGED' && nic.parent === SIM_LAN.bridge)
      return { type: 'nic', name: 'eth0', nictype: 'bridged', parent: this.lab.bridge };
    if (nic?.nic_type === 'MACVLAN' && nic.parent === SIM_LAN.physical)
      return { type: 'nic', name: 'eth0', nictype: 'macvlan', parent: this.lab.bridge };
    if (nic?.nic_type)
      throw new EngineError(
        'EINVAL',
        `Device validation failed for "eth0": parent "${String(nic.parent)}" is not a host interface here`,
      );
    return { type: 'nic', name: 'eth0', network };
  }

  private hiddenName(): string {
    this.hidden += 1;
    return `pxsim-h${this.hidden}`;
  }

  private attached(name: string): boolean {
    return this.zfs.datasets.get(this.datasetOf(name))?.backing === name;
  }

  /** `rootfs/<p>` (26: `<p>`) of a backed dataset -> `/<p>` inside the container. */
  private rootPath(ds: DatasetState, key: string): string | undefined {
    const prefix = rootfsPrefix(this.layout);
    if (!ds.backing || !key.startsWith(prefix) || key === '') return undefined;
    return `/${key.slice(prefix.length)}`;
  }

  private async stat(container: string, path: string): Promise<FileStat | undefined> {
    const res = await this.client.raw('GET', `/1.0/instances/${enc(container)}/files`, { query: { path } });
    if (res.status >= 400) return undefined;
    const h = res.headers;
    const type = h['x-incus-type'] === 'directory' ? 'DIRECTORY' : 'FILE';
    return {
      type,
      size: type === 'FILE' ? res.body.length : 4096,
      mode: parseInt(String(h['x-incus-mode'] ?? '644'), 8),
      uid: Number(h['x-incus-uid'] ?? 0),
      gid: Number(h['x-incus-gid'] ?? 0),
      mtime: h['last-modified'] ? new Date(String(h['last-modified'])) : new Date(),
    };
  }

  /** The container's volume directory on this host (btrfs keeps it mounted whether it runs or not). */
  private volumeDir(container: string): string {
    return join(
      dirname(this.lab.socket),
      'storage-pools',
      this.lab.poolBtrfs,
      'containers',
      `${this.project}_${container}`,
    );
  }

  /** lstat of `inside` (a path in the container, "/" for its root) on the volume. */
  private hostLstat(container: string, inside: string): FileStat | undefined {
    const volume = this.volumeDir(container);
    const onHost = join(volume, 'rootfs', inside);
    let st;
    let base;
    try {
      // Container uid 0 is the owner of rootfs/ on disk (0 with idmapped mounts, the map's base otherwise).
      base = lstatSync(join(volume, 'rootfs'));
      st = lstatSync(onHost);
    } catch {
      return undefined;
    }
    const type = st.isSymbolicLink() ? 'SYMLINK' : st.isDirectory() ? 'DIRECTORY' : 'FILE';
    return {
      type,
      size: st.size,
      mode: st.mode & 0o7777,
      uid: st.uid - base.uid,
      gid: st.gid - base.gid,
      mtime: st.mtime,
      target: type === 'SYMLINK' ? readlinkSync(onHost) : undefined,
    };
  }

  private instanceOfDataset(name: string): InstanceState | undefined {
    const instance = this.zfs.instanceNameOf(name);
    return instance !== undefined ? this.instances.get(instance) : undefined;
  }

  private record(state: InstanceState, real: IncusInstance | undefined): InstanceRecord {
    const attached = this.attached(state.name) && real;
    const status = attached ? mapStatus(real.state?.status ?? real.status) : 'STOPPED';
    const addresses: Address[] = [];
    if (attached && status === 'RUNNING') {
      for (const [ifname, nic] of Object.entries(real.state?.network ?? {})) {
        if (ifname === 'lo') continue;
        for (const a of nic.addresses ?? []) {
          if (a.scope !== 'global') continue;
          addresses.push({
            type: a.family === 'inet6' ? 'INET6' : 'INET',
            address: a.address,
            netmask: Number(a.netmask ?? 0),
          });
        }
      }
    }
    // Incus reports the init's host PID in the state (not in the production client's types).
    const realPid = (real?.state as { pid?: number } | null | undefined)?.pid;
    const pid = attached && status === 'RUNNING' && realPid && realPid > 0 ? realPid : null;
    return instanceRecord(state, status, addresses, pid);
  }

  private datasetRecord(ds: DatasetState, running: Set<string>): DatasetRecord {
    const own = filesBytes(ds.files);
    // Real usage is not cheap to get per dataset; backed datasets report the image's unpacked size.
    const referenced = (ds.backing ? 232_000_000 : 98_304) + own;
    return this.zfs.datasetRecord(
      ds,
      ds.backing ? running.has(ds.backing) : null,
      ds.origin ? own : referenced,
      referenced,
    );
  }

  private snapshotRecord(snap: SnapshotState, sizes: Map<string, number>): SnapshotRecord {
    const backing = this.zfs.datasets.get(snap.dataset)?.backing;
    const used = backing ? (sizes.get(`${backing}/${snap.name}`) ?? 0) : 0;
    return this.zfs.snapshotRecord(snap, used, backing ? 232_000_000 : 98_304);
  }
}

function mapStatus(status: string | undefined): InstanceStatus {
  switch ((status ?? '').toLowerCase()) {
    case 'running':
      return 'RUNNING';
    case 'stopped':
      return 'STOPPED';
    case 'starting':
      return 'STARTING';
    case 'stopping':
      return 'STOPPING';
    case 'frozen':
      return 'FROZEN';
    case 'error':
      return 'ERROR';
    default:
      return 'UNKNOWN';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes every container of a simulator project, then the project. */
async function removeProject(admin: IncusRestClient, project: string): Promise<void> {
  const query = { project };
  const env = await admin.call<IncusInstance[]>('GET', '/1.0/instances', {
    query: { recursion: '1', project },
  });
  const ops = new Operations(admin, new IncusEventStream(admin, silentLogger));
  for (const inst of env.metadata) {
    if (inst.status !== 'Stopped')
      await ops
        .run('PUT', `/1.0/instances/${enc(inst.name)}/state`, {
          body: { action: 'stop', force: true },
          query,
        })
        .catch(() => undefined);
    await ops.run('DELETE', `/1.0/instances/${enc(inst.name)}`, { query }).catch(() => undefined);
  }
  await admin.call('DELETE', `/1.0/projects/${enc(project)}`).catch(() => undefined);
}

/** The factory test/sim/main.ts calls for `--engine incus`; needs the lab (test/lab/up.sh). */
export async function createIncusEngine(options: IncusEngineOptions = {}): Promise<IncusEngine> {
  const lab = options.lab ?? (await requireLab());
  const engine = new IncusEngine(lab, options);
  await engine.open();
  return engine;
}
