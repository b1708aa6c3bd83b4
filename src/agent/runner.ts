// How the agent tools run one argv as root inside a sandbox: over SSH (the host key pinned here) or through the
// backend's exec API (Incus). Both keep at most `maxOutputBytes` of each stream (the tail) and say when they cut.
import type { Backend } from '../core/backend';
import type { SshTarget } from '../ssh/connect';
import type { SshPool } from '../ssh/pool';
import { quoteCommand } from '../ssh/quote';

export interface RunOptions {
  stdin?: Buffer;
  /** The host stops waiting after this long (the command itself is bounded inside the sandbox by `timeout`). */
  timeoutMs: number;
  maxOutputBytes: number;
  signal?: AbortSignal;
}

export interface RunResult {
  /** null when the command was killed by a signal. */
  exitCode: number | null;
  signal?: string;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

export interface SandboxRunner {
  /** Who the command runs as, for the result the model sees. */
  readonly user: string;
  /** How it gets there, e.g. "ssh" or "incus exec". */
  readonly via: string;
  run(argv: readonly string[], options: RunOptions): Promise<RunResult>;
}

/** Over a pooled SSH connection; `target` must log in as root. */
export function sshRunner(pool: SshPool, target: SshTarget): SandboxRunner {
  return {
    user: target.username,
    via: 'ssh',
    async run(argv, options) {
      const r = await pool.exec(target, quoteCommand(argv), {
        stdin: options.stdin,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
        maxBufferBytes: options.maxOutputBytes,
      });
      return {
        exitCode: r.exitCode,
        signal: r.signal,
        stdout: r.stdout,
        stderr: r.stderr,
        stdoutTruncated: r.stdoutTruncated,
        stderrTruncated: r.stderrTruncated,
      };
    },
  };
}

function tail(buffer: Buffer, limit: number): { data: Buffer; truncated: boolean } {
  return buffer.length > limit
    ? { data: buffer.subarray(buffer.length - limit), truncated: true }
    : { data: buffer, truncated: false };
}

type ExecWithTimeout = (
  name: string,
  argv: string[],
  options: { stdin?: Buffer; timeoutMs?: number; signal?: AbortSignal },
) => ReturnType<NonNullable<Backend['exec']>>;

/** Through the backend's exec API (capability `exec`), as root; output arrives when the command ends. */
export function backendRunner(
  backend: Backend,
  name: string,
  exec: NonNullable<Backend['exec']>,
): SandboxRunner {
  const call = exec.bind(backend) as ExecWithTimeout;
  return {
    user: 'root',
    via: `${backend.kind} exec`,
    async run(argv, options) {
      const r = await call(name, [...argv], {
        stdin: options.stdin,
        timeoutMs: options.timeoutMs,
        signal: options.signal,
      });
      const out = tail(r.stdout, options.maxOutputBytes);
      const err = tail(r.stderr, options.maxOutputBytes);
      return {
        exitCode: r.exitCode,
        stdout: out.data,
        stderr: err.data,
        stdoutTruncated: out.truncated,
        stderrTruncated: err.truncated,
      };
    },
  };
}
