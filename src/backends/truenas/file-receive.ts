// Writing a file into a sandbox's root filesystem through filesystem.file_receive (25.x and 26 alike): the guest
// path checks both backends make first, and the write itself in pieces under the server's message limit. What
// makes a write safe on each version (25.x: only into a fresh sandbox, no links on the way; 26: links refused by
// the server) stays with the backend.
import type { WriteFileOptions } from '../../core/sandbox';
import { validateSandboxName } from '../../core/names';
import { ValidationError } from '../../core/errors';
import type { TrueNASClient } from './client';

/** filesystem.file_receive messages may be 2 MiB; 1 MiB of file is 1.4 MiB of base64 plus the envelope. */
export const FILE_CHUNK_BYTES = 1024 * 1024;

/** A guest path: absolute, no `..`, no NUL. */
export function guestPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `The path "${path}" must be absolute.`;
  if (path.includes('\0')) return 'The path contains a NUL character.';
  if (path.split('/').some((seg) => seg === '..')) return `The path "${path}" may not contain "..".`;
  if (path.endsWith('/')) return `The path "${path}" names a directory, not a file.`;
  return undefined;
}

/** The sandbox name and the guest path of a write, before anything is asked of the server. */
export function validateWriteTarget(name: string, path: string): void {
  validateSandboxName(name);
  const problem = guestPathProblem(path);
  if (problem) throw new ValidationError(problem, [{ field: 'path', message: problem }]);
}

/** Splits content into pieces that keep every file_receive message under the server's 2 MiB limit. */
export function chunks(content: Buffer, size = FILE_CHUNK_BYTES): Buffer[] {
  if (content.length === 0) return [content];
  const out: Buffer[] = [];
  for (let i = 0; i < content.length; i += size) out.push(content.subarray(i, i + size));
  return out;
}

/** file_receive of `content` to `hostPath` on the NAS: the first piece as asked (append or not), the rest appended. */
export async function receiveFile(
  client: TrueNASClient,
  hostPath: string,
  content: Buffer,
  o: WriteFileOptions,
  context: string,
): Promise<void> {
  let append = o.append ?? false;
  for (const piece of chunks(content)) {
    await client.call(
      'filesystem.file_receive',
      [
        hostPath,
        piece.toString('base64'),
        { append, mode: o.mode ?? null, uid: o.uid ?? -1, gid: o.gid ?? -1 },
      ],
      { context },
    );
    append = true;
  }
}
