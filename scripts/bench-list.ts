// Benchmark: listing a big TrueNAS server. A simulator seeded with 1,000 `px-` sandboxes × 20 checkpoints and 200
// other instances; our backend lists everything (sandboxes with their checkpoints) vs a replay of the pixels CLI's
// call pattern for the same information: `pixels list`, then `pixels checkpoint list <name>` per sandbox, each
// command a new connection with login, job subscription and version (docs: pixels-reference.md §2.1, §2.4).
// Both sides talk to the same simulator over real sockets with TLS (wss://, a self-signed certificate pinned by
// fingerprint on our side, trusted as a CA by the replay), as both do against a real box. The simulator runs in its
// own process (a NAS is another machine), so our timing holds the client's work and the wait for the server, not
// the server's work on our event loop. Each timed part starts after a full GC in both processes and a short settle,
// so one side's garbage (the replay makes ~1,000 connections) is not collected in the other side's time. Lines:
//   list round trips: <API calls per refresh on a warm connection>
//   list speedup vs pixels pattern: <N>x        (median over rounds of: the replay / our cold list, new
//                                                connection included, timed back to back in the round)
//   npm run bench:list          (node --expose-gc; BENCH_ROUNDS, BENCH_SANDBOXES, BENCH_CHECKPOINTS)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTrueNASBackend } from '../src/backends/truenas/index';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSelfSignedCert, type TestCert } from '../test/lab/tls';
import { RawClient } from '../test/sim/rawclient';
import { SimProcess } from './bench/sim-process';
import { figure, median, runBench, spread, timed } from './bench/stats';

const API_KEY = '1-' + 'b'.repeat(64);
const SCALE = {
  sandboxes: Number(process.env.BENCH_SANDBOXES ?? 1000),
  checkpoints: Number(process.env.BENCH_CHECKPOINTS ?? 20),
  others: 200,
};
/** Rounds of (ours cold, pixels pattern); odd, so the median is one round's ratio. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
/** Quiet time after the GCs before a timed part (lets the sockets of the previous part close). */
const SETTLE_MS = 300;

const gc = (globalThis as { gc?: () => void }).gc;

/** Both processes collect their garbage and the machine settles, so a timed part starts from quiet. */
async function quiet(sim: SimProcess): Promise<void> {
  gc!();
  await sim.gc();
  await sleep(SETTLE_MS);
}

/** One pixels CLI command: connect, log in, subscribe to jobs, read the version, then its own calls. */
async function pixelsCommand<T>(
  sim: SimProcess,
  cert: TestCert,
  body: (c: RawClient) => Promise<T>,
): Promise<T> {
  const c = await RawClient.connect(sim.url, { ca: cert.cert });
  try {
    await c.login(API_KEY);
    await c.call('core.subscribe', ['core.get_jobs']);
    await c.call('system.version');
    return await body(c);
  } finally {
    c.close();
  }
}

/** `pixels list` + `pixels checkpoint list` for every sandbox (25.10: pool.snapshot.query). */
async function pixelsPattern(
  sim: SimProcess,
  cert: TestCert,
): Promise<{ sandboxes: number; checkpoints: number }> {
  const instances = await pixelsCommand(sim, cert, (c) =>
    c.call<{ name: string }[]>('virt.instance.query', [[['name', '^', 'px-']]], 60_000),
  );
  let checkpoints = 0;
  for (const inst of instances) {
    const snaps = await pixelsCommand(sim, cert, async (c) => {
      const g = await c.call<{ dataset: string }>('virt.global.config');
      return c.call<unknown[]>('pool.snapshot.query', [
        [['dataset', '=', `${g.dataset}/containers/${inst.name}`]],
      ]);
    });
    checkpoints += snaps.length;
  }
  return { sandboxes: instances.length, checkpoints };
}

async function ourList(sim: SimProcess, cert: TestCert) {
  const backend = createTrueNASBackend(
    {
      serverId: 'bench',
      host: '127.0.0.1',
      port: sim.port,
      secure: true,
      tlsFingerprint: cert.fingerprint,
      username: 'truenas_admin',
      callTimeoutMs: 60_000,
    },
    API_KEY,
  );
  return { backend, list: () => backend.list() };
}

async function main(): Promise<void> {
  if (typeof gc !== 'function') throw new Error('run with node --expose-gc (npm run bench:list does)');
  const dir = mkdtempSync(join(tmpdir(), 'px-bench-list-'));
  const cert = makeSelfSignedCert(dir, 'sim', { cn: 'localhost', san: 'IP:127.0.0.1' });
  let sim: SimProcess | undefined;
  try {
    const [started, seedMs] = await timed(() =>
      SimProcess.start({
        version: '25.10',
        apiKey: API_KEY,
        seedScale: SCALE,
        tls: { certFile: cert.certPath, keyFile: cert.keyPath },
        startTimeoutMs: 300_000,
      }),
    );
    sim = started;
    console.log(
      `simulator (own process): ${SCALE.sandboxes} px- sandboxes × ${SCALE.checkpoints} checkpoints + ${SCALE.others} other instances (started in ${Math.round(seedMs)} ms)`,
    );
    const expectedCheckpoints = SCALE.sandboxes * SCALE.checkpoints;

    // Rounds, each timing ours cold (a new backend: connection, login, version, pool config, then one list) and
    // the pixels pattern back to back, so both sides see the same machine load; the order alternates between
    // rounds; the figure is the median of the per-round ratios (a noisy machine moves both sides of a round
    // together, not one round against another).
    const ratios: number[] = [];
    const ours: number[] = [];
    const theirs: number[] = [];
    const timeOurs = async (round: number): Promise<number> => {
      const { backend, list } = await ourList(sim!, cert);
      await quiet(sim!);
      const before = await sim!.callCount();
      const [sandboxes, ms] = await timed(list);
      const coldCalls = (await sim!.callCount()) - before;
      const cps = sandboxes.reduce((n, s) => n + (s.checkpoints?.length ?? 0), 0);
      if (sandboxes.length !== SCALE.sandboxes || cps !== expectedCheckpoints)
        throw new Error(`our list saw ${sandboxes.length} sandboxes / ${cps} checkpoints`);
      if (sandboxes.some((s) => s.name.startsWith('other')))
        throw new Error('our list shows an instance without the px- prefix');
      // Warm: the refresh the tree does on an open connection.
      const warmBefore = await sim!.callCount();
      await list();
      const warmCalls = (await sim!.callCount()) - warmBefore;
      backend.dispose();
      if (round === 0) {
        console.log(
          `ours: ${coldCalls} API calls for a cold list (connect included), ${warmCalls} for a refresh`,
        );
        figure('list round trips', String(warmCalls));
      }
      return ms;
    };
    const timeTheirs = async (round: number): Promise<number> => {
      await quiet(sim!);
      const before = await sim!.callCount();
      const [seen, ms] = await timed(() => pixelsPattern(sim!, cert));
      if (seen.sandboxes !== SCALE.sandboxes || seen.checkpoints !== expectedCheckpoints)
        throw new Error(
          `the pixels pattern saw ${seen.sandboxes} sandboxes / ${seen.checkpoints} checkpoints`,
        );
      if (round === 0)
        console.log(
          `pixels pattern: ${(await sim!.callCount()) - before} API calls on ${SCALE.sandboxes + 1} connections`,
        );
      return ms;
    };
    for (let round = 0; round < ROUNDS; round++) {
      let ms: number;
      let pixelsMs: number;
      if (round % 2 === 0) {
        ms = await timeOurs(round);
        pixelsMs = await timeTheirs(round);
      } else {
        pixelsMs = await timeTheirs(round);
        ms = await timeOurs(round);
      }
      ours.push(ms);
      theirs.push(pixelsMs);
      ratios.push(pixelsMs / ms);
      console.log(
        `round ${round + 1}/${ROUNDS}: ours ${Math.round(ms)} ms, pixels pattern ${Math.round(pixelsMs)} ms, ${(pixelsMs / ms).toFixed(1)}x`,
      );
    }
    console.log(
      `ours cold: median ${Math.round(median(ours))} ms (spread ${(spread(ours) * 100).toFixed(0)} %); pixels pattern: ` +
        `median ${Math.round(median(theirs))} ms (spread ${(spread(theirs) * 100).toFixed(0)} %); ratios ` +
        `${ratios.map((r) => r.toFixed(1)).join(', ')}`,
    );
    figure('list speedup vs pixels pattern', `${median(ratios).toFixed(1)}x`);
  } finally {
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench(main);
