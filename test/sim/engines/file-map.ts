// In-memory files of a dataset (every dataset of the memory engine; the plain ones of the Incus engine):
// paths relative to the dataset root, directories implied by the files below them.
import { EngineError, type FileStat, type FileWriteOptions } from '../engine.js';

export interface FileEntry {
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  /** a symlink with this text (data is empty) */
  link?: string;
}

export type FileMap = Map<string, FileEntry>;

/** "a//b/./c/" -> "a/b/c"; the dataset root is "". */
export function normalize(path: string): string {
  return path
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}

/** The key a write goes to; the dataset root itself cannot be written. */
export function writableKey(path: string): string {
  const key = normalize(path);
  if (!key) throw new EngineError('EINVAL', 'Is a directory');
  return key;
}

/** A copy whose buffers are the copy's own (snapshots, rollback, clones). */
export function cloneFiles(files: FileMap): FileMap {
  const out: FileMap = new Map();
  for (const [path, entry] of files) out.set(path, { ...entry, data: Buffer.from(entry.data) });
  return out;
}

export function filesBytes(files: FileMap): number {
  let total = 0;
  for (const entry of files.values()) total += entry.data.length;
  return total;
}

/** Mode and owner a write leaves: the requested ones, else the old file's, else 0644 root:root. */
export function ownership(
  options: FileWriteOptions,
  old: { mode: number; uid: number; gid: number } | undefined,
): { mode: number; uid: number; gid: number } {
  return {
    mode: options.mode ?? old?.mode ?? 0o644,
    uid: options.uid >= 0 ? options.uid : (old?.uid ?? 0),
    gid: options.gid >= 0 ? options.gid : (old?.gid ?? 0),
  };
}

export function writeEntry(files: FileMap, key: string, data: Buffer, options: FileWriteOptions): void {
  const old = files.get(key);
  files.set(key, {
    data: options.append && old ? Buffer.concat([old.data, data]) : Buffer.from(data),
    ...ownership(options, old),
    mtime: new Date(),
  });
}

export function directoryStat(mtime: Date): FileStat {
  return { type: 'DIRECTORY', size: 4096, mode: 0o755, uid: 0, gid: 0, mtime };
}

/** A file, a directory (the root, or a prefix of a file's path; dated `createdAt`), or undefined. */
export function statEntry(files: FileMap, key: string, createdAt: Date): FileStat | undefined {
  const entry = files.get(key);
  if (entry?.link !== undefined)
    return {
      type: 'SYMLINK',
      size: entry.link.length,
      mode: 0o777,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
      target: entry.link,
    };
  if (entry) {
    return {
      type: 'FILE',
      size: entry.data.length,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
    };
  }
  const isDir = key === '' || [...files.keys()].some((p) => p.startsWith(`${key}/`));
  return isDir ? directoryStat(createdAt) : undefined;
}

/** Replaces whatever is at `key` (a file, or a directory with everything below it) with a symlink. */
export function linkEntry(files: FileMap, key: string, target: string): void {
  for (const path of [...files.keys()]) if (path.startsWith(`${key}/`)) files.delete(path);
  files.set(key, { data: Buffer.alloc(0), mode: 0o777, uid: 0, gid: 0, mtime: new Date(), link: target });
}

/** The names directly inside directory `key` ('' = the root), or undefined when it is not a directory. */
export function listEntries(files: FileMap, key: string, createdAt: Date): string[] | undefined {
  if (statEntry(files, key, createdAt)?.type !== 'DIRECTORY') return undefined;
  const prefix = key === '' ? '' : `${key}/`;
  const names = new Set<string>();
  for (const path of files.keys())
    if (path.startsWith(prefix)) names.add(path.slice(prefix.length).split('/')[0]);
  return [...names].sort();
}
