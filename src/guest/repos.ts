// What "Add Sandbox as Git Remote" and "Compare with Sandbox" read inside a sandbox, one SSH call each: the git
// repositories under the home folder, and the SHA-256 of every file of a folder (.git left out).
import { ValidationError } from '../core/errors';
import { quoteArg } from '../ssh/quote';

/** Lists the git repositories (folders holding `.git`) up to 4 levels under the home folder, one path a line. */
export const FIND_REPOS_SCRIPT = `find "$HOME" -maxdepth 4 -name .git \\( -type d -o -type f \\) -not -path '*/.*/.git' -printf '%h\\n' 2> /dev/null | sort | head -n 200`;

export function parseRepoList(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith('/'));
}

/** Files hashed at most, so a huge folder (node_modules…) fails clearly instead of running for minutes. */
export const MAX_COMPARED_FILES = 20_000;

/**
 * `sha256sum` of every regular file under `dir` (relative paths, `.git` left out), NUL-separated records so any file
 * name survives. A missing folder exits 3.
 */
export function fileHashesScript(dir: string): string {
  if (!dir.startsWith('/')) throw new ValidationError(`"${dir}" is not an absolute path in the sandbox.`);
  const d = quoteArg(dir);
  return `[ -d ${d} ] || { echo ${quoteArg(`no folder ${dir} in the sandbox`)} >&2; exit 3; }
cd ${d} && find . -name .git -prune -o -type f -printf '%P\\0' | head -z -n ${MAX_COMPARED_FILES + 1} | xargs -0 -r sha256sum -z --`;
}

/** Parses `sha256sum -z` output: `<hex>  <path>\0` records (a path with a newline or backslash is escaped by sha256sum only without -z). */
export function parseFileHashes(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const record of stdout.split('\0')) {
    if (!record) continue;
    const m = /^([0-9a-f]{64}) [ *](.+)$/s.exec(record);
    if (!m)
      throw new ValidationError(
        `Unexpected hash line from the sandbox: ${JSON.stringify(record.slice(0, 120))}`,
      );
    out.set(m[2], m[1]);
  }
  if (out.size > MAX_COMPARED_FILES)
    throw new ValidationError(
      `The folder has more than ${MAX_COMPARED_FILES} files; compare a smaller folder.`,
    );
  return out;
}
