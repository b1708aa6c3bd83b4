// Benchmark: clone-from-checkpoint -> SSH-ready, through our Incus backend vs the raw CLI path
// (`incus copy` + `incus start` + first SSH login), same btrfs pool, same source checkpoint, 10 runs each,
// interleaved. Both sides find the IPv4 the same way (a REST call every 100 ms) and log in with the same ssh
// command (BatchMode, accept-new into a fresh known_hosts file).
// Last line: `clone-to-ssh ratio: <median ours / median raw>`.
//   npm run bench:clone            (needs the lab: sudo bash test/lab/up.sh)
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createIncusBackend } from '../src/backends/incus/index';
import { silentLogger } from '../src/core/log';
import { globalAddress } from '../src/backends/incus/mapping';
import { IncusRestClient } from '../src/backends/incus/rest-client';
import type { IncusInstanceState } from '../src/backends/incus/types';
import { requireLab } from '../test/lab/lab';

const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (x: number) => `${Math.round(x)} ms`;
let phases = '';
let cloneDetail = '';

async function main(): Promise<void> {
  const lab = await requireLab();
  const dir = mkdtempSync(join(tmpdir(), 'px-bench-'));
  const tag = randomBytes(2).toString('hex');
  const src = `bench${tag}`;
  const backend = createIncusBackend(
    {
      serverId: 'lab',
      socketPath: lab.socket,
      network: lab.bridge,
      storagePool: lab.poolBtrfs,
    },
    { ...silentLogger, debug: (m: string) => (cloneDetail = m.replace(/^clone \S+: /, '')) },
  );
  const raw = new IncusRestClient({ socketPath: lab.socket });
  const made: string[] = [];

  const sshReady = async (ip: string, deadlineMs = 60_000): Promise<void> => {
    const deadline = Date.now() + deadlineMs;
    const known = join(dir, `known_${ip}_${Date.now()}`);
    for (;;) {
      try {
        await run(
          'ssh',
          [
            '-i',
            join(dir, 'id'),
            '-o',
            'BatchMode=yes',
            '-o',
            'StrictHostKeyChecking=accept-new',
            '-o',
            `UserKnownHostsFile=${known}`,
            '-o',
            'ConnectTimeout=2',
            '-o',
            'LogLevel=ERROR',
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

  const oursOnce = async (name: string): Promise<number> => {
    const t0 = performance.now();
    await backend.clone({ sandbox: src, checkpoint: 'bench' }, name);
    const t1 = performance.now();
    let ip: string | undefined;
    while (!(ip = (await backend.get(name)).ipv4)) await sleep(100);
    const t2 = performance.now();
    await sshReady(ip);
    const t3 = performance.now();
    phases = `clone+start ${ms(t1 - t0)} [${cloneDetail}], ip ${ms(t2 - t1)}, ssh ${ms(t3 - t2)}`;
    return (t3 - t0) / 1000;
  };

  const rawOnce = async (name: string): Promise<number> => {
    const inst = `px-${name}`;
    const t0 = performance.now();
    await run('incus', ['copy', `px-${src}/bench`, inst, '-s', lab.poolBtrfs]);
    const t1 = performance.now();
    await run('incus', ['start', inst]);
    const t2 = performance.now();
    let ip = '';
    while (!ip) {
      // The address is read the same way on both sides (one REST call every 100 ms on the same socket), so the
      // comparison is about the clone path, not about spawning `incus query` processes.
      const state = (await raw.call<IncusInstanceState>('GET', `/1.0/instances/${inst}/state`)).metadata;
      ip = globalAddress(state, 'inet') ?? '';
      if (!ip) await sleep(100);
    }
    const t3 = performance.now();
    await sshReady(ip);
    const t4 = performance.now();
    phases = `copy ${ms(t1 - t0)}, start ${ms(t2 - t1)}, ip ${ms(t3 - t2)}, ssh ${ms(t4 - t3)}`;
    return (t4 - t0) / 1000;
  };

  try {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
    console.log(`source px-${src} on pool ${lab.poolBtrfs} (image ${lab.image})`);
    await backend.create({ name: src, image: lab.image, start: false });
    made.push(src);
    await backend.writeFile(src, '/root/.ssh/authorized_keys', readFileSync(join(dir, 'id.pub')), {
      mode: 0o600,
    });
    await backend.start(src);
    let ip: string | undefined;
    while (!(ip = (await backend.get(src)).ipv4)) await sleep(100);
    await sshReady(ip);
    await backend.createCheckpoint(src, 'bench');

    const ours: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      for (const side of i % 2 === 0 ? (['ours', 'raw'] as const) : (['raw', 'ours'] as const)) {
        const name = `${src}-${side[0]}${i}`;
        made.push(name);
        let t: number;
        try {
          t = side === 'ours' ? await oursOnce(name) : await rawOnce(name);
        } catch (err) {
          // Say which side failed and why sshd did not answer, then stop.
          const diag = await backend
            .exec(name, [
              'sh',
              '-c',
              'ls -l /etc/ssh; systemctl status ssh ssh-hostkeys --no-pager -l | tail -20',
            ])
            .then((r) => r.stdout.toString() + r.stderr.toString())
            .catch((e: unknown) => String(e));
          throw new Error(`run ${i + 1} ${side}: ${(err as Error).message}\n${diag}`, { cause: err });
        }
        (side === 'ours' ? ours : raw).push(t);
        console.log(`run ${i + 1} ${side.padEnd(4)} ${t.toFixed(2)} s  (${phases})`);
        await backend.destroy(name);
        made.pop();
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `ours: median ${median(ours).toFixed(2)} s, mean ${mean(ours).toFixed(2)} s, min ${Math.min(...ours).toFixed(2)} s`,
    );
    console.log(
      `raw:  median ${median(raw).toFixed(2)} s, mean ${mean(raw).toFixed(2)} s, min ${Math.min(...raw).toFixed(2)} s`,
    );
    console.log(`clone-to-ssh ratio: ${(median(ours) / median(raw)).toFixed(2)}`);
  } finally {
    for (const name of made) await backend.destroy(name).catch(() => undefined);
    backend.dispose();
    raw.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
