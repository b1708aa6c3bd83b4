// filesystem.file_receive (private, 2 MiB messages) and filesystem.stat over the engine's datasets.
// Paths map to datasets by mountpoint: /var/lib/incus/storage-pools/<pool>/containers/<name>/... for instance
// datasets (mounted only while the instance runs) and /mnt/<dataset>/... for the others. A write into the
// mountpoint of an unmounted instance dataset lands in the host directory (as on a real box) and is invisible
// inside the container.
import { checkArgCount, parseModel } from '../args.js';
import type { HostFile, Registry, SimContext } from '../context.js';
import { containerMountpoint, EngineError, type FileStat } from '../engine.js';
import type { SimObject } from '../ejson.js';
import { CallError, ERRNO, ValidationErrors } from '../errors.js';

interface Resolved {
  dataset: string;
  relative: string;
  mounted: boolean;
  mountpoint: string;
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

async function resolve(ctx: SimContext, path: string): Promise<Resolved | undefined> {
  const datasets = await ctx.engine.listDatasets();
  let best: Resolved | undefined;
  for (const ds of datasets) {
    const prefix = `${ctx.engine.pool}/.ix-virt/containers/`;
    const mountpoint = ds.name.startsWith(prefix)
      ? containerMountpoint(ctx.engine.pool, ds.name.slice(prefix.length))
      : ds.mountpoint;
    if (path !== mountpoint && !path.startsWith(`${mountpoint}/`)) continue;
    if (!best || mountpoint.length > best.mountpoint.length) {
      best = {
        dataset: ds.name,
        relative: path.slice(mountpoint.length + 1),
        mounted: ds.mounted,
        mountpoint,
      };
    }
  }
  return best;
}

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

function hostStat(ctx: SimContext, path: string): FileStat | undefined {
  const file = ctx.hostFiles.get(path);
  if (file)
    return {
      type: 'FILE',
      size: file.data.length,
      mode: file.mode,
      uid: file.uid,
      gid: file.gid,
      mtime: file.mtime,
    };
  for (const key of ctx.hostFiles.keys()) {
    if (key.startsWith(`${path}/`))
      return { type: 'DIRECTORY', size: 4096, mode: 0o755, uid: 0, gid: 0, mtime: new Date() };
  }
  return undefined;
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
      const [rawPath, content] = args;
      if (typeof rawPath !== 'string')
        throw new ValidationErrors([['path', 'Input should be a valid string', ERRNO.EINVAL]]);
      if (typeof content !== 'string')
        throw new ValidationErrors([['content', 'Input should be a valid string', ERRNO.EINVAL]]);
      const options = parseModel(args[2] ?? {}, 'options', {
        append: { type: 'bool', default: false },
        mode: { type: 'int', nullable: true, default: null },
        uid: { type: 'int', default: -1 },
        gid: { type: 'int', default: -1 },
      });
      if (!rawPath.startsWith('/')) throw new CallError(`${rawPath}: path must be absolute`, ERRNO.EINVAL);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(content) || content.length % 4 !== 0) {
        throw new CallError('Incorrect padding', ERRNO.EINVAL);
      }
      const data = Buffer.from(content, 'base64');
      const path = normalize(rawPath);
      const target = await resolve(env.ctx, path);
      if (!target || target.relative === '') {
        throw new CallError(`[Errno 2] No such file or directory: '${path}'`, ERRNO.ENOENT);
      }
      const write = {
        append: options.append as boolean,
        mode: options.mode as number | null,
        uid: options.uid as number,
        gid: options.gid as number,
      };
      if (!target.mounted) {
        const old = env.ctx.hostFiles.get(path);
        const file: HostFile = {
          data: write.append && old ? Buffer.concat([old.data, data]) : data,
          mode: write.mode ?? old?.mode ?? 0o644,
          uid: write.uid >= 0 ? write.uid : (old?.uid ?? 0),
          gid: write.gid >= 0 ? write.gid : (old?.gid ?? 0),
          mtime: new Date(),
        };
        env.ctx.hostFiles.set(path, file);
        return true;
      }
      try {
        await env.ctx.engine.writeFile(target.dataset, target.relative, data, write);
      } catch (error) {
        if (error instanceof EngineError)
          throw new CallError(error.message, error.code === 'ENOENT' ? ERRNO.ENOENT : ERRNO.EINVAL);
        throw error;
      }
      return true;
    },
  });

  registry.add({
    name: 'filesystem.stat',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const rawPath = args[0];
      if (typeof rawPath !== 'string')
        throw new ValidationErrors([['path', 'Input should be a valid string', ERRNO.EINVAL]]);
      if (!rawPath.startsWith('/')) throw new CallError(`${rawPath}: path must be absolute`, ERRNO.EINVAL);
      const path = normalize(rawPath);
      const target = await resolve(env.ctx, path);
      if (target) {
        if (target.mounted) {
          const st = await env.ctx.engine.statPath(target.dataset, target.relative);
          if (st) return statEntry(path, st, target.relative === '');
        } else {
          const st = hostStat(env.ctx, path);
          if (st) return statEntry(path, st, false);
          if (target.relative === '') {
            return statEntry(
              path,
              { type: 'DIRECTORY', size: 4096, mode: 0o755, uid: 0, gid: 0, mtime: new Date() },
              false,
            );
          }
        }
      }
      // Directories above every mountpoint (/, /mnt, /var/lib/incus/...) exist.
      const datasets = await env.ctx.engine.listDatasets();
      const mounts = datasets.map((d) => {
        const prefix = `${env.ctx.engine.pool}/.ix-virt/containers/`;
        return d.name.startsWith(prefix)
          ? containerMountpoint(env.ctx.engine.pool, d.name.slice(prefix.length))
          : d.mountpoint;
      });
      if (path === '/' || mounts.some((m) => m.startsWith(`${path}/`))) {
        return statEntry(
          path,
          { type: 'DIRECTORY', size: 4096, mode: 0o755, uid: 0, gid: 0, mtime: new Date(0) },
          false,
        );
      }
      throw new CallError(`Path ${path} not found`, ERRNO.ENOENT);
    },
  });
}
