// How host-side code runs a bash script as root inside a sandbox: over SSH (streamed) or through the backend's
// exec API (no SSH needed). Provisioning and egress only see this one function type.
import { BACKEND_PRODUCT, type Backend } from '../core/backend';
import { TimeoutError, UnsupportedError } from '../core/errors';
import type { SshTarget } from '../ssh/connect';
import type { SshPool } from '../ssh/pool';

export interface ScriptOptions {
  /** The host gives up after this long (the guest side enforces its own, shorter limit). */
  timeoutMs?: number;
  /** Output (stdout and stderr) as it arrives. */
  onOutput?: (chunk: string) => void;
  signal?: AbortSignal;
}

export interface ScriptResult {
  exitCode: number;
  /** stdout and stderr, interleaved as received. */
  output: string;
}

/** Runs `script` with bash as root in the sandbox. */
export type Executor = (script: string, options?: ScriptOptions) => Promise<ScriptResult>;

/** Over an SSH connection from the pool; the target must log in as root. Output is streamed. */
export function sshExecutor(pool: SshPool, target: SshTarget): Executor {
  return async (script, options = {}) => {
    let output = '';
    const add = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      options.onOutput?.(text);
    };
    const result = await pool.exec(target, 'bash -s', {
      stdin: script,
      onStdout: add,
      onStderr: add,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
    });
    return { exitCode: result.exitCode ?? 128, output };
  };
}

/** Through the backend's exec API (capability `exec`); output arrives when the command ends. */
export function backendExecutor(backend: Backend, name: string): Executor {
  if (!backend.exec)
    throw new UnsupportedError(
      `${BACKEND_PRODUCT[backend.kind]} cannot run commands in a sandbox without SSH.`,
    );
  const exec = backend.exec.bind(backend) as (
    name: string,
    argv: string[],
    options: { stdin?: Buffer; timeoutMs?: number },
  ) => ReturnType<NonNullable<Backend['exec']>>;
  return async (script, options = {}) => {
    const run = exec(name, ['bash', '-s'], { stdin: Buffer.from(script), timeoutMs: options.timeoutMs });
    const result = await withTimeout(run, options.timeoutMs);
    const output = result.stdout.toString('utf8') + result.stderr.toString('utf8');
    if (output) options.onOutput?.(output);
    return { exitCode: result.exitCode, output };
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number | undefined): Promise<T> {
  if (!ms) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`The command did not finish within ${Math.round(ms / 1000)} s.`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The executor to use for a sandbox: SSH when a root target is known (output streams as it comes), else the
 * backend's exec API (Incus), else an error naming what is missing (TrueNAS needs SSH).
 */
export async function executorFor(
  backend: Backend,
  name: string,
  ssh?: { pool: SshPool; target: SshTarget },
): Promise<Executor> {
  if (ssh) return sshExecutor(ssh.pool, ssh.target);
  if ((await backend.capabilities()).exec) return backendExecutor(backend, name);
  throw new UnsupportedError(
    `Running commands in a ${BACKEND_PRODUCT[backend.kind]} sandbox needs SSH access as root: run "Pixels: Set Up SSH Access…" for "${name}" first.`,
  );
}
