// Waiting for a just-started sandbox's sshd to answer, without paying for a lost SYN. Its address is known before
// the guest has configured it (Incus pins it on the NIC), so a first connection attempt usually leaves before
// the guest can answer: that SYN is queued for an ARP reply or dropped by the guest, and TCP sends it again only
// after a full second. Attempts started one after another (each a new SYN) get through as soon as the guest
// answers; the first that reads an SSH banner ends the wait and closes the others.
import { connect as tcpConnect, type Socket } from 'node:net';
import { CancelledError, ConnectionError } from '../core/errors';

export interface SshdProbeOptions {
  port?: number;
  /** How long to keep trying (the caller's remaining time). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** A new attempt starts this often while none has answered (default 100 ms). */
  staggerMs?: number;
  /** One attempt is given up after this long (default 2 s). */
  attemptMs?: number;
}

/** At most this many attempts are open at once (a server that accepts and never speaks must not collect sockets). */
const MAX_OPEN = 20;

/**
 * Resolves when a TCP connection to host:port reads an SSH banner ("SSH-"). On expiry: a ConnectionError whose
 * cause is the last socket error seen (ECONNREFUSED while sshd is not listening yet, EHOSTUNREACH …; ETIMEDOUT
 * when no attempt got any answer). CancelledError when the signal aborts.
 */
export function sshdAnswers(host: string, options: SshdProbeOptions): Promise<void> {
  const port = options.port ?? 22;
  const stagger = options.staggerMs ?? 100;
  const attemptMs = options.attemptMs ?? 2000;
  return new Promise<void>((resolve, reject) => {
    if (options.signal?.aborted) return reject(new CancelledError());
    const open = new Set<Socket>();
    let lastError: NodeJS.ErrnoException | undefined;
    let notSsh = false;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearInterval(ticker);
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
      for (const s of open) s.destroy();
      open.clear();
      if (err) reject(err);
      else resolve();
    };
    const attempt = () => {
      if (done || open.size >= MAX_OPEN) return;
      const socket = tcpConnect({ host, port });
      open.add(socket);
      socket.setTimeout(attemptMs, () => socket.destroy());
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1');
        if (head.startsWith('SSH-')) finish();
        else if (head.length >= 4 || !'SSH-'.startsWith(head)) {
          notSsh = true;
          socket.destroy();
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => (lastError = err));
      socket.on('close', () => open.delete(socket));
    };
    const onAbort = () => finish(new CancelledError());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const ticker = setInterval(attempt, stagger);
    const deadline = setTimeout(() => {
      const where = `${host}:${port}`;
      if (lastError)
        finish(
          new ConnectionError(`Cannot connect to ${where}: ${lastError.message}.`, { cause: lastError }),
        );
      else if (notSsh) finish(new ConnectionError(`${where} answers, but not with SSH.`));
      else
        finish(
          new ConnectionError(`Nothing answered on ${where} within ${options.timeoutMs} ms.`, {
            cause: Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }),
          }),
        );
    }, options.timeoutMs);
    attempt();
  });
}
