// Part 4b of `npm run test:reliability`, beside the two real extension hosts of concurrency.test.ts: two Node
// processes running the product's vscode-free layers at a volume the windows cannot reach in the time bound, and
// with what the windows cannot do on the simulator: a TrueNAS clone (through the extension it needs SSH into the
// clone, and the simulator runs no sshd). Create, checkpoint, clone and restore on one TrueNAS (simulator), SSH
// config + known_hosts writes to the same files; the end state is checked: nothing lost, duplicated or damaged.
// Prints "concurrency: 2 processes, N operations, 0 failed, 0 corrupted".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { generateKeyPair } from '../../src/ssh/keys';
import { KnownHosts } from '../../src/ssh/known-hosts';
import { BEGIN_MARKER, SshConfigWriter } from '../../src/ssh/ssh-config';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import { startSimulator } from '../sim/index';

const KEY = `1-${'c'.repeat(64)}`;
const ROUNDS = 6;
const WORKER = join(import.meta.dirname, 'concurrency-worker.ts');
const dir = mkdtempSync(join(tmpdir(), 'pixels-concurrency-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function runWorker(args: object): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out, err });
    });
  });
}

describe('two windows at once', () => {
  test('two processes on one server and one SSH config', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 30 });
    const hostKey = generateKeyPair('sandbox').publicOpenSsh;
    const userConfig = '# my own settings\nHost work\n  HostName work.example\n  User me\n';
    writeFileSync(join(dir, 'config'), userConfig);
    const setup = createTrueNASBackend(
      { serverId: 'setup', host: '127.0.0.1', port: sim.port, username: 'truenas_admin', secure: false },
      KEY,
    );
    const corrupted: string[] = [];
    let operations: number;
    let failures: string[];
    try {
      await setup.create({ name: 'shared', image: 'debian/12' });
      await setup.createCheckpoint('shared', 'base');
      const results = await Promise.all(
        ['a', 'b'].map((id) => runWorker({ id, port: sim.port, apiKey: KEY, dir, rounds: ROUNDS, hostKey })),
      );
      for (const r of results) assert.equal(r.code, 0, `a worker crashed: ${r.err}`);
      const reports = results.map(
        (r) => JSON.parse(r.out.trim().split('\n').pop()!) as { done: string[]; failed: string[] },
      );
      operations = reports.reduce((n, r) => n + r.done.length + r.failed.length, 0);
      failures = reports.flatMap((r) => r.failed);

      // The server: every sandbox, clone and checkpoint exactly once, nothing half-made.
      const pool = sim.engine.pool;
      const instances = (await sim.engine.listInstances()).map((i) => `${i.name}:${i.status}`).sort();
      const wantInstances = ['px-shared:RUNNING'];
      const wantSnaps = [`${pool}/.ix-virt/containers/px-shared@base`];
      for (const id of ['a', 'b'])
        for (let i = 0; i < ROUNDS; i++) {
          wantInstances.push(`px-${id}${i}:RUNNING`, `px-${id}${i}k:RUNNING`);
          wantSnaps.push(
            `${pool}/.ix-virt/containers/px-${id}${i}@c`,
            `${pool}/.ix-virt/containers/px-shared@${id}${i}`,
          );
        }
      const snaps = (await sim.engine.listSnapshots()).map((s) => s.id).sort();
      if (JSON.stringify(instances) !== JSON.stringify(wantInstances.sort()))
        corrupted.push(`instances ${instances.join(' ')}`);
      if (JSON.stringify(snaps) !== JSON.stringify(wantSnaps.sort()))
        corrupted.push(`snapshots ${snaps.join(' ')}`);
      const stray = (await sim.engine.listDatasets())
        .map((d) => d.name)
        .filter((n) => n.includes('px-trash'));
      if (stray.length) corrupted.push(`leftover datasets ${stray.join(' ')}`);

      // The files: the user's own config intact with one Include block, every host once, known_hosts whole.
      const config = readFileSync(join(dir, 'config'), 'utf8');
      if (!config.includes(userConfig)) corrupted.push('the user SSH config lost its own lines');
      if (config.split(BEGIN_MARKER).length !== 2)
        corrupted.push('the Include block is not there exactly once');
      const writer = new SshConfigWriter({
        configPath: join(dir, 'config'),
        hostsPath: join(dir, 'pixels', 'config'),
        sshBinary: false,
      });
      const hosts = (await writer.hosts()).map((h) => `${h.alias}=${h.hostName}`).sort();
      const wantHosts: string[] = [];
      for (const id of ['a', 'b'])
        for (let i = 0; i < ROUNDS; i++) wantHosts.push(`px-${id}${i}=10.99.${id === 'a' ? 1 : 2}.${i + 1}`);
      if (JSON.stringify(hosts) !== JSON.stringify(wantHosts.sort()))
        corrupted.push(`ssh hosts ${hosts.join(' ')}`);
      const known = new KnownHosts(join(dir, 'pixels', 'known_hosts'));
      const lines = readFileSync(join(dir, 'pixels', 'known_hosts'), 'utf8')
        .trim()
        .split('\n');
      if (lines.length !== 2 * ROUNDS) corrupted.push(`known_hosts has ${lines.length} lines`);
      for (const h of wantHosts) {
        const [alias, ip] = h.split('=');
        if ((await known.lookup(alias)).length !== 1 || (await known.lookup(ip)).length !== 1)
          corrupted.push(`known_hosts entry of ${alias}`);
      }
    } finally {
      setup.dispose();
      await sim.close();
    }
    console.log(
      `concurrency: 2 processes, ${operations} operations, ${failures.length} failed, ${corrupted.length} corrupted`,
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(corrupted, []);
  });
});
