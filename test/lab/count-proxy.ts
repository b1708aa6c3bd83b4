// A unix-socket proxy in front of an Incus socket that counts the HTTP requests going through it: how many round
// trips a client call really makes (the cluster list test and bench:cluster). Bytes pass through unchanged.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CountingProxy {
  /** The socket to give the client instead of the real one. */
  path: string;
  /** Requests seen so far, e.g. "GET /1.0/instances?recursion=2". */
  requests: string[];
  close(): Promise<void>;
}

const REQUEST_LINE = /(?:^|\r\n\r\n|\n)(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP\/1\.1\r\n/g;

export async function countingProxy(target: string): Promise<CountingProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'px-count-'));
  const path = join(dir, 'incus.socket');
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      // Request heads are ASCII and small: each arrives at the start of a chunk or after the previous body.
      for (const m of chunk.toString('latin1').matchAll(REQUEST_LINE)) requests.push(`${m[1]} ${m[2]}`);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  return {
    path,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
