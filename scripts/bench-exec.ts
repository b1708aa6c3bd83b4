// Benchmark (not a test): a command round trip (`true`) over the warm pooled ssh2 connection vs spawning the
// OpenSSH client per command, against the same real sshd on loopback. Last line: `exec speedup: <N.N>x`.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { KnownHosts } from '../src/ssh/known-hosts';
import { SshPool } from '../src/ssh/pool';
import { startSshdFixture, strictSshArgs } from '../test/lab/sshd';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function sshOnce(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ssh', args, (err, _stdout, stderr) =>
      err ? reject(new Error(`ssh failed: ${stderr || err.message}`)) : resolve(),
    );
  });
}

async function main(): Promise<void> {
  const fx = await startSshdFixture();
  const pool = new SshPool();
  try {
    // The OpenSSH client gets the same strict setup the extension writes: our known_hosts, no TOFU.
    const keyFile = join(fx.sshd.dir, 'client_key');
    await fs.writeFile(keyFile, fx.userKey.privateOpenSsh, { mode: 0o600 });
    const knownHosts = new KnownHosts(join(fx.sshd.dir, 'known_hosts'));
    await knownHosts.set([fx.sshd.host], fx.sshd.hostKeyPub, fx.sshd.port);
    const sshArgs = [
      ...strictSshArgs({
        keyFile,
        knownHostsPath: knownHosts.path,
        port: fx.sshd.port,
        destination: `${fx.sshd.user}@${fx.sshd.host}`,
      }),
      'true',
    ];

    await pool.exec(fx.target, 'true'); // warm up: the pool's one connection is open from here on
    await sshOnce(sshArgs);

    const logins = () => (fx.sshd.log().match(/Accepted publickey/g) ?? []).length;
    const loginsBefore = logins();
    const pooled: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      const result = await pool.exec(fx.target, 'true');
      pooled.push(performance.now() - started);
      if (result.exitCode !== 0) throw new Error(`pooled exec exited ${result.exitCode}`);
    }
    const pooledLogins = logins() - loginsBefore;
    const spawned: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      await sshOnce(sshArgs);
      spawned.push(performance.now() - started);
    }
    const pooledMedian = median(pooled);
    const spawnedMedian = median(spawned);
    console.log(
      `runs: ${RUNS} each against sshd ${fx.sshd.host}:${fx.sshd.port}; ` +
        `new logins during the pooled runs: ${pooledLogins}, during the ssh runs: ${logins() - loginsBefore - pooledLogins}`,
    );
    console.log(`pooled ssh2 exec median: ${pooledMedian.toFixed(2)} ms`);
    console.log(`ssh per command median:  ${spawnedMedian.toFixed(2)} ms`);
    console.log(`exec speedup: ${(spawnedMedian / pooledMedian).toFixed(1)}x`);
  } finally {
    pool.dispose();
    await fx.sshd.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
