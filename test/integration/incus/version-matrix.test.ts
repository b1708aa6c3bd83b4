// The version matrix: one sandbox scenario (create → SSH with the pinned key → checkpoint → change → restore the
// older one → clone with its own identity → destroy leaves nothing) through the production backends on TrueNAS
// 25.04, 25.10, 26 BETA.3 (the simulator on real containers) and Incus (the lab), and the checkpoint-refused path on
// 26 RC.1. Each column follows what the editor does for that server (SshAccess.installAndBoot): keys before the
// first boot where the backend writes safely into any sandbox, else after the start and over SSH for a clone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Backend } from '../../../src/core/backend';
import { UnsupportedError } from '../../../src/core/errors';
import { createTrueNASBackend } from '../../../src/backends/truenas/index';
import {
  generateHostKey,
  generateKeyPair,
  prepareSandboxAccess,
  prepareSandboxAccessOverSsh,
  SshPool,
  waitForSsh,
  type KeyPair,
  type SshTarget,
} from '../../../src/ssh/index';
import { requireLab, type Lab } from '../../lab/lab';
import { createIncusEngine, type IncusEngine } from '../../sim/engines/incus';
import { startSimulator, type SimServer } from '../../sim/index';
import { useLanBridge } from '../../sim/virt-bridge';
import { labBackend, testPrefix } from './helpers';

const API_KEY = '1-' + 'e'.repeat(64);
const user = generateKeyPair('version-matrix');
const pool = new SshPool();

type Column = '25.04' | '25.10' | '26.0.0-BETA.3' | 'incus';

/** A sandbox's address, bounded (26: the boot hook reports it a few seconds after the start). */
async function addressOf(backend: Backend, name: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await backend.get(name);
    if (s.status === 'running' && s.ipv4) return s.ipv4;
    if (Date.now() > deadline) throw new Error(`${name}: no IPv4 within ${timeoutMs / 1000} s (${s.status})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function ssh(backend: Backend, name: string, hostKey: KeyPair): Promise<SshTarget> {
  const target: SshTarget = {
    host: await addressOf(backend, name),
    username: 'root',
    privateKey: user.privateOpenSsh,
    hostKey: hostKey.publicOpenSsh,
    label: `sandbox ${name}`,
  };
  try {
    await waitForSsh(target, { timeoutMs: 60_000, pool, label: target.label });
  } catch (err) {
    // Failed once in CI with a host key mismatch that did not come back in 15 runs alone; say who answered.
    throw new Error(`${(err as Error).message}\n${whoAnswers(target.host, `px-${name}`)}`, { cause: err });
  }
  return target;
}

/** What this machine sees at `address`: the containers holding it, the neighbour entry, the key served there. */
function whoAnswers(address: string, instance: string): string {
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });
    return `$ ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`.trim();
  };
  const rows = run('incus', ['list', '--all-projects', '--format', 'csv', '--columns', 'en4s']);
  const project = rows
    .split('\n')
    .find((l) => l.split(',')[1] === instance)
    ?.split(',')[0];
  return [
    rows,
    run('ip', ['neigh', 'show', address]),
    run('ssh-keyscan', ['-T', '5', '-t', 'ed25519', address]),
    project
      ? run('incus', [
          'exec',
          '--project',
          project,
          instance,
          '--',
          'sh',
          '-c',
          'cat /etc/ssh/ssh_host_ed25519_key.pub; ip -4 -o addr show',
        ])
      : `${instance}: not in the list`,
  ].join('\n');
}

async function run(target: SshTarget, script: string): Promise<string> {
  const r = await pool.exec(target, ['sh', '-c', script], { timeoutMs: 30_000 });
  assert.equal(r.exitCode, 0, `${script}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

/** Keys in, running, as the editor does it for this backend. */
async function bootstrap(
  backend: Backend,
  name: string,
  hostKey: KeyPair,
  beforeBoot: boolean,
  image = 'debian/12',
): Promise<void> {
  const access = { userPublicKey: user.publicOpenSsh, hostKey, pixelUser: false };
  if (beforeBoot) {
    await backend.create({ name, image, start: false });
    await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.alloc(0), { mode: 0o600 });
    await prepareSandboxAccess(backend, name, access);
    await backend.start(name);
  } else {
    await backend.create({ name, image });
    await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.alloc(0), { mode: 0o600 });
    await prepareSandboxAccess(backend, name, access);
    await backend.restart(name);
  }
}

/** The scenario; `leftovers` says what the server still holds of a sandbox (must be nothing at the end). */
async function scenario(
  column: Column,
  backend: Backend,
  leftovers: (instance: string) => Promise<string[]>,
  image?: string,
): Promise<void> {
  const prefix = testPrefix();
  const name = `${prefix}-m`;
  const copy = `${prefix}-c`;
  const caps = await backend.capabilities();
  const hostKey = generateHostKey(`matrix-${column}`);
  try {
    await bootstrap(backend, name, hostKey, caps.writesResolveInSandbox, image);
    let target = await ssh(backend, name, hostKey);
    await run(target, 'echo v1 > /root/marker');
    await backend.createCheckpoint(name, 'one');
    await run(target, 'echo v2 > /root/marker; sync');
    await backend.createCheckpoint(name, 'two');
    await backend.restoreCheckpoint(name, 'one');
    await pool.close(target);
    target = await ssh(backend, name, hostKey);
    assert.equal(await run(target, 'cat /root/marker'), 'v1', `${column}: the older checkpoint's content`);
    assert.deepEqual(
      (await backend.listCheckpoints(name)).map((c) => c.label),
      ['one'],
      `${column}: the newer checkpoint went with the restore`,
    );
    const sourceId = await run(target, 'cat /etc/machine-id');

    const cloned = await backend.clone({ sandbox: name, checkpoint: 'one' }, copy);
    const cloneKey = generateHostKey(`matrix-${column}-clone`);
    const access = { userPublicKey: user.publicOpenSsh, hostKey: cloneKey, pixelUser: false };
    if (!caps.writesResolveInSandbox) {
      // 25.x: the clone serves its source's key; its identity goes in over SSH, from inside.
      const via = await ssh(backend, copy, hostKey);
      await prepareSandboxAccessOverSsh(pool, via, copy, { ...access, newIdentity: true });
      await pool.close(via);
      await backend.restart(copy);
    } else if (cloned.status === 'running') {
      await prepareSandboxAccess(backend, copy, access);
      await backend.restart(copy);
    } else {
      await prepareSandboxAccess(backend, copy, access);
      await backend.start(copy);
    }
    const cloneTarget = await ssh(backend, copy, cloneKey);
    assert.equal(await run(cloneTarget, 'cat /root/marker'), 'v1', `${column}: the clone has the checkpoint`);
    assert.notEqual(await run(cloneTarget, 'cat /etc/machine-id'), sourceId, `${column}: a fresh machine-id`);
    assert.equal(await run(cloneTarget, 'hostname'), `px-${copy}`, `${column}: its own hostname`);
    assert.notEqual(cloneTarget.host, target.host, `${column}: its own address`);
    await pool.close(cloneTarget);
    await pool.close(target);

    await backend.destroy(copy);
    await backend.destroy(name);
    const names = (await backend.list()).map((s) => s.name);
    assert.ok(!names.includes(name) && !names.includes(copy), `${column}: both gone from the list`);
    assert.deepEqual(await leftovers(`px-${name}`), [], `${column}: nothing left of the sandbox`);
    assert.deepEqual(await leftovers(`px-${copy}`), [], `${column}: nothing left of the clone`);
  } catch (err) {
    for (const n of [copy, name]) await backend.destroy(n).catch(() => undefined);
    throw err;
  }
}

describe('version matrix: the same sandbox scenario on every server type', { timeout: 600_000 }, () => {
  let lab: Lab;
  const sims: SimServer[] = [];
  const backends: Backend[] = [];

  before(async () => {
    lab = await requireLab();
  });
  after(async () => {
    pool.dispose();
    for (const b of backends) b.dispose();
    for (const s of sims) await s.close(); // each engine removes its containers and project
  });

  async function truenas(version: '25.04' | '25.10' | '26.0.0-BETA.3' | '26.0.0-RC.1') {
    const engine: IncusEngine = await createIncusEngine({ lab });
    const sim = await startSimulator({
      version,
      apiKey: API_KEY,
      engine,
      jobDurationMs: 10,
      network: 'lan-bridge',
    });
    sims.push(sim);
    await useLanBridge(sim, API_KEY);
    const backend = createTrueNASBackend(
      {
        serverId: `matrix-${version}-${randomBytes(2).toString('hex')}`,
        host: '127.0.0.1',
        port: sim.port,
        username: 'truenas_admin',
        secure: false,
      },
      API_KEY,
    );
    backends.push(backend);
    const leftovers = async (instance: string) => [
      ...(await engine.listInstances()).filter((i) => i.name === instance).map((i) => `instance ${i.name}`),
      ...(await engine.listDatasets())
        .filter((d) => d.name.endsWith(`/${instance}`) || d.name.includes(`/${instance}@`))
        .map((d) => `dataset ${d.name}`),
    ];
    return { sim, engine, backend, leftovers };
  }

  for (const version of ['25.04', '25.10', '26.0.0-BETA.3'] as const) {
    test(`TrueNAS ${version}`, async () => {
      const { backend, leftovers } = await truenas(version);
      await scenario(version, backend, leftovers);
    });
  }

  test('Incus', async () => {
    const { backend } = await labBackend();
    backends.push(backend);
    await scenario(
      'incus',
      backend,
      async (instance) => {
        const all = await backend.list();
        return all.filter((s) => s.instanceName === instance).map((s) => `instance ${s.instanceName}`);
      },
      lab.image,
    );
  });

  test('TrueNAS 26.0.0-RC.1: checkpoints refused once, shown as unavailable, the rest works', async () => {
    const { sim, backend, leftovers } = await truenas('26.0.0-RC.1');
    const name = `${testPrefix()}-r`;
    const hostKey = generateHostKey('matrix-rc1');
    try {
      await bootstrap(backend, name, hostKey, true);
      const target = await ssh(backend, name, hostKey);
      assert.equal(await run(target, 'hostname'), `px-${name}`);
      await pool.close(target);
      const probes = sim.callCount('zfs.resource.snapshot.destroy');
      for (let i = 0; i < 3; i++) {
        const [s] = (await backend.list()).filter((x) => x.name === name);
        assert.deepEqual(s.checkpoints, []);
        assert.match(s.checkpointsUnavailable ?? '', /protected path/);
      }
      assert.ok(sim.callCount('zfs.resource.snapshot.destroy') - probes <= 1, 'probed at most once');
      await assert.rejects(backend.createCheckpoint(name, 'x'), UnsupportedError);
      await assert.rejects(backend.clone({ sandbox: name }, `${name}c`), UnsupportedError);
      assert.equal(sim.callCount('zfs.resource.snapshot.create'), 0);
      await backend.destroy(name);
      assert.deepEqual(await leftovers(`px-${name}`), []);
    } catch (err) {
      await backend.destroy(name).catch(() => undefined);
      throw err;
    }
  });
});
