// Atomic file replacement and a cross-process lock file, shared by the SSH config writer and known_hosts.
// Readers never see a partial file (temp file in the same folder + rename), and two editor windows doing a
// read-modify-write at once are serialised by an O_EXCL lock file that expires when its holder died.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TimeoutError } from '../core/errors';

/** Reads a file, or returns undefined when it does not exist. */
export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Replaces `path` with `data` atomically. An existing file keeps its mode; a new one gets `newFileMode`.
 * A symlink (dotfile managers) is followed so the link itself stays in place.
 */
export async function writeFileAtomic(
  path: string,
  data: Buffer | string,
  newFileMode = 0o600,
): Promise<void> {
  let target = path;
  try {
    target = await fs.realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let mode = newFileMode;
  try {
    mode = (await fs.stat(target)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const temp = join(
    dirname(target),
    `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  const handle = await fs.open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // the umask may have narrowed the mode given to open()
    await handle.sync();
    await handle.close();
    await fs.rename(temp, target);
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(temp, { force: true });
    throw err;
  }
}

export interface LockOptions {
  /** Give up waiting after this long (default 10 s). */
  timeoutMs?: number;
  /** A lock file older than this is taken to be left behind by a crashed holder (default 15 s). */
  staleMs?: number;
}

/** Runs `fn` while holding `lockPath` (created with O_EXCL, removed afterwards). */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const staleMs = options.staleMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      const handle = await fs.open(lockPath, 'wx', 0o600);
      await handle.writeFile(`${process.pid} ${new Date().toISOString()}\n`);
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    try {
      const age = Date.now() - (await fs.stat(lockPath)).mtimeMs;
      if (age > staleMs) {
        // Move it aside first so that only one waiter removes it.
        const aside = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
        await fs.rename(lockPath, aside).then(
          () => fs.rm(aside, { force: true }),
          () => {},
        );
        continue;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (Date.now() >= deadline) {
      throw new TimeoutError(
        `Timed out waiting for the lock ${lockPath} (another window may be writing). Try again.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 100);
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockPath, { force: true });
  }
}
