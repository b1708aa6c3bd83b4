// Benchmark on the lab's 3-member Incus cluster (test/lab/cluster-up.sh):
//   - `cluster members: N`: members the backend sees;
//   - `cluster list round trips: N`: HTTP requests one list() makes once the backend is warm (counted by a proxy
//     on the socket), whatever the number of members and sandboxes;
//   - `cross-member clone-to-ssh ratio: N`: a clone of a checkpoint onto another member until SSH logs in, through
//     our backend vs the raw CLI path (`incus copy --target` + `incus start` + first SSH login), same source on
//     pxm1, targets alternating between the other members, runs interleaved; median ours / median raw.
//   npm run bench:cluster      (BENCH_RUNS, default 6)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createIncusBackend } from '../src/backends/incus/index';
import { globalAddress } from '../src/backends/incus/mapping';
import { IncusRestClient } from '../src/backends/incus/rest-client';
import type { IncusInstanceState } from '../src/backends/incus/types';
import { requireCluster } from '../test/lab/cluster';
import { countingProxy } from '../test/lab/count-proxy';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 6);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => `${Math.round(x)} ms`;
let phases = '';

async function main(): Promise<void> {
  const cluster = await requireCluster();
  const dir = mkdtempSync(join(tmpdir(), 'px-bench-cluster-'));
  const proxy = await countingProxy(cluster.socket);
  const tag = randomBytes(2).toString('hex');
  const src = `bcl${tag}`;
  const backend = createIncusBackend({
    serverId: 'cluster',
    socketPath: proxy.path,
    network: cluster.network,
    storagePool: cluster.pool,
  });
  const raw = new IncusRestClient({ socketPath: cluster.socket });
  const env = { ...process.env, INCUS_DIR: cluster.memberDirs[cluster.members[0]] };
  const made: string[] = [];

  const sshReady = async (ip: string): Promise<void> => {
    const deadline = Date.now() + 60_000;
    const known = join(dir, `known_${ip}_${Date.now()}`);
    for (;;) {
      try {
        await run(
          'ssh',
          [
            ...['-i', join(dir, 'id'), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new'],
            ...['-o', `UserKnownHostsFile=${known}`, '-o', 'ConnectTimeout=2', '-o', 'LogLevel=ERROR'],
            `root@${ip}`,
            'true',
          ],
          { timeout: 10_000 },
        );
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`ssh to ${ip} not ready: ${(err as Error).message}`, { cause: err });
        await sleep(100);
      }
    }
  };
  const addressOf = async (inst: string): Promise<string> => {
    for (;;) {
      // Both sides read the address the same way: one REST call every 100 ms.
      const state = (await raw.call<IncusInstanceState>('GET', `/1.0/instances/${inst}/state`)).metadata;
      const ip = globalAddress(state, 'inet');
      if (ip) return ip;
      await sleep(100);
    }
  };

  const oursOnce = async (name: string, target: string): Promise<number> => {
    const t0 = performance.now();
    const clone = await backend.clone({ sandbox: src, checkpoint: 'bench', target }, name);
    if (clone.location !== target) throw new Error(`clone landed on ${clone.location}, not ${target}`);
    const t1 = performance.now();
    const ip = await addressOf(`px-${name}`);
    const t2 = performance.now();
    await sshReady(ip);
    const t3 = performance.now();
    phases = `clone+start ${ms(t1 - t0)}, ip ${ms(t2 - t1)}, ssh ${ms(t3 - t2)}`;
    return (t3 - t0) / 1000;
  };
  const rawOnce = async (name: string, target: string): Promise<number> => {
    const inst = `px-${name}`;
    const t0 = performance.now();
    await run('incus', ['copy', `px-${src}/bench`, inst, '--target', target], { env });
    const t1 = performance.now();
    await run('incus', ['start', inst], { env });
    const t2 = performance.now();
    const ip = await addressOf(inst);
    const t3 = performance.now();
    await sshReady(ip);
    const t4 = performance.now();
    phases = `copy ${ms(t1 - t0)}, start ${ms(t2 - t1)}, ip ${ms(t3 - t2)}, ssh ${ms(t4 - t3)}`;
    return (t4 - t0) / 1000;
  };

  try {
    const info = await backend.info();
    const members = info.clusterMembers ?? [];
    console.log(`cluster members: ${members.length}`);

    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
    await backend.create({ name: src, image: cluster.image, target: members[0], start: false });
    made.push(src);
    await backend.writeFile(src, '/root/.ssh/authorized_keys', readFileSync(join(dir, 'id.pub')), {
      mode: 0o600,
    });
    await backend.start(src);
    await sshReady(await addressOf(`px-${src}`));
    await backend.createCheckpoint(src, 'bench');

    await backend.list(); // warm: the server's description is read once per backend
    const before = proxy.requests.length;
    const listed = await backend.list();
    const trips = proxy.requests.slice(before);
    console.log(
      `list: ${listed.length} sandboxes on ${members.length} members; requests: ${trips.join(', ')}`,
    );
    console.log(`cluster list round trips: ${trips.length}`);

    const others = members.slice(1);
    const ours: number[] = [];
    const rawTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const target = others[i % others.length];
      for (const side of i % 2 === 0 ? (['ours', 'raw'] as const) : (['raw', 'ours'] as const)) {
        const name = `${src}-${side[0]}${i}`;
        made.push(name);
        const t = side === 'ours' ? await oursOnce(name, target) : await rawOnce(name, target);
        (side === 'ours' ? ours : rawTimes).push(t);
        console.log(`run ${i + 1} ${side.padEnd(4)} -> ${target} ${t.toFixed(2)} s  (${phases})`);
        await backend.destroy(name);
        made.pop();
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    console.log(`ours: median ${median(ours).toFixed(2)} s, min ${Math.min(...ours).toFixed(2)} s`);
    console.log(`raw:  median ${median(rawTimes).toFixed(2)} s, min ${Math.min(...rawTimes).toFixed(2)} s`);
    console.log(`cross-member clone-to-ssh ratio: ${(median(ours) / median(rawTimes)).toFixed(2)}`);
  } finally {
    for (const name of made) await backend.destroy(name).catch(() => undefined);
    backend.dispose();
    raw.close();
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
