// filesystem.file_receive (private, 2 MiB messages) and filesystem.stat, with the NAS's own path semantics
// (host-paths.ts): file_receive is os.makedirs(dirname(path)) + open(path, 'wb+'|'ab') + fchmod + fchown as root,
// so every symlink on the way is followed, an absolute one from the NAS's root; stat is statx without following
// the last component. Paths under a mounted dataset's mountpoint are the engine's files; everything else,
// including the mountpoint of an instance that is not running (its dataset is not mounted), is the simulator's
// NAS-root directory: a write there lands on the "host" and is invisible inside the container, as on a real box.
// TrueNAS 26 (plugins/filesystem.py + truenas_pyos safe_open) refuses any symlink in the file's path (ELOOP).
import { checkArgCount, parseModel } from '../args.js';
import type { Registry } from '../context.js';
import { EngineError, type FileStat } from '../engine.js';
import type { SimObject } from '../ejson.js';
import { CallError, ERRNO, PyOSError, ValidationErrors } from '../errors.js';
import { query } from '../filters.js';
import { HostPaths, makeHostDirs, writeHostFile } from './host-paths.js';

function statEntry(path: string, st: FileStat, isMountpoint: boolean): SimObject {
  const seconds = st.mtime.getTime() / 1000;
  return {
    realpath: path,
    type: st.type,
    size: st.size,
    allocation_size: Math.ceil(st.size / 4096) * 4096,
    mode: (st.type === 'DIRECTORY' ? 0o40000 : 0o100000) | st.mode,
    mount_id: 512,
    uid: st.uid,
    gid: st.gid,
    atime: seconds,
    mtime: seconds,
    ctime: seconds,
    btime: seconds,
    dev: 64,
    inode: 100_000 + ((path.length * 7919) % 900_000),
    nlink: st.type === 'DIRECTORY' ? 2 : 1,
    acl: false,
    is_mountpoint: isMountpoint,
    is_ctldir: false,
    attributes: [],
    user: st.uid === 0 ? 'root' : null,
    group: st.gid === 0 ? 'root' : null,
  };
}

/** FilesystemDirEntry (api/v26_0_0/filesystem.py; the same keys in 25.x): the entry itself, not followed. */
function dirEntry(
  name: string,
  path: string,
  realpath: string,
  st: FileStat,
  isMountpoint: boolean,
): SimObject {
  const typeBits = st.type === 'DIRECTORY' ? 0o40000 : st.type === 'SYMLINK' ? 0o120000 : 0o100000;
  return {
    name,
    path,
    realpath,
    type: st.type,
    size: st.size,
    allocation_size: Math.ceil(st.size / 4096) * 4096,
    mode: typeBits | st.mode,
    mount_id: 512,
    acl: false,
    uid: st.uid,
    gid: st.gid,
    is_mountpoint: isMountpoint,
    is_ctldir: false,
    attributes: [],
    xattrs: [],
    zfs_attrs: [],
  };
}

export function registerFilesystem(registry: Registry): void {
  registry.add({
    name: 'filesystem.file_receive',
    private: true,
    handler: async (env, args) => {
      checkArgCount(args, 3);
      if (args.length < 2)
        throw new ValidationErrors([
          [args.length === 0 ? 'path' : 'content', 'Field required', ERRNO.EINVAL],
        ]);
      const [path, content] = args;
      if (typeof path !== 'string')
        throw new ValidationErrors([['path', 'Input should be a valid string', ERRNO.EINVAL]]);
      if (typeof content !== 'string')
        throw new ValidationErrors([['content', 'Input should be a valid string', ERRNO.EINVAL]]);
      const options = parseModel(args[2] ?? {}, 'options', {
        append: { type: 'bool', default: false },
        mode: { type: 'int', nullable: true, default: null },
        uid: { type: 'int', default: -1 },
        gid: { type: 'int', default: -1 },
      });
      if (!path.startsWith('/')) throw new CallError(`${path}: path must be absolute`, ERRNO.EINVAL);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(content) || content.length % 4 !== 0) {
        throw new CallError('Incorrect padding', ERRNO.EINVAL);
      }
      const data = Buffer.from(content, 'base64');
      const write = {
        append: options.append as boolean,
        mode: options.mode as number | null,
        uid: options.uid as number,
        gid: options.gid as number,
      };
      const nas = new HostPaths(env.ctx);
      return env.ctx.exclusive(async () => {
        // os.makedirs(os.path.dirname(path), exist_ok=True): follows links, makes what is missing.
        const dir = await nas.resolve(path.slice(0, path.lastIndexOf('/')) || '/', true);
        if (dir.stat && dir.stat.type !== 'DIRECTORY')
          throw new CallError(`[Errno 17] File exists: '${dir.path}'`, ERRNO.EEXIST);
        if (!dir.stat) {
          const loc = await nas.locate(dir.path);
          // Directories inside a mounted dataset are made by the engine's write below.
          if (loc.where === 'host') makeHostDirs(env.ctx.nasRoot, loc.real);
        }
        // 26: safe_open(path, 'wb+') opens with openat2(RESOLVE_NO_SYMLINKS): a link anywhere in the path fails
        // with SymlinkInPathError (an OSError, so -32001 with errno EINVAL and Python's "[Errno 40] ..." text).
        // The directories os.makedirs made by following links above stay (pc filesystem.py says so itself).
        if (env.ctx.version === '26' && (await nas.firstSymlink(path)) !== undefined)
          throw new PyOSError('SymlinkInPathError', ERRNO.ELOOP, 'Symlink detected in path', path);
        // 25.x open(path, 'wb+'): follows a link in the last component too (a dangling one is created at its target).
        const target = await nas.resolve(path, true);
        if (!target.stat && target.missing !== target.path) {
          // Something on the way to the file is missing: fine inside a mounted dataset (the directory makedirs
          // made is the engine's to create with the file); elsewhere only a dangling link leads there: ENOENT.
          const parent = await nas.resolve(target.path.slice(0, target.path.lastIndexOf('/')) || '/', true);
          const ok = parent.stat
            ? parent.stat.type === 'DIRECTORY'
            : (await nas.locate(parent.path)).where === 'dataset';
          if (!ok) throw new CallError(`[Errno 2] No such file or directory: '${path}'`, ERRNO.ENOENT);
        }
        if (target.stat?.type === 'DIRECTORY')
          throw new CallError(`[Errno 21] Is a directory: '${path}'`, ERRNO.EISDIR);
        const loc = await nas.locate(target.path);
        if (loc.where === 'host') {
          makeHostDirs(env.ctx.nasRoot, loc.real.slice(0, loc.real.lastIndexOf('/')));
          writeHostFile(env.ctx.nasRoot, loc.real, data, write);
          return true;
        }
        if (loc.relative === '') throw new CallError(`[Errno 21] Is a directory: '${path}'`, ERRNO.EISDIR);
        try {
          await env.ctx.engine.writeFile(loc.dataset, loc.relative, data, write);
        } catch (error) {
          if (error instanceof EngineError)
            throw new CallError(error.message, error.code === 'ENOENT' ? ERRNO.ENOENT : ERRNO.EINVAL);
          throw error;
        }
        return true;
      });
    },
  });

  registry.add({
    name: 'filesystem.listdir',
    handler: async (env, args) => {
      checkArgCount(args, 3);
      const path = args[0];
      if (args.length === 0) throw new ValidationErrors([['path', 'Field required', ERRNO.EINVAL]]);
      if (typeof path !== 'string')
        throw new ValidationErrors([['path', 'Input should be a valid string', ERRNO.EINVAL]]);
      const nas = new HostPaths(env.ctx);
      // pathlib: exists() and is_dir() follow links; the iterator lists what the path resolves to.
      const dir = await nas.resolve(path, true);
      if (!dir.stat) throw new CallError(`Directory ${path} does not exist`, ERRNO.ENOENT);
      if (dir.stat.type !== 'DIRECTORY')
        throw new CallError(`Path ${path} is not a directory`, ERRNO.ENOTDIR);
      const names = (await nas.readdir(dir.path)) ?? [];
      const base = path.replace(/\/+$/, '') || '/';
      const entries: SimObject[] = [];
      for (const name of names) {
        const child = dir.path === '/' ? `/${name}` : `${dir.path}/${name}`;
        const st = await nas.lstat(child);
        if (!st) continue; // gone meanwhile
        const loc = await nas.locate(child);
        const shown = `${base === '/' ? '' : base}/${name}`;
        const realpath = st.type === 'SYMLINK' ? (await nas.resolve(child, true)).path : child;
        entries.push(dirEntry(name, shown, realpath, st, loc.where === 'dataset' && loc.relative === ''));
      }
      return query(entries, args[1] ?? [], args[2] ?? {});
    },
  });

  registry.add({
    name: 'filesystem.stat',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const path = args[0];
      if (typeof path !== 'string')
        throw new ValidationErrors([['path', 'Input should be a valid string', ERRNO.EINVAL]]);
      if (!path.startsWith('/')) throw new CallError(`${path}: path must be absolute`, ERRNO.EINVAL);
      const nas = new HostPaths(env.ctx);
      // statx(AT_SYMLINK_NOFOLLOW): the parents are followed, the last component is not.
      const entry = await nas.resolve(path, false);
      if (!entry.stat) throw new CallError(`Path ${path} not found`, ERRNO.ENOENT);
      const absolute = path.replace(/\/+$/, '') || '/';
      if (entry.stat.type !== 'SYMLINK') {
        const loc = await nas.locate(entry.path);
        return statEntry(absolute, entry.stat, loc.where === 'dataset' && loc.relative === '');
      }
      // A link: type SYMLINK with the data of what it points to (a dangling one is "not found"), realpath resolved.
      const followed = await nas.resolve(path, true);
      if (!followed.stat) throw new CallError(`Path ${path} not found`, ERRNO.ENOENT);
      return { ...statEntry(followed.path, followed.stat, false), type: 'SYMLINK' };
    },
  });
}
