// "Add Sandbox as Git Remote": a remote `px-<name>` in a local repository whose URL goes over our SSH config alias
// (`ssh://px-<name>.<server>/<path>`), so plain `git fetch px-<name>` brings the agent's branches, and its removal
// when the sandbox is destroyed (only while it still points at that sandbox). Runs the local `git`, no shell.
import { execFile } from 'node:child_process';
import { INSTANCE_PREFIX } from './sandbox';
import { ValidationError } from './errors';

export function gitRemoteName(sandbox: string): string {
  return `${INSTANCE_PREFIX}${sandbox}`;
}

/** `ssh://<alias><absolute path>`: git runs the system `ssh`, which finds the alias in the user's SSH config. */
export function gitRemoteUrl(alias: string, path: string): string {
  if (!path.startsWith('/')) throw new ValidationError(`"${path}" is not an absolute path in the sandbox.`);
  if (/[\s\0]/.test(path) || /[\s\0]/.test(alias))
    throw new ValidationError(
      `A repository path for a git remote cannot contain spaces or control characters.`,
    );
  return `ssh://${alias}${path.replace(/\/+$/, '') || '/'}`;
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function git(args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd, env: env ?? process.env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          reject(
            new ValidationError(
              (err as NodeJS.ErrnoException).code === 'ENOENT'
                ? 'git is not installed on this machine (or not on PATH).'
                : `git ${args[0]}: ${err.message}`,
            ),
          );
          return;
        }
        resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
      },
    );
  });
}

/** The top folder of the repository holding `folder`, or a ValidationError saying it is not in one. */
export async function repositoryRoot(folder: string): Promise<string> {
  const r = await git(['rev-parse', '--show-toplevel'], folder);
  if (r.code !== 0) throw new ValidationError(`"${folder}" is not inside a git repository.`);
  return r.stdout.trim();
}

/** The URL of a remote, or undefined when there is none of that name. */
export async function remoteUrl(repo: string, name: string): Promise<string | undefined> {
  const r = await git(['remote', 'get-url', name], repo);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Adds the remote, or points an existing one of that name at `url`. */
export async function setRemote(
  repo: string,
  name: string,
  url: string,
): Promise<'added' | 'updated' | 'unchanged'> {
  const current = await remoteUrl(repo, name);
  if (current === url) return 'unchanged';
  const r = await git(
    current === undefined ? ['remote', 'add', name, url] : ['remote', 'set-url', name, url],
    repo,
  );
  if (r.code !== 0) throw new ValidationError(`git remote: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return current === undefined ? 'added' : 'updated';
}

/** Removes the remote only while it still has `url` (a remote the user re-pointed elsewhere is left alone). */
export async function removeRemoteIf(repo: string, name: string, url: string): Promise<boolean> {
  if ((await remoteUrl(repo, name)) !== url) return false;
  const r = await git(['remote', 'remove', name], repo);
  if (r.code !== 0) throw new ValidationError(`git remote remove ${name}: ${r.stderr.trim()}`);
  return true;
}
