// Running a command through the API (no SSH needed): POST /exec with one websocket per stdio stream.
// stdin is written and then closed (EOF); stdout/stderr are collected until the server closes them.
import WebSocket from 'ws';
import { CancelledError, ServerError, TimeoutError } from '../../core/errors';
import type { ExecResult } from '../../core/sandbox';
import type { IncusOperation, Operations } from './operations';
import type { IncusRestClient } from './rest-client';

interface ExecStarted {
  id: string;
  metadata: { fds: Record<string, string> };
}

export interface ExecOptions {
  stdin?: Buffer;
  env?: Record<string, string>;
  cwd?: string;
  /** Whole command, including the wait for the exit code; when it runs out the command is killed. */
  timeoutMs?: number;
  /** Aborting kills the command and rejects with CancelledError. */
  signal?: AbortSignal;
}

export async function execInInstance(
  client: IncusRestClient,
  operations: Operations,
  instance: string,
  argv: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  if (argv.length === 0) throw new ServerError('exec needs a command.');
  if (options.signal?.aborted) throw new CancelledError();
  const started = await client.call<ExecStarted>(
    'POST',
    `/1.0/instances/${encodeURIComponent(instance)}/exec`,
    {
      body: {
        command: argv,
        environment: {
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          HOME: '/root',
          ...options.env,
        },
        'wait-for-websocket': true,
        interactive: false,
        ...(options.cwd ? { cwd: options.cwd } : {}),
      },
    },
  );
  const opId = started.metadata.id;
  const fds = started.metadata.metadata.fds;
  const open = (secret: string) => {
    const { url, options: wsOptions } = client.websocketTarget(`/1.0/operations/${opId}/websocket`, {
      secret,
    });
    return new WebSocket(url, wsOptions);
  };
  const collect = (ws: WebSocket, into: Buffer[]) =>
    new Promise<void>((resolve) => {
      ws.on('message', (data: WebSocket.RawData) => {
        if (Buffer.isBuffer(data)) into.push(data);
        else if (Array.isArray(data)) into.push(...data);
        else into.push(Buffer.from(data));
      });
      ws.on('close', () => resolve());
      ws.on('error', () => resolve());
    });
  const opened = (ws: WebSocket) =>
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', (err) => reject(client.transportError(err)));
    });

  const control = open(fds.control);
  const stdin = open(fds['0']);
  const stdoutWs = open(fds['1']);
  const stderrWs = open(fds['2']);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const outDone = collect(stdoutWs, out);
  const errDone = collect(stderrWs, err);
  const timeout = options.timeoutMs ?? 10 * 60_000;
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, timeout);
  const onCallerAbort = () => abort.abort();
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  // Most exec operations cannot be cancelled through the API: the process itself is killed (SIGKILL over the
  // control socket), so the operation ends at once instead of running on after a timeout or an abort. Only
  // that process gets the signal; children it started in the background (e.g. from a shell script) live on.
  const kill = () => {
    if (control.readyState === WebSocket.OPEN) control.send(JSON.stringify({ command: 'signal', signal: 9 }));
  };
  abort.signal.addEventListener('abort', kill);
  try {
    await Promise.all([opened(control), opened(stdin), opened(stdoutWs), opened(stderrWs)]);
    if (abort.signal.aborted) kill(); // the abort came while the sockets were opening
    if (options.stdin?.length) stdin.send(options.stdin);
    stdin.close(1000); // EOF for the command's stdin
    let done: IncusOperation;
    try {
      done = await operations.wait(opId, abort.signal);
    } catch (err) {
      if (timedOut)
        throw new TimeoutError(
          `The command did not finish within ${Math.round(timeout / 1000)} s and was stopped.`,
          { cause: err },
        );
      throw err;
    }
    // Output can trail the operation's end by a moment; wait for both streams to close, briefly.
    await Promise.race([Promise.all([outDone, errDone]), new Promise((r) => setTimeout(r, 2000))]);
    const code = Number((done.metadata as { return?: number } | null)?.return ?? -1);
    return { exitCode: code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onCallerAbort);
    for (const ws of [control, stdin, stdoutWs, stderrWs])
      if (ws.readyState <= WebSocket.OPEN) ws.terminate();
  }
}
