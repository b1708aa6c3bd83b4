// File operations inside a sandbox, as small POSIX sh scripts run as root through a SandboxRunner (so they work the
// same over SSH and over the Incus exec API, and resolve paths inside the sandbox, never on the host). Each script
// exits with a code of its own for the failures a model can act on.
import { NotFoundError, ValidationError } from '../core/errors';
import type { RunResult, SandboxRunner } from './runner';

export const MiB = 1024 * 1024;
/** The largest file write_file takes and edit_file rewrites (pixels' limit). */
export const MAX_FILE_BYTES = 10 * MiB;
const FILE_TIMEOUT_MS = 120_000;
const MAX_LIST_ENTRIES = 5000;

/** Exit codes the scripts below use. */
const NOT_FOUND = 3;
const NOT_A_FILE = 4;
const NOT_A_DIR = 5;

export function checkPath(path: string): void {
  if (!path.startsWith('/'))
    throw new ValidationError(
      `The path "${path}" is not absolute. Give the full path inside the sandbox, e.g. /root/project/README.md.`,
    );
  if (path.includes('\0')) throw new ValidationError('The path contains a NUL byte.');
}

function sh(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

function failure(result: RunResult, path: string, what: string): Error {
  const reason = result.stderr.toString('utf8').trim().split('\n').slice(-3).join(' ');
  switch (result.exitCode) {
    case NOT_FOUND:
      return new NotFoundError(
        `${path} does not exist in the sandbox. Check the path with list_files on its parent directory.`,
      );
    case NOT_A_FILE:
      return new ValidationError(
        `${path} is not a regular file (a directory or a device). Use list_files for a directory.`,
      );
    case NOT_A_DIR:
      return new ValidationError(`${path} is not a directory. Use read_file for a file.`);
    default:
      return new ValidationError(
        `Could not ${what} ${path} (exit code ${result.exitCode ?? result.signal ?? 'none'}${reason ? `: ${reason}` : ''}).`,
      );
  }
}

async function run(
  runner: SandboxRunner,
  argv: string[],
  stdin?: Buffer,
  maxOutputBytes = MiB,
): Promise<RunResult> {
  return runner.run(argv, { stdin, timeoutMs: FILE_TIMEOUT_MS, maxOutputBytes });
}

export interface ReadResult {
  content: string;
  /** Bytes returned (at most max_bytes). */
  bytes: number;
  /** The file's size. */
  size: number;
  truncated: boolean;
}

/** The first `maxBytes` of a regular file. */
export async function readFile(runner: SandboxRunner, path: string, maxBytes: number): Promise<ReadResult> {
  checkPath(path);
  // The size first on stderr's last line would mix with errors; a header line on stdout keeps them apart.
  const script = `[ -e "$1" ] || exit ${NOT_FOUND}; [ -f "$1" ] || exit ${NOT_A_FILE}; stat -c %s -- "$1" && head -c "$2" -- "$1"`;
  const result = await run(runner, sh(script, path, String(maxBytes)), undefined, maxBytes + 64);
  if (result.exitCode !== 0) throw failure(result, path, 'read');
  const newline = result.stdout.indexOf(0x0a);
  const size = Number(result.stdout.subarray(0, newline).toString('utf8'));
  const data = result.stdout.subarray(newline + 1);
  return { content: data.toString('utf8'), bytes: data.length, size, truncated: size > data.length };
}

/** The whole file, refused above MAX_FILE_BYTES (for edits). */
async function readWhole(runner: SandboxRunner, path: string): Promise<Buffer> {
  const script = `[ -e "$1" ] || exit ${NOT_FOUND}; [ -f "$1" ] || exit ${NOT_A_FILE}; size=$(stat -c %s -- "$1"); [ "$size" -le "$2" ] || { echo "the file has $size bytes" >&2; exit 6; }; cat -- "$1"`;
  const result = await run(runner, sh(script, path, String(MAX_FILE_BYTES)), undefined, MAX_FILE_BYTES + 1);
  if (result.exitCode === 6)
    throw new ValidationError(
      `${path} is larger than ${MAX_FILE_BYTES / MiB} MiB, too large for edit_file. Edit it with exec (e.g. sed or a script).`,
    );
  if (result.exitCode !== 0) throw failure(result, path, 'read');
  return result.stdout;
}

/**
 * Writes `content` to `path` (parent directories made), with `mode`, owned by uid/gid 1000 like pixels' MCP
 * server (the sandbox's user). With `keepOwner` an existing file keeps its mode and owner (an edit).
 */
export async function writeFile(
  runner: SandboxRunner,
  path: string,
  content: Buffer,
  mode: string | undefined,
  keepOwner = false,
): Promise<void> {
  checkPath(path);
  if (content.length > MAX_FILE_BYTES)
    throw new ValidationError(
      `The content has ${content.length} bytes; write_file takes at most ${MAX_FILE_BYTES / MiB} MiB. Write it in parts with exec, or produce it inside the sandbox.`,
    );
  const script = keepOwner
    ? `[ -f "$1" ] || exit ${NOT_FOUND}; cat > "$1"`
    : `set -e; [ ! -d "$1" ] || exit ${NOT_A_FILE}; mkdir -p -- "$(dirname -- "$1")"; cat > "$1"; chmod "$2" -- "$1"; chown 1000:1000 -- "$1"`;
  const result = await run(runner, sh(script, path, mode ?? '0644'), content);
  if (result.exitCode !== 0) throw failure(result, path, 'write');
}

/** Replaces `oldString` with `newString` (once, or every time with `replaceAll`); returns the number replaced. */
export async function editFile(
  runner: SandboxRunner,
  path: string,
  oldString: string,
  newString: string,
  replaceAll: boolean,
): Promise<number> {
  checkPath(path);
  if (oldString === '') throw new ValidationError('old_string is empty. Give the exact text to replace.');
  const text = (await readWhole(runner, path)).toString('utf8');
  const count = text.split(oldString).length - 1;
  if (count === 0)
    throw new ValidationError(
      `old_string was not found in ${path}. Read the file with read_file and copy the text exactly (whitespace included).`,
    );
  if (count > 1 && !replaceAll)
    throw new ValidationError(
      `old_string occurs ${count} times in ${path}. Give more surrounding text so it matches once, or set replace_all to true.`,
    );
  const updated = replaceAll
    ? text.split(oldString).join(newString)
    : text.replace(oldString, () => newString);
  await writeFile(runner, path, Buffer.from(updated, 'utf8'), undefined, true);
  return replaceAll ? count : 1;
}

export interface FileEntry {
  path: string;
  size: number;
  /** Octal permission bits, e.g. "644". */
  mode: string;
  is_dir: boolean;
}

/** The entries under a directory (one level, or all with `recursive`), at most MAX_LIST_ENTRIES. */
export async function listFiles(
  runner: SandboxRunner,
  path: string,
  recursive: boolean,
): Promise<{ entries: FileEntry[]; truncated: boolean }> {
  checkPath(path);
  const depth = recursive ? '' : '-maxdepth 1';
  // NUL-terminated records, so names with tabs or newlines come back intact; one more than the cap tells a cut.
  const script = `[ -e "$1" ] || exit ${NOT_FOUND}; [ -d "$1" ] || exit ${NOT_A_DIR}; find "$1" -mindepth 1 ${depth} -printf '%s\\t%m\\t%y\\t%p\\0' | head -z -n ${MAX_LIST_ENTRIES + 1}`;
  const result = await run(runner, sh(script, path), undefined, 16 * MiB);
  if (result.exitCode !== 0) throw failure(result, path, 'list');
  const records = result.stdout.toString('utf8').split('\0').filter(Boolean);
  const entries = records.slice(0, MAX_LIST_ENTRIES).map((record) => {
    const [size, mode, type, ...rest] = record.split('\t');
    return { path: rest.join('\t'), size: Number(size), mode: mode ?? '', is_dir: type === 'd' };
  });
  return { entries, truncated: records.length > MAX_LIST_ENTRIES };
}

/** Deletes a file (or, with `recursive`, a directory and everything in it). */
export async function deleteFile(runner: SandboxRunner, path: string, recursive: boolean): Promise<void> {
  checkPath(path);
  if (path.replace(/\/+$/, '') === '') throw new ValidationError('Refusing to delete /.');
  const script = recursive
    ? `[ -e "$1" ] || [ -L "$1" ] || exit ${NOT_FOUND}; rm -rf -- "$1"`
    : `[ -e "$1" ] || [ -L "$1" ] || exit ${NOT_FOUND}; [ ! -d "$1" ] || [ -L "$1" ] || { echo "$1 is a directory: set recursive to true to delete it and everything in it" >&2; exit 7; }; rm -f -- "$1"`;
  const result = await run(runner, sh(script, path));
  if (result.exitCode === 7)
    throw new ValidationError(
      `${path} is a directory. Set recursive to true to delete it with everything in it.`,
    );
  if (result.exitCode !== 0) throw failure(result, path, 'delete');
}
