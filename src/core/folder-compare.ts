// Compare with Sandbox for a folder: SHA-256 of the local files (`.git` left out, as in the sandbox) and the list of
// files that differ between the two sides.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ValidationError } from './errors';

export interface FolderChange {
  /** Relative path, `/`-separated. */
  path: string;
  change: 'modified' | 'added in sandbox' | 'only local';
}

/** Files that differ, sorted by path: modified, only in the sandbox, only here. */
export function compareHashes(local: Map<string, string>, sandbox: Map<string, string>): FolderChange[] {
  const out: FolderChange[] = [];
  for (const [path, hash] of sandbox) {
    const mine = local.get(path);
    if (mine === undefined) out.push({ path, change: 'added in sandbox' });
    else if (mine !== hash) out.push({ path, change: 'modified' });
  }
  for (const path of local.keys()) if (!sandbox.has(path)) out.push({ path, change: 'only local' });
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** SHA-256 of every regular file under `root` (symlinks and `.git` left out), keyed by `/`-separated relative path. */
export async function localFileHashes(root: string, maxFiles: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== '.git') await walk(full);
      } else if (entry.isFile()) {
        if (out.size >= maxFiles)
          throw new ValidationError(`"${root}" has more than ${maxFiles} files; compare a smaller folder.`);
        out.set(relative(root, full).split(sep).join('/'), await hashFile(full));
      }
    }
  };
  if (!(await lstat(root)).isDirectory()) throw new ValidationError(`"${root}" is not a folder.`);
  await walk(root);
  return out;
}
