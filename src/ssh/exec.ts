// One command on an open ssh2 connection: output streamed to callbacks as it arrives and also kept (the last
// `maxBufferBytes` of each stream), stdin sent only when given, exit code or signal reported.
import type { Client, ClientChannel } from 'ssh2';
import { CancelledError, ConnectionError, PixelsError, TimeoutError } from '../core/errors';
import { loginShellCommand, quoteCommand } from './quote';

export interface ExecOptions {
  /** Sent to the command, then EOF. Without it the command's stdin is closed at once (never our stdin). */
  stdin?: Buffer | string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Run through `bash -lc` (the user's login environment: PATH, mise shims …). */
  loginShell?: boolean;
  /** Kill the command and fail with TimeoutError after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** How much of each stream the result keeps (its tail); everything is still streamed. Default 16 MiB. */
  maxBufferBytes?: number;
}

export interface SshExecResult {
  /** The exit status, or null when the command was killed by a signal. */
  exitCode: number | null;
  /** Signal name (e.g. `SIGKILL`) when the command was killed by one. */
  signal?: string;
  stdout: Buffer;
  stderr: Buffer;
  /** True when the output was longer than maxBufferBytes and only its tail is kept. */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** Node-style signal name (`SIGKILL`), whatever form the server sent. */
export function signalName(signal: string | undefined): string {
  if (!signal) return 'UNKNOWN';
  return signal.startsWith('SIG') ? signal : `SIG${signal}`;
}

/** The exit status ssh2 hands to a channel's 'exit' and 'close' listeners; undefined when the server sent none. */
export function exitFromClose(
  code: number | null | undefined,
  signal: string | undefined,
): { code: number | null; signal?: string } | undefined {
  if (typeof code === 'number') return { code };
  if (code === null) return { code: null, signal: signalName(signal) };
  return undefined;
}

/** Keeps the last `limit` bytes of a stream. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      this.truncated = true;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** The single command string sent to the server. */
export function commandString(command: string | readonly string[], loginShell = false): string {
  if (loginShell) return loginShellCommand(command);
  return typeof command === 'string' ? command : quoteCommand(command);
}

/** A command the server accepted: its listeners are attached and its stdin is sent or closed. */
export interface RunningCommand {
  channel: ClientChannel;
  result: Promise<SshExecResult>;
}

/**
 * Starts a command and drives it to completion. The listeners go on inside ssh2's exec callback, in the same
 * tick the channel is handed over: the server's reply, the output, the exit status and the close of a fast
 * command often arrive in one TCP read (a bridge or VM network batches them), and ssh2 emits them all before
 * any promise continuation could run. Rejects with ConnectionError when the connection cannot open a channel
 * (then nothing ran).
 */
export function startCommand(
  client: Client,
  command: string,
  label: string,
  options: ExecOptions = {},
  connectionClosed: () => boolean = () => false,
): Promise<RunningCommand> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(command, (err, channel) => {
        if (err)
          return reject(
            new ConnectionError(`Cannot start a command on ${label}: ${err.message}`, { cause: err }),
          );
        const result = runOnChannel(channel, label, options, connectionClosed);
        // The caller awaits `result` right after this promise; until then a rejection is not "unhandled".
        result.catch(() => {});
        resolve({ channel, result });
      });
    } catch (err) {
      reject(
        new ConnectionError(`Cannot start a command on ${label}: ${(err as Error).message}`, { cause: err }),
      );
    }
  });
}

/**
 * Asks sshd to SIGKILL the command. ssh2's public `signal()` is a no-op once we sent EOF on stdin (which we do
 * at once), so the request goes through its protocol object. sshd honours it for non-root users (for root it
 * logs "session signalling requires privilege separation"); closing the channel follows either way.
 */
function sendKill(channel: ClientChannel): void {
  const internal = channel as unknown as {
    outgoing?: { id?: number; state?: string };
    _client?: { _protocol?: { signal?: (id: number, name: string) => void } };
  };
  const id = internal.outgoing?.id;
  const state = internal.outgoing?.state;
  if (id === undefined || (state !== 'open' && state !== 'eof')) return;
  try {
    internal._client?._protocol?.signal?.(id, 'KILL');
  } catch {
    // the connection is already gone
  }
}

/**
 * Drives an exec channel to completion; call it synchronously when ssh2 hands the channel over (see
 * startCommand). `connectionClosed` tells a channel torn down with its connection (lost) from one the server
 * closed itself.
 */
export function runOnChannel(
  channel: ClientChannel,
  label: string,
  options: ExecOptions = {},
  connectionClosed: () => boolean = () => false,
): Promise<SshExecResult> {
  const limit = options.maxBufferBytes ?? 16 * 1024 * 1024;
  const stdout = new TailBuffer(limit);
  const stderr = new TailBuffer(limit);
  return new Promise((resolve, reject) => {
    let exit: { code: number | null; signal?: string } | undefined;
    let failure: Error | undefined;
    let timer: NodeJS.Timeout | undefined;

    const settle = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const stop = (err: Error) => {
      if (failure) return;
      failure = err;
      settle();
      sendKill(channel);
      // Do not wait for the server: sshd keeps a non-pty session open until its command ends.
      channel.close();
      reject(err);
    };
    const onAbort = () => stop(new CancelledError('The command was cancelled.'));

    // A throwing output callback ends the command instead of crashing the event loop.
    const deliver = (callback: ((chunk: Buffer) => void) | undefined, chunk: Buffer) => {
      try {
        callback?.(chunk);
      } catch (err) {
        stop(err instanceof Error ? err : new Error(String(err)));
      }
    };
    channel.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      deliver(options.onStdout, chunk);
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      deliver(options.onStderr, chunk);
    });
    // The status arrives as 'exit' (exit-status or exit-signal), and ssh2 repeats it as the arguments of
    // 'close'; either one is enough.
    channel.on('exit', (code?: number | null, signal?: string) => {
      exit ??= exitFromClose(code, signal);
    });
    channel.on('close', (code?: number | null, signal?: string) => {
      if (failure) return;
      settle();
      exit ??= exitFromClose(code, signal);
      if (!exit) {
        // No status at all: either the connection went away under the command, or the server closed the
        // channel without one (OpenSSH always sends one for a command that ended).
        return reject(
          connectionClosed()
            ? new ConnectionError(`The connection to ${label} was lost while the command was running.`)
            : new PixelsError('server', `The command on ${label} ended without reporting an exit status.`),
        );
      }
      resolve({
        exitCode: exit.code,
        ...(exit.signal ? { signal: exit.signal } : {}),
        stdout: stdout.toBuffer(),
        stderr: stderr.toBuffer(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      });
    });

    if (options.signal) {
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(
        () =>
          stop(new TimeoutError(`The command on ${label} did not finish within ${options.timeoutMs} ms.`)),
        options.timeoutMs,
      );
    }
    if (options.stdin !== undefined) channel.end(options.stdin);
    else channel.end();
  });
}
