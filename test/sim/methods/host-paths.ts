// Paths on the simulated NAS, resolved the way the middleware's plain open()/os.makedirs() resolve them as root on
// the NAS (TS-25.04.2.6 / TS-25.10.6 plugins/filesystem.py file_receive; stat uses statx without following the
// last component). Every symlink is followed, and an absolute target starts again from the NAS's own root, not
// from a container's root filesystem: that is what lets a link planted inside a sandbox reach the NAS's files.
//
// Where a NAS path lives:
// - under the mountpoint of a mounted dataset (an instance's while it runs, /mnt/<dataset> for the others): the
//   engine's files of that dataset (for the Incus engine, a real container's root filesystem);
// - anywhere else: the simulator's stand-in for the NAS's own root, a directory of its own (ctx.nasRoot). A
//   followed link to /etc/passwd lands in <nasRoot>/etc/passwd, never in this machine's /etc/passwd.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { SimContext } from '../context.js';
import type { FileStat } from '../engine.js';
import { CallError, ERRNO } from '../errors.js';

/** Linux follows at most 40 links in one lookup (MAXSYMLINKS), then fails with ELOOP. */
const MAX_LINKS = 40;

export type NasLocation =
  | { where: 'dataset'; path: string; dataset: string; relative: string; mounted: true }
  | { where: 'host'; path: string; real: string };

export interface Resolved {
  /** the NAS path with every symlink followed */
  path: string;
  /** what is there (lstat of the last component when it was not followed), or undefined when nothing is */
  stat: FileStat | undefined;
  /** when nothing is there: the first component of `path` that does not exist */
  missing?: string;
}

function parts(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

function joinNas(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export class HostPaths {
  constructor(private readonly ctx: SimContext) {}

  /** Mountpoints of every dataset with whether it is mounted now (25.x: an instance's only while it runs). */
  private async mounts(): Promise<{ dataset: string; mountpoint: string; mounted: boolean }[]> {
    return (await this.ctx.engine.listDatasets()).map((ds) => ({
      dataset: ds.name,
      mountpoint: ds.mountpoint,
      mounted: ds.mounted,
    }));
  }

  /** The names in the NAS directory `path` (taken literally), or undefined when it is no directory. */
  async readdir(path: string): Promise<string[] | undefined> {
    const loc = await this.locate(path);
    const names = new Set<string>();
    let isDir: boolean;
    if (loc.where === 'dataset') {
      const inside = await this.ctx.engine.listDir(loc.dataset, loc.relative);
      isDir = inside !== undefined;
      for (const name of inside ?? []) names.add(name);
    } else {
      const st = hostLstat(loc.real);
      if (st && st.type !== 'DIRECTORY') return undefined;
      isDir = st !== undefined;
      if (st) for (const name of readdirSync(loc.real)) names.add(name);
    }
    // Mounted datasets (and the directories that lead to them) show in their parent directory.
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const m of await this.mounts())
      if (m.mounted && m.mountpoint.startsWith(prefix))
        names.add(m.mountpoint.slice(prefix.length).split('/')[0]);
    if (!isDir && !names.size) return undefined;
    return [...names].sort();
  }

  /**
   * The first symlink among the components of `path`, taken literally (openat2 RESOLVE_NO_SYMLINKS, as 26's
   * safe_open does), or undefined when there is none.
   */
  async firstSymlink(path: string): Promise<string | undefined> {
    let current = '/';
    for (const name of parts(path)) {
      if (name === '..') {
        current = parentOf(current);
        continue;
      }
      current = joinNas(current, name);
      const st = await this.lstat(current);
      if (!st) return undefined;
      if (st.type === 'SYMLINK') return current;
    }
    return undefined;
  }

  /** Where a NAS path (taken literally, no links followed) lives. */
  async locate(path: string): Promise<NasLocation> {
    let best: { dataset: string; mountpoint: string } | undefined;
    for (const m of await this.mounts()) {
      if (!m.mounted) continue;
      if (path !== m.mountpoint && !path.startsWith(`${m.mountpoint}/`)) continue;
      if (!best || m.mountpoint.length > best.mountpoint.length) best = m;
    }
    if (best) {
      const relative = path === best.mountpoint ? '' : path.slice(best.mountpoint.length + 1);
      return { where: 'dataset', path, dataset: best.dataset, relative, mounted: true };
    }
    return { where: 'host', path, real: join(this.ctx.nasRoot, path) };
  }

  /** lstat of one NAS path. */
  async lstat(path: string): Promise<FileStat | undefined> {
    const loc = await this.locate(path);
    if (loc.where === 'dataset') return this.ctx.engine.statPath(loc.dataset, loc.relative);
    const onHost = hostLstat(loc.real);
    if (onHost) return onHost;
    // The directories that hold mountpoints exist on a real NAS (and an unmounted instance's mountpoint too).
    const mounts = await this.mounts();
    if (path === '/' || mounts.some((m) => m.mountpoint === path || m.mountpoint.startsWith(`${path}/`)))
      return { type: 'DIRECTORY', size: 4096, mode: 0o755, uid: 0, gid: 0, mtime: new Date(0) };
    return undefined;
  }

  /**
   * Resolves like the kernel's path walk as root on the NAS: links in every component are followed (the last
   * one only with `followLast`), an absolute target restarts from the NAS root, ".." goes to the parent of the
   * directory reached so far. Stops at the first component that does not exist.
   */
  async resolve(path: string, followLast: boolean): Promise<Resolved> {
    const pending = parts(path);
    let current = '/';
    let stat: FileStat | undefined = await this.lstat('/');
    let links = 0;
    while (pending.length) {
      const name = pending.shift()!;
      if (name === '..') {
        current = parentOf(current);
        stat = await this.lstat(current);
        continue;
      }
      const next = joinNas(current, name);
      const st = await this.lstat(next);
      if (st?.type === 'SYMLINK' && (pending.length > 0 || followLast)) {
        links += 1;
        if (links > MAX_LINKS)
          throw new CallError(`[Errno 40] Too many levels of symbolic links: '${path}'`, ERRNO.ELOOP);
        const target = st.target ?? '';
        pending.unshift(...parts(target));
        if (target.startsWith('/')) current = '/';
        continue;
      }
      if (!st) return { path: pending.reduce(joinNas, next), stat: undefined, missing: next };
      if (pending.length && st.type !== 'DIRECTORY')
        throw new CallError(`[Errno 20] Not a directory: '${path}'`, ERRNO.ENOTDIR);
      current = next;
      stat = st;
    }
    return { path: current, stat };
  }
}

function hostLstat(real: string): FileStat | undefined {
  let st;
  try {
    st = lstatSync(real);
  } catch {
    return undefined;
  }
  const type = st.isSymbolicLink() ? 'SYMLINK' : st.isDirectory() ? 'DIRECTORY' : 'FILE';
  return {
    type,
    size: st.size,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime,
    target: type === 'SYMLINK' ? readlinkSync(real) : undefined,
  };
}

/** mkdir -p of a NAS directory that lives in the NAS-root stand-in (never outside it). */
export function makeHostDirs(nasRoot: string, real: string): void {
  mustBeInside(nasRoot, real);
  mkdirSync(real, { recursive: true, mode: 0o755 });
  mustBeInside(nasRoot, realpathSync(real));
}

/** Writes a file of the NAS-root stand-in like open(path, 'wb+'|'ab') + fchmod + fchown, never through a link. */
export function writeHostFile(
  nasRoot: string,
  real: string,
  data: Buffer,
  options: { append: boolean; mode: number | null; uid: number; gid: number },
): void {
  mustBeInside(nasRoot, realpathSync(parentOf(real)));
  const flags =
    constants.O_WRONLY |
    constants.O_CREAT |
    constants.O_NOFOLLOW |
    (options.append ? constants.O_APPEND : constants.O_TRUNC);
  const fd = openSync(real, flags, 0o644);
  try {
    writeSync(fd, data);
    // `if mode := options.get('mode')`: a mode of 0 or None leaves the mode alone.
    if (options.mode) fchmodSync(fd, options.mode & 0o7777);
    if (options.uid >= 0 || options.gid >= 0) {
      const st = fstatSync(fd);
      fchownSync(fd, options.uid >= 0 ? options.uid : st.uid, options.gid >= 0 ? options.gid : st.gid);
    }
  } finally {
    closeSync(fd);
  }
}

function mustBeInside(root: string, real: string): void {
  const base = realpathSync(root);
  if (real !== base && !real.startsWith(`${base}/`))
    throw new Error(`simulator safety: ${real} is outside the NAS root stand-in ${base}`);
}
