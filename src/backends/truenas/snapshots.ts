// ZFS snapshots (checkpoints) and dataset surgery through the API family of the server:
// 25.04 zfs.snapshot.* (+ private zfs.dataset.delete), 25.10 pool.snapshot.* (+ pool.dataset.rename/delete).
import { rowsWith } from '../../core/reply-shape';
import type { Checkpoint } from '../../core/sandbox';
import type { TrueNASClient } from './client';
import type { VirtFamily } from './version';

/** The native properties we read; `clones`/`defer_destroy` tell which snapshots a clone depends on. */
export const SNAPSHOT_PROPERTIES = ['used', 'referenced', 'creation', 'clones', 'defer_destroy'];
/** What a checkpoint row needs (size, time, hidden while a deferred destroy waits): a full list of a big server
 *  moves a third less than with every property above. */
export const LIST_PROPERTIES = ['referenced', 'creation', 'defer_destroy'];
/**
 * The top-level fields a list reads: `id` is `<dataset>@<label>`, so dataset and snapshot_name stay home with
 * name, pool, type and createtxg. The snapshot queries of every version take `select` out of the options and keep
 * only these top-level keys of each row afterwards (zfs_/snapshot.py 25.04/25.10, pool_/snapshot.py 26): dotted
 * names select nothing there, so the properties come whole (extra.properties is what trims them).
 */
export const LIST_FIELDS = ['id', 'properties'];

interface ZfsProperty {
  value?: string | null;
  rawvalue?: string | null;
  parsed?: unknown;
}

export interface SnapshotEntry {
  id: string;
  name?: string;
  dataset: string;
  snapshot_name?: string;
  /** The transaction group that made it (a string on every version): orders snapshots of one dataset. */
  createtxg?: string | number;
  properties?: Record<string, ZfsProperty | undefined>;
}

/** The fields of snapshot query rows that the checkpoint mapping reads. */
const SNAPSHOT_ROWS = rowsWith({
  id: 'string',
  name: 'string?',
  dataset: 'string',
  snapshot_name: 'string?',
  properties: 'object?',
});

/** A row of the list query: only LIST_FIELDS (a server that ignores `select` sends more; it is not read). */
export interface ListedSnapshot {
  id: string;
  properties?: SnapshotEntry['properties'];
}
const LISTED_ROWS = rowsWith({ id: 'string', properties: 'object?' });

/** The dataset of a snapshot id (`<dataset>@<label>`; neither part may contain "@"). */
export function datasetOfId(id: string): string {
  return id.slice(0, id.indexOf('@'));
}

/** createtxg as a number (top-level, else the property), or undefined when the server sent neither. */
export function createTxg(entry: SnapshotEntry): number | undefined {
  const prop = entry.properties?.createtxg;
  const raw = entry.createtxg ?? prop?.rawvalue ?? prop?.value;
  const n = Number(raw);
  return raw !== undefined && raw !== null && raw !== '' && Number.isFinite(n) ? n : undefined;
}

export function snapshotLabel(entry: SnapshotEntry | ListedSnapshot): string {
  return (
    ('snapshot_name' in entry ? entry.snapshot_name : undefined) ?? entry.id.slice(entry.id.indexOf('@') + 1)
  );
}

/** Bytes from `{parsed, rawvalue}`. */
function bytes(prop: ZfsProperty | undefined): number | undefined {
  if (!prop) return undefined;
  if (typeof prop.parsed === 'number') return prop.parsed;
  const n = Number(prop.rawvalue);
  return Number.isFinite(n) && prop.rawvalue !== null && prop.rawvalue !== '' ? n : undefined;
}

/** The real creation time: `parsed` is `{"$date": ms}`, `rawvalue` is seconds since the epoch. */
export function creationDate(entry: SnapshotEntry | ListedSnapshot): Date | undefined {
  const prop = entry.properties?.creation;
  if (!prop) return undefined;
  const parsed = prop.parsed as { $date?: number } | number | string | null | undefined;
  if (parsed && typeof parsed === 'object' && typeof parsed.$date === 'number') return new Date(parsed.$date);
  const seconds = Number(prop.rawvalue);
  if (prop.rawvalue && Number.isFinite(seconds)) return new Date(seconds * 1000);
  if (typeof parsed === 'number') return new Date(parsed * 1000);
  const fromText = prop.value ? Date.parse(prop.value) : NaN;
  return Number.isFinite(fromText) ? new Date(fromText) : undefined;
}

/** Datasets cloned from this snapshot (`clones` is a comma-separated list). */
export function snapshotClones(entry: SnapshotEntry): string[] {
  const prop = entry.properties?.clones;
  const raw = prop?.parsed ?? prop?.rawvalue ?? prop?.value;
  if (Array.isArray(raw)) return raw.map(String).filter(Boolean);
  if (typeof raw !== 'string' || raw === '-' || raw === '') return [];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Marked for deferred destroy: an internal clone origin that ZFS removes with its last clone. */
export function isDeferredDestroy(entry: SnapshotEntry | ListedSnapshot): boolean {
  const prop = entry.properties?.defer_destroy;
  const v = prop?.parsed ?? prop?.rawvalue ?? prop?.value;
  return v === true || v === 'on' || v === 'yes';
}

export function toCheckpoint(sandbox: string, entry: SnapshotEntry | ListedSnapshot): Checkpoint {
  return {
    sandbox,
    label: snapshotLabel(entry),
    sizeBytes: bytes(entry.properties?.referenced),
    createdAt: creationDate(entry) ?? new Date(NaN),
  };
}

/** Newest first; ties keep the server's order. */
export function sortNewestFirst(list: Checkpoint[]): Checkpoint[] {
  return list
    .map((c, i) => ({ c, i }))
    .sort((a, b) => b.c.createdAt.getTime() - a.c.createdAt.getTime() || b.i - a.i)
    .map((x) => x.c);
}

export class SnapshotApi {
  private readonly ns: string;

  constructor(
    private readonly client: TrueNASClient,
    readonly family: VirtFamily,
  ) {
    this.ns = family === 'virt-25.04' ? 'zfs.snapshot' : 'pool.snapshot';
  }

  /** The event collection for snapshot changes. */
  get eventName(): string {
    return `${this.ns}.query`;
  }

  query(filters: unknown[], context: string): Promise<SnapshotEntry[]> {
    return this.client.call<SnapshotEntry[]>(
      `${this.ns}.query`,
      [filters, { extra: { properties: SNAPSHOT_PROPERTIES } }],
      { context, expect: SNAPSHOT_ROWS },
    );
  }

  /** The rows a list needs and no more: LIST_PROPERTIES, LIST_FIELDS. */
  list(filters: unknown[], context: string): Promise<ListedSnapshot[]> {
    return this.client.call<ListedSnapshot[]>(
      `${this.ns}.query`,
      [filters, { extra: { properties: LIST_PROPERTIES }, select: LIST_FIELDS }],
      { context, expect: LISTED_ROWS },
    );
  }

  async create(dataset: string, label: string, context: string): Promise<void> {
    await this.client.call(`${this.ns}.create`, [{ dataset, name: label }], { context });
  }

  /** `defer`: if clones depend on it, ZFS destroys it when the last one goes. */
  async delete(id: string, context: string, defer = false): Promise<void> {
    await this.client.call(`${this.ns}.delete`, [id, { defer, recursive: false }], { context });
  }

  /** `recursive` (zfs rollback -r) destroys the newer snapshots; never `recursive_clones`. */
  async rollback(id: string, context: string): Promise<void> {
    await this.client.call(
      `${this.ns}.rollback`,
      [id, { recursive: true, recursive_clones: false, force: false }],
      {
        context,
      },
    );
  }

  async clone(snapshot: string, datasetDst: string, context: string): Promise<void> {
    await this.client.call(`${this.ns}.clone`, [{ snapshot, dataset_dst: datasetDst }], { context });
  }

  /**
   * Frees the dataset name `dataset` (an empty, stopped instance's root) so a clone can take it.
   * 25.04: private zfs.dataset.delete (pool.dataset.* cannot see .ix-virt). 25.10: public pool.dataset.rename
   * to `trash`; the caller deletes `trash` after the clone (returned so it can).
   */
  async vacate(dataset: string, trash: string, context: string): Promise<string | undefined> {
    if (this.family === 'virt-25.04') {
      await this.client.call('zfs.dataset.delete', [dataset, { recursive: true }], { context });
      return undefined;
    }
    await this.client.call(
      'pool.dataset.rename',
      [dataset, { new_name: trash, recursive: false, force: true }],
      {
        context,
      },
    );
    return trash;
  }

  /** Deletes a dataset outside .ix-virt (the 25.10 trash). */
  async deleteDataset(dataset: string, context: string): Promise<void> {
    const method = this.family === 'virt-25.04' ? 'zfs.dataset.delete' : 'pool.dataset.delete';
    await this.client.call(method, [dataset, { recursive: true }], { context });
  }
}
