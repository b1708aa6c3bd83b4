// The last known sandboxes (with their checkpoints) per server, kept in one local JSON file so that the tree can
// show them at once on the next start, marked as stale, before any server has answered. It holds what the tree
// shows and nothing secret (names, states, addresses, images, checkpoint labels).
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import type { Checkpoint, Sandbox, SandboxStatus } from './sandbox';

/** Bumped when the shape changes: a file of another version is ignored, not misread. */
export const CACHE_VERSION = 1;

export interface CachedServer {
  /** When the server last answered with this list (ms since the epoch). */
  savedAt: number;
  sandboxes: Sandbox[];
}

export type CacheContent = Map<string, CachedServer>;

const STATUSES: readonly SandboxStatus[] = [
  'running',
  'stopped',
  'starting',
  'stopping',
  'frozen',
  'error',
  'unknown',
];

export class CorruptCacheError extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Without the keys whose value is undefined: read back, an object equals the one that was saved. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function optionalString(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new CorruptCacheError(`${where}.${key} is not a string`);
  return v;
}

function date(v: unknown, where: string): Date {
  const d = typeof v === 'number' ? new Date(v) : new Date(NaN);
  if (Number.isNaN(d.getTime())) throw new CorruptCacheError(`${where} is not a time`);
  return d;
}

function checkpointFrom(v: unknown, where: string): Checkpoint {
  if (!isRecord(v) || typeof v.sandbox !== 'string' || typeof v.label !== 'string')
    throw new CorruptCacheError(`${where} is not a checkpoint`);
  const size = v.sizeBytes;
  if (size !== undefined && typeof size !== 'number')
    throw new CorruptCacheError(`${where}.sizeBytes is not a number`);
  return {
    sandbox: v.sandbox,
    label: v.label,
    sizeBytes: size,
    createdAt: date(v.createdAt, `${where}.createdAt`),
  };
}

function sandboxFrom(v: unknown, where: string): Sandbox {
  if (!isRecord(v) || typeof v.name !== 'string' || typeof v.instanceName !== 'string')
    throw new CorruptCacheError(`${where} is not a sandbox`);
  if (!STATUSES.includes(v.status as SandboxStatus))
    throw new CorruptCacheError(`${where}.status is not a sandbox status`);
  const labels = v.labels;
  if (labels !== undefined && (!isRecord(labels) || Object.values(labels).some((x) => typeof x !== 'string')))
    throw new CorruptCacheError(`${where}.labels is not a string map`);
  const memory = v.memoryMiB;
  if (memory !== undefined && typeof memory !== 'number')
    throw new CorruptCacheError(`${where}.memoryMiB is not a number`);
  const checkpoints = v.checkpoints;
  if (checkpoints !== undefined && !Array.isArray(checkpoints))
    throw new CorruptCacheError(`${where}.checkpoints is not a list`);
  return defined({
    name: v.name,
    instanceName: v.instanceName,
    status: v.status as SandboxStatus,
    ipv4: optionalString(v, 'ipv4', where),
    ipv6: optionalString(v, 'ipv6', where),
    image: optionalString(v, 'image', where),
    cpu: optionalString(v, 'cpu', where),
    memoryMiB: memory,
    createdAt: v.createdAt === undefined ? undefined : date(v.createdAt, `${where}.createdAt`),
    location: optionalString(v, 'location', where),
    labels: labels as Record<string, string> | undefined,
    checkpoints: checkpoints?.map((c, i) => checkpointFrom(c, `${where}.checkpoints[${i}]`)),
  });
}

/** The file's text -> its content; throws CorruptCacheError saying what is wrong. */
export function parseCache(text: string): CacheContent {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CorruptCacheError(`not JSON (${(err as Error).message})`);
  }
  if (!isRecord(json) || !isRecord(json.servers)) throw new CorruptCacheError('no "servers" object');
  if (json.version !== CACHE_VERSION)
    throw new CorruptCacheError(`version ${JSON.stringify(json.version)}, expected ${CACHE_VERSION}`);
  const out: CacheContent = new Map();
  for (const [id, entry] of Object.entries(json.servers)) {
    const where = `servers.${id}`;
    if (!isRecord(entry) || typeof entry.savedAt !== 'number' || !Array.isArray(entry.sandboxes))
      throw new CorruptCacheError(`${where} is not a server entry`);
    out.set(id, {
      savedAt: entry.savedAt,
      sandboxes: entry.sandboxes.map((s, i) => sandboxFrom(s, `${where}.sandboxes[${i}]`)),
    });
  }
  return out;
}

/** Dates as ms since the epoch (JSON has no dates). */
export function serializeCache(content: CacheContent): string {
  const servers: Record<string, CachedServer> = {};
  for (const [id, entry] of content) servers[id] = entry;
  return JSON.stringify(
    { version: CACHE_VERSION, servers },
    function (this: Record<string, unknown>, key, value) {
      const original = this[key]; // before Date.toJSON turned it into a string
      return original instanceof Date ? original.getTime() : (value as unknown);
    },
  );
}

/**
 * The cache file: read once (a missing file is an empty cache, a corrupt one is ignored and reported through
 * `onCorrupt`), written whole through a temporary file and a rename so that a crash never leaves half a file.
 */
export class SandboxCacheFile {
  private content: CacheContent = new Map();
  private readonly loaded: Promise<CacheContent>;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly onCorrupt: (reason: string) => void,
  ) {
    this.loaded = this.read();
  }

  private async read(): Promise<CacheContent> {
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.onCorrupt(`cannot read ${this.path}: ${(err as Error).message}`);
      return this.content;
    }
    try {
      this.content = parseCache(text);
    } catch (err) {
      this.onCorrupt(`ignoring the sandbox cache ${this.path}: ${(err as Error).message}`);
    }
    return this.content;
  }

  /** Everything cached, once the file has been read. */
  load(): Promise<CacheContent> {
    return this.loaded;
  }

  /** One server's last known list (after load(); the latest save included). */
  get(serverId: string): CachedServer | undefined {
    return this.content.get(serverId);
  }

  /** Replaces one server's entry and keeps only the servers in `keep`; the file is rewritten in the background. */
  save(serverId: string, sandboxes: Sandbox[], keep: readonly string[], savedAt = Date.now()): Promise<void> {
    this.content.set(serverId, { savedAt, sandboxes });
    for (const id of [...this.content.keys()]) if (!keep.includes(id)) this.content.delete(id);
    const text = serializeCache(this.content);
    this.writing = this.writing
      .then(() => this.write(text))
      .catch((err: unknown) => {
        this.onCorrupt(`cannot write the sandbox cache ${this.path}: ${(err as Error).message}`);
      });
    return this.writing;
  }

  private async write(text: string): Promise<void> {
    await fs.mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await fs.writeFile(tmp, text, { mode: 0o600 });
    await fs.rename(tmp, this.path);
  }
}
