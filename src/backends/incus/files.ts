// The instance file API (/1.0/instances/<name>/files). It works on stopped instances too, which is how keys
// and identity files get in before the first boot.
import { NotFoundError, PixelsError, ValidationError } from '../../core/errors';
import type { WriteFileOptions } from '../../core/sandbox';
import type { IncusRestClient, RawResponse, RequestOptions } from './rest-client';
import { mapIncusError } from './rest-client';

function filesPath(instance: string): string {
  return `/1.0/instances/${encodeURIComponent(instance)}/files`;
}

function checkAbsolute(path: string): void {
  if (!path.startsWith('/') || path.split('/').includes('..'))
    throw new ValidationError(`The file path must be absolute and without "..": ${path}`);
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

async function errorOf(status: number, body: Buffer): Promise<PixelsError> {
  try {
    const env = JSON.parse(body.toString('utf8')) as { error?: string };
    return mapIncusError(status, env.error ?? `HTTP ${status}`);
  } catch {
    return mapIncusError(status, `HTTP ${status}`);
  }
}

export class IncusFiles {
  /** The last write queued per "<instance>\n<path>" (see oneAtATime). */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(private readonly client: IncusRestClient) {}

  /**
   * Writes a file, creating missing parent directories with the same owner; or, with `append`, appends to it
   * like `>>`: a missing file is created with the given mode and owner, an existing one keeps its own, and a
   * missing directory is an error (nothing is made).
   * Writes to one path are serialised in this process, so concurrent appends lose nothing (see appendOrCreate).
   */
  async write(
    instance: string,
    path: string,
    content: Buffer,
    options: WriteFileOptions = {},
  ): Promise<void> {
    checkAbsolute(path);
    const headers = {
      'Content-Type': 'application/octet-stream',
      'X-Incus-type': 'file',
      'X-Incus-uid': String(options.uid ?? 0),
      'X-Incus-gid': String(options.gid ?? 0),
      'X-Incus-mode': octal(options.mode ?? 0o644),
    };
    await this.oneAtATime(`${instance}\n${path}`, () =>
      options.append
        ? this.appendOrCreate(instance, path, content, headers)
        : this.overwrite(instance, path, content, headers, options),
    );
  }

  private async overwrite(
    instance: string,
    path: string,
    content: Buffer,
    headers: Record<string, string>,
    options: WriteFileOptions,
  ): Promise<void> {
    const attempt = () =>
      this.fileCall('POST', instance, {
        query: { path },
        raw: content,
        headers: { ...headers, 'X-Incus-write': 'overwrite' },
      });
    let res = await attempt();
    if (res.status === 404 && !(await this.instanceMissing(instance))) {
      // Private files (no group/other bits, like authorized_keys) get private parent directories.
      const dirMode = (options.mode ?? 0o644) & 0o077 ? 0o755 : 0o700;
      await this.mkdirs(instance, parentOf(path), dirMode, options.uid ?? 0, options.gid ?? 0);
      res = await attempt();
    }
    if (res.status >= 400) throw await errorOf(res.status, res.body);
  }

  /**
   * Incus (6.0) answers 404 to an append to a file that does not exist, so the file is then created with this
   * content (an overwrite). Between that 404 and the create, a file made by someone else would be replaced:
   * within this process that cannot happen (writes to one path run one at a time); another client of the same
   * server writing the same missing file in those few milliseconds is the remaining, accepted window: the API
   * has no create-only-if-absent write.
   */
  private async appendOrCreate(
    instance: string,
    path: string,
    content: Buffer,
    headers: Record<string, string>,
  ): Promise<void> {
    const write = (mode: 'append' | 'overwrite') =>
      this.fileCall('POST', instance, {
        query: { path },
        raw: content,
        headers: { ...headers, 'X-Incus-write': mode },
      });
    let res = await write('append');
    if (res.status === 404 && !(await this.instanceMissing(instance))) {
      res = await write('overwrite');
      // Still 404: the directory is missing; `>>` does not make directories, and neither do we.
      if (res.status === 404)
        throw new NotFoundError(`Cannot append to ${path} in ${instance}: ${parentOf(path)} does not exist.`);
    }
    if (res.status >= 400) throw await errorOf(res.status, res.body);
  }

  /** Runs `task` after every earlier task with the same key has settled. */
  private async oneAtATime(key: string, task: () => Promise<void>): Promise<void> {
    const previous = this.pending.get(key) ?? Promise.resolve();
    const run = previous.then(task);
    const settled = run.catch(() => undefined);
    this.pending.set(key, settled);
    try {
      await run;
    } finally {
      if (this.pending.get(key) === settled) this.pending.delete(key);
    }
  }

  /** Reads a regular file. */
  async read(instance: string, path: string): Promise<Buffer> {
    checkAbsolute(path);
    const res = await this.fileCall('GET', instance, { query: { path } });
    if (res.status >= 400) throw await errorOf(res.status, res.body);
    if (res.headers['x-incus-type'] === 'directory') throw new ValidationError(`${path} is a directory.`);
    return res.body;
  }

  /** Entries of a directory (names only). */
  async list(instance: string, path: string): Promise<string[]> {
    const res = await this.fileCall('GET', instance, { query: { path } });
    if (res.status >= 400) throw await errorOf(res.status, res.body);
    if (res.headers['x-incus-type'] !== 'directory') throw new ValidationError(`${path} is not a directory.`);
    const env = JSON.parse(res.body.toString('utf8')) as { metadata?: unknown };
    return Array.isArray(env.metadata) ? env.metadata.map(String) : [];
  }

  /** Deletes a file; a file that is already gone is fine. */
  async remove(instance: string, path: string): Promise<void> {
    checkAbsolute(path);
    const res = await this.fileCall('DELETE', instance, { query: { path } });
    if (res.status >= 400 && res.status !== 404) throw await errorOf(res.status, res.body);
  }

  private async mkdirs(instance: string, dir: string, mode: number, uid: number, gid: number): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    let current = '';
    for (const part of parts) {
      current += `/${part}`;
      const res = await this.fileCall('POST', instance, {
        query: { path: current },
        raw: Buffer.alloc(0),
        headers: {
          'X-Incus-type': 'directory',
          'X-Incus-uid': String(uid),
          'X-Incus-gid': String(gid),
          'X-Incus-mode': octal(mode),
        },
      });
      // Existing directories answer with an error we can ignore; anything else is real.
      if (res.status >= 400 && !/exists/i.test(res.body.toString('utf8')) && res.status !== 409) {
        const existing = await this.fileCall('GET', instance, { query: { path: current } });
        if (existing.headers['x-incus-type'] !== 'directory') throw await errorOf(res.status, res.body);
      }
    }
  }

  /**
   * One file API call. On a stopped instance Incus serves it from a helper process that exits after ~15 s idle;
   * a call landing while it exits fails with "forkfile.sock … connection reset": that one is retried.
   */
  private async fileCall(method: string, instance: string, options: RequestOptions): Promise<RawResponse> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.client.raw(method, filesPath(instance), options);
      if (res.status < 500 || attempt >= 3 || !/forkfile/i.test(res.body.toString('utf8'))) return res;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }

  private async instanceMissing(instance: string): Promise<boolean> {
    const res = await this.client.raw('GET', `/1.0/instances/${encodeURIComponent(instance)}`);
    if (res.status === 404) throw new NotFoundError(`There is no instance ${instance}.`);
    return false;
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
