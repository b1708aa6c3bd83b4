// Checkpoints of TrueNAS 26 containers: ZFS snapshots of `<pool>/.truenas_containers/containers/px-<name>`.
// BETA.3 allows zfs.resource.snapshot.* there; from RC.1 the path is protected and every write is refused
// (truenas-26.md §4.2). The opt-in host-job route runs the zfs command in a disabled cron job, run once and
// deleted (pixels' 25.x trick, §4.5): it bypasses the guard, at the cost of a root cron job on the NAS per step.
import { NotFoundError, ServerError, UnsupportedError, ValidationError } from '../../core/errors';
import { rowsWith } from '../../core/reply-shape';
import type { TrueNASClient } from './client';
import { isProtectedPathRefusal, type ResourceSnapshot } from './container-model';

const SNAPSHOT_ROWS = rowsWith({ name: 'string', dataset: 'string', snapshot_name: 'string' });
const PROPERTIES = ['referenced', 'creation'];

/** Whether the server lets the public API snapshot container datasets: found out once, by trying. */
export type SnapshotSupport =
  | { state: 'unknown' }
  | { state: 'api' }
  | { state: 'refused'; reason: string }
  | { state: 'host-job'; reason: string };

/** Dataset and snapshot names we pass to a shell: what ZFS and our validators allow, nothing a shell reads. */
export function shellSafe(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:@/-]*$/.test(name))
    throw new ServerError(`Refusing to pass "${name}" to a host job.`);
  return name;
}

export class ContainerSnapshots {
  constructor(
    private readonly client: TrueNASClient,
    private readonly hostJobs: boolean,
  ) {}

  /** Queries work on every 26 build (no internal-path filter with explicit paths). */
  query(paths: string[], recursive: boolean, context: string): Promise<ResourceSnapshot[]> {
    if (!paths.length) return Promise.resolve([]);
    return this.client.call<ResourceSnapshot[]>(
      'zfs.resource.snapshot.query',
      [{ paths, recursive, properties: PROPERTIES }],
      { context, expect: SNAPSHOT_ROWS, idempotent: true },
    );
  }

  /**
   * The probe: destroying a snapshot that does not exist. The guard runs before anything else (RC.1
   * `snapshot_crud.py destroy_impl`), so a protected path answers "protected path" and an open one succeeds (the
   * channel program matches no snapshot) or says "not found"; nothing is changed either way. Undefined when the
   * answer says neither (unreachable, an unknown method): asked again next time.
   */
  async probe(dataset: string, version: string): Promise<SnapshotSupport | undefined> {
    const path = `${dataset}@px-probe-${Date.now().toString(36)}`;
    try {
      await this.client.call('zfs.resource.snapshot.destroy', [{ path }], {
        context: 'Checking whether checkpoints are allowed',
      });
      return { state: 'api' };
    } catch (err) {
      if (isProtectedPathRefusal(err)) return this.refused(version);
      // Refused for another reason about the path itself: the API does look at container datasets.
      if (err instanceof NotFoundError || err instanceof ValidationError) return { state: 'api' };
      // Unreachable, or an answer that says nothing about the guard: ask again next time.
      return undefined;
    }
  }

  refused(version: string): SnapshotSupport {
    const base = `TrueNAS ${version} protects container datasets from the snapshot API ("is a protected path")`;
    return this.hostJobs
      ? {
          state: 'host-job',
          reason: `${base}; checkpoints run as one-off cron jobs on the NAS (setting on).`,
        }
      : {
          state: 'refused',
          reason:
            `Checkpoints are not available: ${base}. Turn on the server setting "Checkpoints through host ` +
            'jobs" to take them with a one-off root cron job on the NAS instead.',
        };
  }

  async create(support: SnapshotSupport, dataset: string, label: string, context: string): Promise<void> {
    if (support.state === 'host-job')
      return this.hostJob(`zfs snapshot ${shellSafe(`${dataset}@${label}`)}`, context);
    this.refuseIfRefused(support);
    await this.client.call('zfs.resource.snapshot.create', [{ dataset, name: label }], { context });
  }

  /** Destroys newer snapshots (zfs rollback -r); never their clones. */
  async rollback(support: SnapshotSupport, path: string, context: string): Promise<void> {
    if (support.state === 'host-job') return this.hostJob(`zfs rollback -r ${shellSafe(path)}`, context);
    this.refuseIfRefused(support);
    await this.client.call('zfs.resource.snapshot.rollback', [{ path, recursive: true }], { context });
  }

  /** `defer`: kept until its last clone goes (a clone's hidden origin). */
  async destroy(support: SnapshotSupport, path: string, context: string, defer = false): Promise<void> {
    if (support.state === 'host-job')
      return this.hostJob(`zfs destroy ${defer ? '-d ' : ''}${shellSafe(path)}`, context);
    this.refuseIfRefused(support);
    await this.client.call('zfs.resource.snapshot.destroy', [{ path, defer }], { context });
  }

  /** Every snapshot of a dataset, at once (one ZFS operation: none go if one cannot). */
  async destroyAll(support: SnapshotSupport, dataset: string, context: string): Promise<void> {
    if (support.state === 'host-job')
      return this.hostJob(`zfs destroy ${shellSafe(`${dataset}@%`)}`, context);
    this.refuseIfRefused(support);
    await this.client.call('zfs.resource.snapshot.destroy', [{ path: dataset, all_snapshots: true }], {
      context,
    });
  }

  /**
   * Replaces the (empty, stopped) dataset `target` with a clone of `snapshot`. API: non-recursive destroy, then
   * pool.snapshot.clone, which also mounts it (zfs.resource.snapshot.clone does not, §4.4).
   */
  async replaceWithClone(
    support: SnapshotSupport,
    snapshot: string,
    target: string,
    context: string,
  ): Promise<void> {
    if (support.state === 'host-job')
      return this.hostJob(
        `zfs destroy ${shellSafe(target)} && zfs clone ${shellSafe(snapshot)} ${target}`,
        context,
      );
    this.refuseIfRefused(support);
    await this.client.call('zfs.resource.destroy', [{ path: target }], { context });
    await this.client.call('pool.snapshot.clone', [{ snapshot, dataset_dst: target }], { context });
  }

  private refuseIfRefused(support: SnapshotSupport): void {
    if (support.state === 'refused') throw new UnsupportedError(support.reason);
  }

  /** A disabled root cron job, run once (a job: its failure is the command's) and always deleted. */
  private async hostJob(command: string, context: string): Promise<void> {
    const job = await this.client.call<{ id: number }>(
      'cronjob.create',
      [
        {
          user: 'root',
          command,
          description: 'Pixels checkpoint (one-off; deleted after it runs)',
          enabled: false,
          stdout: false,
          stderr: false,
          schedule: { minute: '0', hour: '0', dom: '1', month: '1', dow: '*' },
        },
      ],
      { context },
    );
    try {
      await this.client.callJob('cronjob.run', [job.id, false], { context });
    } finally {
      await this.client
        .call('cronjob.delete', [job.id], { context: `${context}: removing the one-off cron job` })
        .catch(() => undefined);
    }
  }
}
