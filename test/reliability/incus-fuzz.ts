// Garbage from an Incus server: every reply the backend parses, rewritten by the fault proxy in front of the lab's
// socket, for each kind of garbage: a typed error naming the request (or a still valid result), no crash, no hang.
import { createIncusBackend } from '../../src/backends/incus/index';
import type { IncusBackend } from '../../src/backends/incus/index';
import type { Lab } from '../lab/lab';
import { GARBAGE, type FuzzCase, judgeFuzz } from './garbage';
import { IncusFaultProxy } from './incus-proxy';

/** A call that has not ended after this long is a hang (each request's own timeout is 5 s). */
const BOUND_MS = 20_000;

/** Fuzzes the replies about `base` (an existing sandbox, short name) and the server itself. */
export async function fuzzIncus(lab: Lab, base: string): Promise<FuzzCase[]> {
  const proxy = await IncusFaultProxy.start(lab.socket);
  const make = (): IncusBackend =>
    createIncusBackend({
      serverId: 'fuzz',
      socketPath: proxy.socket,
      network: lab.bridge,
      storagePool: lab.poolBtrfs,
    });
  const inst = `px-${base}`;
  let serial = 0;
  const targets: { path: RegExp; named: string; drive: (b: IncusBackend) => Promise<unknown> }[] = [
    { path: /^\/1\.0$/, named: 'GET /1.0', drive: (b) => b.info() },
    { path: /^\/1\.0\/instances$/, named: 'GET /1.0/instances', drive: (b) => b.list() },
    {
      path: new RegExp(`^/1\\.0/instances/${inst}$`),
      named: `GET /1.0/instances/${inst}`,
      drive: (b) => b.get(base),
    },
    {
      path: new RegExp(`^/1\\.0/instances/${inst}/snapshots$`),
      named: `GET /1.0/instances/${inst}/snapshots`,
      drive: (b) => b.listCheckpoints(base),
    },
    {
      path: /^\/1\.0\/operations\/[^/]+\/wait$/,
      named: 'GET /1.0/operations',
      drive: (b) => b.createCheckpoint(base, `fz${++serial}`),
    },
  ];
  const cases: FuzzCase[] = [];
  try {
    for (const t of targets) {
      for (const g of GARBAGE) {
        const backend = make();
        proxy.add({
          method: 'GET',
          path: t.path,
          times: 100,
          action: {
            kind: 'rewrite',
            rewrite: (body) => Buffer.from(g.apply(body.toString('utf8'))),
            truncate: g.name === 'truncated',
          },
        });
        try {
          cases.push(
            await judgeFuzz(`Incus ${t.named} / ${g.name}`, t.named, BOUND_MS, () => t.drive(backend)),
          );
        } finally {
          proxy.clear();
          backend.dispose();
        }
      }
    }
    // Checkpoints the garbage did not stop are removed again. A snapshot whose wait reply was garbled is still
    // being made when the product gives up on reading it: Incus refuses the delete ("busy") until it is done.
    const cleanup = make();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          for (const c of await cleanup.listCheckpoints(base))
            if (/^fz\d+$/.test(c.label)) await cleanup.deleteCheckpoint(base, c.label);
          break;
        } catch (err) {
          if (attempt >= 30 || !/busy/i.test(String(err))) throw err;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    } finally {
      cleanup.dispose();
    }
  } finally {
    await proxy.close();
  }
  return cases;
}
