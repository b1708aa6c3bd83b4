// Benchmark: listing a big Incus server. Makes N stopped `px-` instances with 5 checkpoints each on the lab's btrfs
// pool (one source made through our backend, the rest `incus copy` of it, snapshots included), then counts the API
// calls one refresh of our backend makes (every request the REST client sends is counted), and removes them all.
// Line: `incus list round trips: <N>`.
//   npm run bench:incus-list        (needs the lab: sudo bash test/lab/up.sh)
// BENCH_INCUS_INSTANCES (default 20): 100 was measured once on the shared lab (1 call; the copies took 97 s, but
// removing them 26 min on the loaded machine), too long for the shared lock, so the default run makes 20.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { createIncusBackend } from '../src/backends/incus/index';
import { silentLogger } from '../src/core/log';
import { requireLab } from '../test/lab/lab';
import { figure, median, runBench, timed } from './bench/stats';

const run = promisify(execFile);
const INSTANCES = Number(process.env.BENCH_INCUS_INSTANCES ?? 20);
const CHECKPOINTS = 5;
const PARALLEL = 4;

async function inBatches<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARALLEL) await Promise.all(items.slice(i, i + PARALLEL).map(fn));
}

async function main(): Promise<void> {
  const lab = await requireLab();
  let requests = 0;
  const backend = createIncusBackend(
    { serverId: 'lab', socketPath: lab.socket, network: lab.bridge, storagePool: lab.poolBtrfs },
    { ...silentLogger, trace: (m: string) => void (/^incus [A-Z]+ \//.test(m) && requests++) },
  );
  const prefix = `bl${randomBytes(2).toString('hex')}`;
  const names = Array.from({ length: INSTANCES }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  const made: string[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      const [, cleanMs] = await timed(() =>
        inBatches(made, async (name) => {
          await run('incus', ['delete', '--force', `px-${name}`]).catch((err: unknown) =>
            console.error(`could not remove px-${name}: ${(err as Error).message}`),
          );
        }),
      );
      console.log(`removed ${made.length} instances in ${(cleanMs / 1000).toFixed(1)} s`);
    })());
  // Stopped from outside (a timeout, Ctrl-C): remove what was made before going.
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.on('SIGTERM', onSignal); // a second signal while cleaning must not cut it short
  process.on('SIGINT', onSignal);
  try {
    const [, sourceMs] = await timed(async () => {
      await backend.create({ name: names[0], image: lab.image, start: false });
      made.push(names[0]);
      for (let c = 0; c < CHECKPOINTS; c++) await backend.createCheckpoint(names[0], `cp${c}`);
    });
    const copyMs: number[] = [];
    const [, copiesMs] = await timed(() =>
      inBatches(names.slice(1), async (name) => {
        made.push(name);
        const [, ms] = await timed(() =>
          run('incus', ['copy', `px-${names[0]}`, `px-${name}`, '-s', lab.poolBtrfs]),
        );
        copyMs.push(ms);
      }),
    );
    console.log(
      `made ${INSTANCES} stopped instances × ${CHECKPOINTS} snapshots on ${lab.poolBtrfs}: source ${Math.round(sourceMs)} ms, ` +
        `${INSTANCES - 1} copies in ${(copiesMs / 1000).toFixed(1)} s (median ${Math.round(median(copyMs))} ms each, ${PARALLEL} at a time)`,
    );

    await backend.list(); // warm: the cluster check is made once per backend
    const before = requests;
    const [sandboxes, listMs] = await timed(() => backend.list());
    const calls = requests - before;
    const ours = sandboxes.filter((s) => s.name.startsWith(`${prefix}-`));
    const cps = ours.reduce((n, s) => n + (s.checkpoints?.length ?? 0), 0);
    if (ours.length !== INSTANCES || cps !== INSTANCES * CHECKPOINTS)
      throw new Error(`the list saw ${ours.length} of our sandboxes with ${cps} checkpoints`);
    console.log(
      `list: ${sandboxes.length} sandboxes (${INSTANCES} ours, ${cps} of their checkpoints) in ${Math.round(listMs)} ms`,
    );
    figure('incus list round trips', String(calls));
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await cleanup();
    backend.dispose();
  }
}

runBench(main);
