// The Backend interface on an Incus server (local socket or HTTPS). Every sandbox is an instance `px-<name>`;
// checkpoints are Incus snapshots.
import { randomBytes } from 'node:crypto';
import type {
  Backend,
  BackendCapabilities,
  BackendChange,
  HostGuardMode,
  HostGuardPolicy,
  HostGuardState,
  ServerInfo,
} from '../../core/backend';
import { Emitter } from '../../core/disposable';
import { generateHostKey } from '../../core/keys';
import type { Disposable } from '../../core/disposable';
import {
  AlreadyExistsError,
  MemberUnavailableError,
  NotAuthorizedError,
  NotFoundError,
  PixelsError,
  TimeoutError,
  ValidationError,
} from '../../core/errors';
import type { Logger } from '../../core/log';
import { silentLogger } from '../../core/log';
import {
  cpuProblem,
  defaultCheckpointLabel,
  memoryProblem,
  type ServerLimits,
  validateCheckpointLabel,
  validateSandboxName,
} from '../../core/names';
import { instanceName, shortName } from '../../core/sandbox';
import type {
  Checkpoint,
  CloneSource,
  CreateOptions,
  ExecResult,
  OperationOptions,
  Sandbox,
  SandboxUsage,
  StopOptions,
  WriteFileOptions,
} from '../../core/sandbox';
import { IncusEventStream } from './events';
import type { IncusEvent } from './events';
import { execInInstance } from './exec';
import type { ExecOptions } from './exec';
import { IncusFiles } from './files';
import { IncusHostGuard } from './host-guard';
import {
  cloneConfig,
  isSandboxInstance,
  newestFirst,
  toCheckpoint,
  toSandbox,
  zfsRestoreRefusal,
} from './mapping';
import { memberAwayReason, placementChoices } from './members';
import { Operations } from './operations';
import { isSnapshotRace, retryingSnapshotRace } from './snapshot-race';
import {
  ALIAS_REPLY,
  IMAGE_REPLY,
  INSTANCE_REPLY,
  INSTANCE_ROWS,
  SERVER_REPLY,
  SNAPSHOT_REPLY,
  SNAPSHOT_ROWS,
} from './replies';
import { IncusRestClient } from './rest-client';
import type { RestClientOptions } from './rest-client';
import type {
  IncusClusterMember,
  IncusInstance,
  IncusInstanceState,
  IncusServer,
  IncusSnapshot,
} from './types';

/** What Incus answers for a request it would forward to a member it cannot reach (yet). */
const MEMBER_NOT_READY = /Server isn't ready yet|Missing event connection with target cluster member/;
/** How long a request to a member that is coming back is retried: a few heartbeats. */
const MEMBER_SETTLE_MS = 10_000;

export interface IncusBackendOptions {
  serverId: string;
  connection: RestClientOptions;
  /** NIC network for new sandboxes (absent: the default profile's NIC). */
  network?: string;
  /** Root disk pool for new sandboxes (absent: the default profile's). */
  storagePool?: string;
  /** The host-side egress layer (default off). */
  hostGuard?: HostGuardMode;
}

const DEFAULT_STOP_TIMEOUT_SEC = 30;
/**
 * How often the members' status is read while the event stream is connected to a cluster: Incus sends no event when
 * a member stops answering (only its heartbeat stops), so one GET /1.0/cluster/members for all of them does it.
 */
export const MEMBER_WATCH_MS = 10_000;
/** A clean stop is re-requested this often until its timeout. */
const STOP_RETRY_SEC = 3;

const enc = encodeURIComponent;

/** 128 random bits as systemd writes them (a v4 UUID without dashes). */
function newMachineId(): string {
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return b.toString('hex');
}

export class IncusBackend implements Backend {
  readonly kind = 'incus' as const;
  readonly serverId: string;
  private readonly client: IncusRestClient;
  private readonly events: IncusEventStream;
  private readonly operations: Operations;
  private readonly files: IncusFiles;
  private readonly guard: IncusHostGuard;
  private readonly changes = new Emitter<BackendChange>();
  private unsubscribeEvents?: () => void;
  private server?: Promise<IncusServer>;
  private memberWatch?: NodeJS.Timeout;
  /** The members' statuses last read ("name=status,…"), to notice a member going away or coming back. */
  private memberStatus?: string;

  constructor(
    private readonly options: IncusBackendOptions,
    private readonly log: Logger = silentLogger,
  ) {
    this.serverId = options.serverId;
    this.client = new IncusRestClient(options.connection, log);
    this.events = new IncusEventStream(this.client, log);
    this.operations = new Operations(this.client, this.events);
    this.files = new IncusFiles(this.client);
    this.guard = new IncusHostGuard(this.client, options.hostGuard ?? 'off', log);
    this.events.onConnection((connected) => {
      if (connected) {
        this.changes.fire({ kind: 'connection' });
        void this.watchMembers();
      } else this.stopMemberWatch();
    });
  }

  // ------------------------------------------------------------------------------------------ server

  private serverInfo(): Promise<IncusServer> {
    this.server ??= this.client.call<IncusServer>('GET', '/1.0', { expect: SERVER_REPLY }).then(
      (env) => {
        // GET /1.0 answers untrusted clients too, with less in it: say so instead of half-working.
        if (env.metadata.auth === 'untrusted')
          throw new NotAuthorizedError(
            `The Incus server ${this.client.endpoint} does not trust this client certificate: add it on the server ` +
              'with `incus config trust add-certificate <client.crt>`.',
          );
        return env.metadata;
      },
      (err: unknown) => {
        this.server = undefined;
        throw err;
      },
    );
    return this.server;
  }

  private async clustered(): Promise<boolean> {
    return (await this.serverInfo()).environment?.server_clustered === true;
  }

  async info(): Promise<ServerInfo> {
    const server = await this.serverInfo();
    const info: ServerInfo = { version: `Incus ${server.environment?.server_version ?? 'unknown'}` };
    if (server.environment?.server_clustered) {
      const choices = placementChoices(await this.members());
      info.clusterMembers = choices.members;
      info.clusterGroups = choices.groups;
    }
    return info;
  }

  /** Every cluster member with its status, in one call. */
  private async members(): Promise<IncusClusterMember[]> {
    const env = await this.client.call<IncusClusterMember[]>('GET', '/1.0/cluster/members', {
      query: { recursion: '1' },
    });
    this.noteMembers(env.metadata);
    return env.metadata;
  }

  /** While the event stream is connected to a cluster: the members' status, read every MEMBER_WATCH_MS. */
  private async watchMembers(): Promise<void> {
    if (this.memberWatch || !(await this.clustered().catch(() => false))) return;
    if (this.memberWatch || !this.events.connected) return;
    this.memberWatch = setInterval(() => void this.checkMembers(), MEMBER_WATCH_MS);
    this.memberWatch.unref?.();
  }

  private stopMemberWatch(): void {
    clearInterval(this.memberWatch);
    this.memberWatch = undefined;
  }

  /** A member whose status changed (away, back) changes its sandboxes' rows: said like any other change. */
  private async checkMembers(): Promise<void> {
    const before = this.memberStatus;
    await this.members().catch(() => undefined);
    if (before !== undefined && this.memberStatus !== before) this.changes.fire({ kind: 'sandbox' });
  }

  /** Remembers the statuses (a list that already read them has shown the change; the watch need not say it). */
  private noteMembers(members: IncusClusterMember[]): void {
    this.memberStatus = members.map((m) => `${m.server_name}=${m.status ?? ''}`).join(',');
    this.client.setClusterMembers(members.flatMap((m) => (m.status === 'Online' && m.url ? [m.url] : [])));
  }

  /**
   * Runs work on one sandbox; when it fails because the cluster member the sandbox lives on is away, the error
   * says so (Incus answers "Server isn't ready yet" or "Missing event connection" for such a member).
   */
  private async onMember<T>(name: string, work: () => Promise<T>): Promise<T> {
    // A member that just came back is online before the others have their event connection to it; Incus refuses
    // what it would forward there for a moment, before anything is done. That moment is waited out (bounded).
    const deadline = Date.now() + MEMBER_SETTLE_MS;
    for (;;) {
      try {
        return await work();
      } catch (err) {
        const explained = await this.memberAwayError(name, err);
        // A member the cluster knows is away is said at once; one it still counts as online is waited for.
        if (
          !(explained instanceof MemberUnavailableError) &&
          err instanceof PixelsError &&
          MEMBER_NOT_READY.test(err.message) &&
          Date.now() < deadline
        ) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw explained;
      }
    }
  }

  private async memberAwayError(name: string, err: unknown): Promise<unknown> {
    if (
      !(err instanceof PixelsError) ||
      err instanceof MemberUnavailableError ||
      ['not-found', 'validation', 'already-exists', 'cancelled', 'not-authorized'].includes(err.kind)
    )
      return err;
    try {
      if (!(await this.clustered())) return err;
      // The cluster's database knows where the instance is without asking that member (recursion=1).
      const rows = await this.client.call<IncusInstance[]>('GET', '/1.0/instances', {
        query: { recursion: '1', filter: `name eq ${instanceName(name)}` },
      });
      const location = rows.metadata[0]?.location;
      if (!location) return err;
      const member = (await this.members()).find((m) => m.server_name === location);
      const reason = memberAwayReason(member, location);
      if (!reason) return err;
      return new MemberUnavailableError(
        `Sandbox "${name}" cannot be reached: ${reason}. Nothing was changed; the sandboxes on the other ` +
          `members keep working. Try again when ${location} is back.`,
        location,
        { cause: err },
      );
    } catch {
      return err;
    }
  }

  /**
   * The host's threads and memory (/1.0/resources). In a cluster a sandbox lands on one member, so the limit is
   * the largest member's (each asked with ?target=).
   */
  async limits(): Promise<ServerLimits> {
    type Resources = { cpu?: { total?: number }; memory?: { total?: number } };
    const members = (await this.clustered()) ? ((await this.info()).clusterMembers ?? []) : [undefined];
    const all = await Promise.all(
      members.map((target) =>
        this.client.call<Resources>('GET', '/1.0/resources', target ? { query: { target } } : {}),
      ),
    );
    const max = (values: (number | undefined)[]) => {
      const known = values.filter((v): v is number => typeof v === 'number' && v > 0);
      return known.length ? Math.max(...known) : undefined;
    };
    const memory = max(all.map((r) => r.metadata.memory?.total));
    return {
      cpus: max(all.map((r) => r.metadata.cpu?.total)),
      memoryMiB: memory !== undefined ? Math.floor(memory / 1024 ** 2) : undefined,
    };
  }

  async capabilities(): Promise<BackendCapabilities> {
    return {
      restoreAnyCheckpoint: true,
      cloneFromCheckpoint: true,
      cloneFromCurrentState: true,
      writeFiles: true,
      writesResolveInSandbox: true,
      exec: true,
      cancel: true,
      clusterMembers: await this.clustered(),
      events: true,
    };
  }

  // ------------------------------------------------------------------------------------------ sandboxes

  async list(): Promise<Sandbox[]> {
    // One call: recursion=2 brings state (status, addresses) and snapshots with every instance, from every
    // cluster member (members that are away answer from the database, status "Error"). On a cluster a second
    // call, at the same time, says which members are away: two round trips whatever the member count.
    const clustered = await this.clustered();
    const [env, members] = await Promise.all([
      this.client.call<IncusInstance[]>('GET', '/1.0/instances', {
        query: { recursion: '2' },
        expect: INSTANCE_ROWS,
      }),
      clustered ? this.members() : Promise.resolve([]),
    ]);
    const byName = new Map(members.map((m) => [m.server_name, m]));
    return env.metadata
      .filter((i) => isSandboxInstance(i.name))
      .map((i) => {
        const sandbox = toSandbox(i, clustered);
        if (sandbox.location) {
          const away = memberAwayReason(byName.get(sandbox.location), sandbox.location);
          if (away) {
            sandbox.memberAway = away;
            // What Incus reports for it is the member's silence, not the sandbox's state.
            if (sandbox.status === 'error') sandbox.status = 'unknown';
          }
        }
        return sandbox;
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<Sandbox> {
    return this.onMember(name, async () => {
      const [inst, clustered] = await Promise.all([this.instance(name), this.clustered()]);
      return toSandbox(inst, clustered);
    });
  }

  /** The full instance (state + snapshots) or a NotFoundError that names the sandbox. */
  private async instance(name: string): Promise<IncusInstance> {
    validateSandboxName(name);
    try {
      const env = await this.client.call<IncusInstance>('GET', `/1.0/instances/${enc(instanceName(name))}`, {
        query: { recursion: '1' },
        expect: INSTANCE_REPLY,
      });
      return env.metadata;
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new NotFoundError(`Sandbox "${name}" does not exist on ${this.serverId}.`, { cause: err });
      throw err;
    }
  }

  /** GET …/state: cpu.usage (ns), memory.usage, disk.root.usage (pools that track it), processes. */
  async usage(name: string): Promise<SandboxUsage> {
    validateSandboxName(name);
    const env = await this.onMember(name, () =>
      this.client.call<IncusInstanceState>('GET', `/1.0/instances/${enc(instanceName(name))}/state`),
    );
    const st = env.metadata;
    const positive = (n: number | undefined) => (typeof n === 'number' && n >= 0 ? n : undefined);
    return {
      cpuSeconds: st.cpu?.usage !== undefined ? st.cpu.usage / 1e9 : undefined,
      memoryBytes: positive(st.memory?.usage),
      diskBytes: positive(st.disk?.root?.usage),
      processes: positive(st.processes),
      sampledAt: Date.now(),
    };
  }

  private async exists(name: string): Promise<boolean> {
    const res = await this.client.raw('GET', `/1.0/instances/${enc(instanceName(name))}`);
    return res.status === 200;
  }

  /** Image alias or (partial) fingerprint -> fingerprint, with a clear error when neither exists. */
  private async resolveImage(image: string): Promise<string> {
    if (!image.trim())
      throw new ValidationError('An image is required.', [{ field: 'image', message: 'empty' }]);
    try {
      const alias = await this.client.call<{ target: string }>('GET', `/1.0/images/aliases/${enc(image)}`, {
        expect: ALIAS_REPLY,
      });
      return alias.metadata.target;
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    if (/^[0-9a-f]{8,64}$/i.test(image)) {
      try {
        const img = await this.client.call<{ fingerprint: string }>(
          'GET',
          `/1.0/images/${enc(image.toLowerCase())}`,
          { expect: IMAGE_REPLY },
        );
        return img.metadata.fingerprint;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    throw new NotFoundError(
      `Image "${image}" does not exist on ${this.serverId}: no image alias or fingerprint matches it.`,
    );
  }

  async create(options: CreateOptions, op?: OperationOptions): Promise<Sandbox> {
    validateSandboxName(options.name);
    const problems = [
      options.memoryMiB !== undefined ? memoryProblem(options.memoryMiB) : undefined,
      options.cpu !== undefined ? cpuProblem(options.cpu) : undefined,
    ];
    if (problems[0]) throw new ValidationError(problems[0], [{ field: 'memoryMiB', message: problems[0] }]);
    if (problems[1]) throw new ValidationError(problems[1], [{ field: 'cpu', message: problems[1] }]);
    if (await this.exists(options.name))
      throw new AlreadyExistsError(`Sandbox "${options.name}" already exists on ${this.serverId}.`);
    const fingerprint = await this.resolveImage(options.image);

    const config: Record<string, string> = {};
    if (options.cpu) config['limits.cpu'] = options.cpu;
    if (options.memoryMiB) config['limits.memory'] = `${options.memoryMiB}MiB`;
    for (const [k, v] of Object.entries(options.environment ?? {})) config[`environment.${k}`] = v;
    const devices: Record<string, Record<string, string>> = {};
    const network = options.nic?.network ?? this.options.network;
    if (network) devices.eth0 = { type: 'nic', name: 'eth0', network };
    if (this.options.storagePool) devices.root = { type: 'disk', path: '/', pool: this.options.storagePool };

    const inst = instanceName(options.name);
    op?.onProgress?.({ description: `Creating ${inst}` });
    try {
      await this.operations.run(
        'POST',
        '/1.0/instances',
        {
          body: { name: inst, type: 'container', source: { type: 'image', fingerprint }, config, devices },
          query: { target: options.target },
        },
        op,
      );
    } catch (err) {
      // Someone else made that name meanwhile: theirs, not ours to remove.
      if (!(err instanceof AlreadyExistsError)) await this.removeHalfMade(options.name);
      throw this.explainPlacementError(err, options.target);
    }
    if (options.start !== false) {
      try {
        await this.start(options.name, op);
      } catch (err) {
        await this.removeHalfMade(options.name);
        throw err;
      }
    }
    return this.get(options.name);
  }

  /** A create or clone aimed at a member (or group) that does not exist, said in our words. */
  private explainPlacementError(err: unknown, target: string | undefined): unknown {
    if (!(err instanceof PixelsError) || !target) return err;
    if (!/member|node|group/i.test(err.message) || !/not found|doesn't exist|not exist/i.test(err.message))
      return err;
    return new NotFoundError(
      target.startsWith('@')
        ? `Cluster member group "${target.slice(1)}" does not exist on ${this.serverId}.`
        : `Cluster member "${target}" does not exist on ${this.serverId}.`,
      { cause: err },
    );
  }

  /** Deletes what a failed create/clone left behind, so nothing stays half-made. */
  private async removeHalfMade(name: string): Promise<void> {
    try {
      if (await this.exists(name)) await this.destroy(name);
    } catch (err) {
      this.log.warn(`could not remove the half-made sandbox ${name}: ${(err as Error).message}`);
    }
  }

  private async changeState(
    name: string,
    body: { action: 'start' | 'stop' | 'restart'; timeout?: number; force?: boolean },
    op?: OperationOptions,
  ): Promise<void> {
    validateSandboxName(name);
    try {
      await this.onMember(name, () =>
        this.operations.run('PUT', `/1.0/instances/${enc(instanceName(name))}/state`, { body }, op),
      );
    } catch (err) {
      if (err instanceof NotFoundError && /instance/i.test(err.message))
        throw new NotFoundError(`Sandbox "${name}" does not exist on ${this.serverId}.`, { cause: err });
      throw err;
    }
  }

  async start(name: string, op?: OperationOptions): Promise<void> {
    try {
      await this.changeState(name, { action: 'start' }, op);
    } catch (err) {
      if (err instanceof PixelsError && /already running/i.test(err.message)) return;
      throw err;
    }
  }

  async stop(name: string, options: StopOptions = {}, op?: OperationOptions): Promise<void> {
    try {
      if (options.force && options.timeoutSec === undefined) {
        await this.changeState(name, { action: 'stop', force: true }, op);
        return;
      }
      const timeout = options.timeoutSec ?? DEFAULT_STOP_TIMEOUT_SEC;
      const deadline = Date.now() + timeout * 1000;
      // The clean shutdown is asked for again every few seconds: an init that was still starting (a stop right
      // after a start) never sees the first halt signal, and would otherwise sit out the whole timeout.
      for (;;) {
        const slice = Math.max(1, Math.min(STOP_RETRY_SEC, Math.ceil((deadline - Date.now()) / 1000)));
        try {
          await this.changeState(name, { action: 'stop', timeout: slice, force: false }, op);
          return;
        } catch (err) {
          if (!(err instanceof PixelsError) || !/timed? ?out|timeout|deadline exceeded/i.test(err.message))
            throw err;
          if (Date.now() < deadline - 500) continue;
          if (!options.force)
            throw new TimeoutError(`Sandbox "${name}" did not shut down within ${timeout} s.`, {
              cause: err,
            });
          await this.changeState(name, { action: 'stop', force: true }, op);
          return;
        }
      }
    } catch (err) {
      if (err instanceof PixelsError && /already stopped|not running/i.test(err.message)) return;
      throw err;
    }
  }

  async restart(name: string, options: StopOptions = {}, op?: OperationOptions): Promise<void> {
    const inst = await this.onMember(name, () => this.instance(name));
    if (inst.status.toLowerCase() !== 'running') return this.start(name, op);
    await this.stop(name, options, op);
    await this.start(name, op);
  }

  async destroy(name: string, op?: OperationOptions): Promise<void> {
    const inst = await this.onMember(name, () => this.instance(name));
    if (inst.status.toLowerCase() !== 'stopped') await this.stop(name, { force: true }, op);
    // Deleting the instance deletes its snapshots too.
    await this.onMember(name, () =>
      this.operations.run('DELETE', `/1.0/instances/${enc(inst.name)}`, {}, op),
    );
    try {
      await this.guard.forget(inst.name);
    } catch (err) {
      // The sandbox is gone; a stale exception is reported, and dropped again at the next sync.
      this.log.warn(
        `host guard: could not drop the exceptions of ${inst.name}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  async syncHostGuard(name: string, policy: HostGuardPolicy): Promise<HostGuardState> {
    validateSandboxName(name);
    return this.guard.sync(instanceName(name), policy);
  }

  // ------------------------------------------------------------------------------------------ checkpoints

  async listCheckpoints(name: string): Promise<Checkpoint[]> {
    validateSandboxName(name);
    // The snapshots collection reports sizes (list()'s recursion=2 does not); still one call.
    try {
      const env = await this.client.call<IncusSnapshot[]>(
        'GET',
        `/1.0/instances/${enc(instanceName(name))}/snapshots`,
        {
          query: { recursion: '1' },
          expect: SNAPSHOT_ROWS,
        },
      );
      return newestFirst(env.metadata.map((s) => toCheckpoint(name, s)));
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new NotFoundError(`Sandbox "${name}" does not exist on ${this.serverId}.`, { cause: err });
      throw await this.memberAwayError(name, err);
    }
  }

  /** An operation Incus may refuse while another snapshot of the same instance is half recorded (snapshot-race.ts). */
  private snapshotRaceRetried<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return retryingSnapshotRace(attempt, (n) =>
      this.log.info(`${what}: Incus was recording another snapshot of the instance; trying again (${n})`),
    );
  }

  async createCheckpoint(name: string, label?: string): Promise<Checkpoint> {
    const snap = label ?? defaultCheckpointLabel();
    validateCheckpointLabel(snap);
    const inst = await this.onMember(name, () => this.instance(name));
    if ((inst.snapshots ?? []).some((s) => toCheckpoint(name, s).label === snap))
      throw new AlreadyExistsError(`Sandbox "${name}" already has a checkpoint "${snap}".`);
    await this.onMember(name, () =>
      this.snapshotRaceRetried(`checkpoint ${inst.name}/${snap}`, () =>
        this.operations.run('POST', `/1.0/instances/${enc(inst.name)}/snapshots`, {
          body: { name: snap, stateful: false },
        }),
      ),
    );
    const env = await this.client.call<IncusSnapshot>(
      'GET',
      `/1.0/instances/${enc(inst.name)}/snapshots/${enc(snap)}`,
      { expect: SNAPSHOT_REPLY },
    );
    return toCheckpoint(name, env.metadata);
  }

  private async snapshotOf(
    name: string,
    label: string,
  ): Promise<{ inst: IncusInstance; checkpoint: Checkpoint }> {
    validateCheckpointLabel(label);
    const inst = await this.onMember(name, () => this.instance(name));
    const snap = (inst.snapshots ?? []).find((s) => toCheckpoint(name, s).label === label);
    if (!snap) throw new NotFoundError(`Sandbox "${name}" has no checkpoint "${label}".`);
    return { inst, checkpoint: toCheckpoint(name, snap) };
  }

  async restoreCheckpoint(name: string, label: string, op?: OperationOptions): Promise<void> {
    const { inst, checkpoint } = await this.snapshotOf(name, label);
    // Incus restores any snapshot (a running instance is stopped and started again around it). On ZFS it may
    // refuse first, before stopping anything: then say why in our words.
    try {
      await this.snapshotRaceRetried(`restore ${inst.name}/${label}`, () =>
        this.operations.run('PUT', `/1.0/instances/${enc(inst.name)}`, { body: { restore: label } }, op),
      );
    } catch (err) {
      throw zfsRestoreRefusal(err, name, label) ?? (await this.memberAwayError(name, err));
    }
    // The contract (same as a ZFS rollback on TrueNAS): checkpoints newer than the restored one are gone.
    const newer = (inst.snapshots ?? [])
      .map((s) => toCheckpoint(name, s))
      .filter((c) => c.createdAt.getTime() > checkpoint.createdAt.getTime());
    for (const c of newer) await this.deleteCheckpoint(name, c.label);
  }

  async deleteCheckpoint(name: string, label: string): Promise<void> {
    validateSandboxName(name);
    validateCheckpointLabel(label);
    try {
      // Incus deletes the snapshot before it rewrites the parent's backup.yaml, so an attempt refused by the race
      // has already deleted it: after one, "not found" is the deletion done.
      let raced = false;
      await this.snapshotRaceRetried(`delete ${instanceName(name)}/${label}`, async () => {
        try {
          await this.operations.run(
            'DELETE',
            `/1.0/instances/${enc(instanceName(name))}/snapshots/${enc(label)}`,
            {},
          );
        } catch (err) {
          if (raced && err instanceof NotFoundError) return;
          raced ||= isSnapshotRace(err);
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new NotFoundError(`Sandbox "${name}" has no checkpoint "${label}".`, { cause: err });
      throw await this.memberAwayError(name, err);
    }
  }

  async clone(source: CloneSource, newName: string, op?: OperationOptions): Promise<Sandbox> {
    validateSandboxName(source.sandbox);
    validateSandboxName(newName);
    if (source.checkpoint !== undefined) validateCheckpointLabel(source.checkpoint);
    const src = instanceName(source.sandbox);
    const [taken, from] = await Promise.all([
      this.exists(newName),
      this.onMember<IncusInstance | IncusSnapshot>(source.sandbox, () =>
        source.checkpoint
          ? this.snapshotConfig(source.sandbox, source.checkpoint)
          : this.instance(source.sandbox),
      ),
    ]);
    if (taken) throw new AlreadyExistsError(`Sandbox "${newName}" already exists on ${this.serverId}.`);
    const inst = instanceName(newName);
    const began = Date.now();
    op?.onProgress?.({
      description: `Copying ${source.checkpoint ? `${src}/${source.checkpoint}` : src} to ${inst}`,
    });
    try {
      await this.operations.run(
        'POST',
        '/1.0/instances',
        {
          body: {
            name: inst,
            type: 'container',
            // A copy to another cluster member is a migration, which needs the architecture said.
            architecture: from.architecture,
            source: {
              type: 'copy',
              source: source.checkpoint ? `${src}/${source.checkpoint}` : src,
              instance_only: true,
            },
            // Explicit config without the source's volatile identity (MAC, uuid, idmap): the copy gets its own.
            config: cloneConfig(from.config ?? {}),
            devices: from.devices ?? {},
            profiles: from.profiles ?? ['default'],
          },
          // On a cluster Incus copies it to that member (another member's copy goes over the cluster network).
          query: { target: source.target },
        },
        op,
      );
      const copied = Date.now();
      op?.onProgress?.({ description: `Giving ${inst} its own identity` });
      await this.reseal(inst);
      const resealed = Date.now();
      await this.start(newName, op);
      this.log.debug(
        `clone ${inst}: copied in ${copied - began} ms, resealed in ${resealed - copied} ms, started in ${Date.now() - resealed} ms`,
      );
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) await this.removeHalfMade(newName);
      throw this.explainPlacementError(err, source.target);
    }
    return this.get(newName);
  }

  private async snapshotConfig(name: string, label: string): Promise<IncusSnapshot> {
    try {
      const env = await this.client.call<IncusSnapshot>(
        'GET',
        `/1.0/instances/${enc(instanceName(name))}/snapshots/${enc(label)}`,
        { expect: SNAPSHOT_REPLY },
      );
      return env.metadata;
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new NotFoundError(`Sandbox "${name}" has no checkpoint "${label}".`, { cause: err });
      throw err;
    }
  }

  /**
   * Before the clone's first boot: a fresh machine-id (written here, not left empty: an empty one makes systemd
   * run its first-boot presets on every clone) and a new SSH host key made here rather than by ssh-keygen -A at
   * boot (RSA generation alone adds ~0.4 s to each clone's start). The source's other host keys are removed.
   * Hostname and /etc/hosts come from the image templates Incus applies on copy; the MAC from leaving the
   * volatile keys out of the copy's config.
   * Cost: each file call on a stopped instance ends with a syncfs in Incus' forkfile helper; when one is still
   * running as the start begins, Incus waits a full second for it (seen only when the pool is busy).
   */
  private async reseal(inst: string): Promise<void> {
    const [entries] = await Promise.all([
      this.files.list(inst, '/etc/ssh').catch((err: unknown) => {
        if (err instanceof NotFoundError) return [] as string[];
        throw err;
      }),
      this.files.write(inst, '/etc/machine-id', Buffer.from(`${newMachineId()}\n`), { mode: 0o444 }),
      this.files.remove(inst, '/var/lib/dbus/machine-id'),
    ]);
    if (!entries.includes('sshd_config')) return; // no OpenSSH server in this image
    const key = generateHostKey(`root@${inst}`);
    const ours = ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub'];
    await Promise.all([
      ...entries
        .filter((e) => e.startsWith('ssh_host_') && !ours.includes(e))
        .map((e) => this.files.remove(inst, `/etc/ssh/${e}`)),
      this.files.write(inst, '/etc/ssh/ssh_host_ed25519_key', Buffer.from(key.privateOpenSsh), {
        mode: 0o600,
      }),
      this.files.write(inst, '/etc/ssh/ssh_host_ed25519_key.pub', Buffer.from(`${key.publicOpenSsh}\n`), {
        mode: 0o644,
      }),
    ]);
  }

  // ------------------------------------------------------------------------------------------ guest access

  async writeFile(name: string, path: string, content: Buffer, options?: WriteFileOptions): Promise<void> {
    validateSandboxName(name);
    try {
      await this.files.write(instanceName(name), path, content, options);
    } catch (err) {
      if (err instanceof NotFoundError && /^There is no instance /.test(err.message))
        throw new NotFoundError(`Sandbox "${name}" does not exist on ${this.serverId}.`, { cause: err });
      throw await this.memberAwayError(name, err);
    }
  }

  /** Reads a file from the sandbox (tests and diagnostics). */
  async readFile(name: string, path: string): Promise<Buffer> {
    validateSandboxName(name);
    return this.onMember(name, () => this.files.read(instanceName(name), path));
  }

  async exec(name: string, argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    validateSandboxName(name);
    return this.onMember(name, () =>
      execInInstance(this.client, this.operations, instanceName(name), argv, options),
    );
  }

  // ------------------------------------------------------------------------------------------ events

  readonly onDidChange = (listener: (change: BackendChange) => void): Disposable => {
    const sub = this.changes.event(listener);
    this.unsubscribeEvents ??= this.events.subscribe((e) => this.onEvent(e));
    return sub;
  };

  private onEvent(event: IncusEvent): void {
    if (event.type !== 'lifecycle') return;
    const action = String(event.metadata.action ?? '');
    // A member evacuated, restored, joined or left: its sandboxes' rows change (moved, away, back).
    if (action.startsWith('cluster-member-')) {
      this.changes.fire({ kind: 'sandbox' });
      return;
    }
    if (event.project && event.project !== this.client.project) return;
    const source = String(event.metadata.source ?? '');
    const m = /^\/1\.0\/instances\/([^/?]+)(\/snapshots\/)?/.exec(source);
    if (!m) return;
    const inst = decodeURIComponent(m[1]);
    if (!isSandboxInstance(inst)) return;
    this.changes.fire({
      kind: m[2] || action.startsWith('instance-snapshot') ? 'checkpoint' : 'sandbox',
      name: shortName(inst),
    });
  }

  dispose(): void {
    this.stopMemberWatch();
    this.unsubscribeEvents?.();
    this.events.dispose();
    this.changes.dispose();
    this.client.close();
  }
}
