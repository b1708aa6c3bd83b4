// TrueNAS 26 through the production backend, on the simulator's 26 builds (memory engine): the backend is chosen
// by probing system.version; lifecycle, events, SSH bootstrap writes, checkpoints where the build allows them
// (BETA.3) and the refusal shown once, without an error storm (RC.1). Real containers: truenas-matrix.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTrueNASBackend, probeTrueNAS } from '../../src/backends/truenas/index';
import type { Backend, BackendChange } from '../../src/core/backend';
import { NotFoundError, SecurityError, UnsupportedError, ValidationError } from '../../src/core/errors';
import { startSimulator, type SimServer } from '../sim/index';
import { API_KEY, clientFor } from './truenas-fixtures';

async function rig(version: '26.0.0-BETA.3' | '26.0.0-RC.1', extra: { hostJobCheckpoints?: boolean } = {}) {
  const sim = await startSimulator({ version, apiKey: API_KEY, jobDurationMs: 10 });
  const config = {
    serverId: `sim-${version}`,
    host: '127.0.0.1',
    port: sim.port,
    username: 'truenas_admin',
    secure: false,
    callTimeoutMs: 5000,
    ...extra,
  };
  return { sim, config, backend: createTrueNASBackend(config, API_KEY) };
}

describe('TrueNAS 26.0.0-BETA.3 (container.*, snapshots allowed)', () => {
  let sim: SimServer;
  let backend: Backend;
  let config: Parameters<typeof probeTrueNAS>[0];
  const changes: BackendChange[] = [];

  before(async () => {
    ({ sim, backend, config } = await rig('26.0.0-BETA.3'));
    backend.onDidChange((c) => changes.push(c));
  });
  after(async () => {
    backend?.dispose();
    await sim?.close();
  });

  test('Add Server accepts 26; the backend says what it is', async () => {
    assert.equal((await probeTrueNAS(config, API_KEY)).version, 'TrueNAS 26.0.0-BETA.3');
    assert.equal((await backend.info()).version, 'TrueNAS 26.0.0-BETA.3');
    const caps = await backend.capabilities();
    assert.equal(caps.writesResolveInSandbox, true);
    assert.equal(caps.exec, false);
    assert.equal(sim.callCount('virt.instance.query'), 0, 'no virt.* call on 26');
  });

  test('create (stopped) → start → stop → restart, events name the sandbox', async () => {
    const made = await backend.create({ name: 'one', image: 'debian/12', cpu: '2', start: false });
    assert.equal(made.status, 'stopped');
    assert.equal(made.cpu, '0-1');
    assert.equal(made.image, 'debian:bookworm:amd64:default@20260802_05:24');
    // The boot hook went into the rootfs before the first start.
    assert.ok(sim.callCount('filesystem.file_receive') >= 1);
    await backend.start('one');
    assert.equal((await backend.get('one')).status, 'running');
    await backend.stop('one');
    assert.equal((await backend.get('one')).status, 'stopped');
    await backend.restart('one');
    assert.equal((await backend.get('one')).status, 'running');
    const deadline = Date.now() + 2000;
    while (!changes.some((c) => c.kind === 'sandbox' && c.name === 'one') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      changes.some((c) => c.kind === 'sandbox' && c.name === 'one'),
      'container.query events arrive',
    );
    assert.deepEqual(
      (await backend.list()).map((s) => s.name),
      ['one'],
    );
  });

  test('bad input: unknown image, existing name, missing sandbox', async () => {
    await assert.rejects(
      backend.create({ name: 'two', image: 'plan9/4' }),
      /not in the server's image registry/,
    );
    await assert.rejects(backend.create({ name: 'one', image: 'debian/12' }), /already exists/);
    await assert.rejects(backend.get('nope'), NotFoundError);
    assert.deepEqual(
      (await backend.list()).map((s) => s.name),
      ['one'],
      'nothing half-made',
    );
  });

  test('SSH bootstrap files go into a stopped sandbox; a planted symlink is refused (ELOOP), nothing written', async () => {
    await backend.create({ name: 'keys', image: 'debian/12', start: false });
    await backend.writeFile('keys', '/root/.ssh/authorized_keys', Buffer.from('ssh-ed25519 AAAA test\n'), {
      mode: 0o600,
    });
    await backend.writeFile('keys', '/etc/ssh/ssh_host_ed25519_key', Buffer.from('KEY\n'), { mode: 0o600 });
    await assert.rejects(
      backend.writeFile('keys', '/home/pixel/.ssh/authorized_keys', Buffer.from('x\n')),
      NotFoundError,
      'no home of a user the image lacks is made',
    );
    const dataset = 'tank/.truenas_containers/containers/px-keys';
    await sim.engine.symlink!(dataset, 'etc/evil', '/etc');
    await assert.rejects(backend.writeFile('keys', '/etc/evil/passwd', Buffer.from('x\n')), SecurityError);
    await backend.destroy('keys');
  });

  test('checkpoints: create, list (size, age), restore an older one, delete, clone with fresh identity', async () => {
    await backend.writeFile('one', '/root/marker', Buffer.from('v1\n'));
    await backend.createCheckpoint('one', 'first');
    await backend.writeFile('one', '/root/marker', Buffer.from('v2\n'));
    await backend.createCheckpoint('one', 'second');
    const list = await backend.listCheckpoints('one');
    assert.deepEqual(
      list.map((c) => c.label),
      ['second', 'first'],
    );
    assert.ok(list.every((c) => Number.isFinite(c.createdAt.getTime())));
    await backend.restoreCheckpoint('one', 'first');
    assert.deepEqual(
      (await backend.listCheckpoints('one')).map((c) => c.label),
      ['first'],
    );
    assert.equal((await backend.get('one')).status, 'running', 'running again after the restore');
    const clone = await backend.clone({ sandbox: 'one', checkpoint: 'first' }, 'copy');
    assert.equal(clone.status, 'stopped');
    await assert.rejects(backend.deleteCheckpoint('one', 'first'), /cloned from it/);
    await assert.rejects(backend.destroy('one'), /cloned from it/);
    await backend.clone({ sandbox: 'one' }, 'now');
    assert.deepEqual(
      (await backend.listCheckpoints('one')).map((c) => c.label),
      ['first'],
      'the temporary snapshot of a clone from the current state is not a checkpoint',
    );
    await backend.destroy('now');
    await backend.destroy('copy');
    await backend.deleteCheckpoint('one', 'first');
    assert.deepEqual(await backend.listCheckpoints('one'), []);
  });

  test('list asks container.query for the fields it shows, and reads whole rows the same way', async () => {
    await backend.createCheckpoint('one', 'listed');
    let seen: Record<string, unknown>[] = [];
    sim.faults.rewriteReplies('container.query', (frame) => {
      seen = (JSON.parse(frame) as { result: Record<string, unknown>[] }).result;
      return frame;
    });
    const honoured = await backend.list();
    sim.faults.reset();
    const one = honoured.find((s) => s.name === 'one')!;
    assert.equal(one.status, 'running');
    assert.deepEqual(
      one.checkpoints?.map((c) => c.label),
      ['listed'],
    );
    assert.ok(seen.length > 0);
    for (const row of seen)
      assert.deepEqual(Object.keys(row).sort(), ['cpuset', 'dataset', 'description', 'id', 'name', 'status']);
    // A server that ignores select: whole rows (as asked without it) in place of the selected ones.
    const raw = clientFor(sim);
    try {
      const whole = await raw.call<Record<string, unknown>[]>('container.query', [[['name', '^', 'px-']]], {
        context: 'test',
      });
      assert.ok(Object.keys(whole[0]!).length > 6, 'whole rows');
      sim.faults.rewriteReplies('container.query', (frame) =>
        JSON.stringify({ ...(JSON.parse(frame) as object), result: whole }),
      );
      assert.deepEqual(await backend.list(), honoured);
    } finally {
      sim.faults.reset();
      raw.dispose();
    }
    await backend.deleteCheckpoint('one', 'listed');
  });

  test('destroy with checkpoints leaves nothing (the BETA.3 delete trap)', async () => {
    await backend.createCheckpoint('one', 'keep');
    await backend.destroy('one');
    await assert.rejects(backend.get('one'), NotFoundError);
    const client = sim.engine;
    const left = (await client.listDatasets()).filter((d) => d.name.includes('/px-one'));
    assert.deepEqual(left, [], 'no dataset left');
  });
});

describe('TrueNAS 26.0.0-RC.1 (container datasets protected)', () => {
  let sim: SimServer;
  let backend: Backend;

  before(async () => {
    ({ sim, backend } = await rig('26.0.0-RC.1'));
  });
  after(async () => {
    backend?.dispose();
    await sim?.close();
  });

  test('checkpoints show as unavailable with the reason, probed once, no error storm', async () => {
    await backend.create({ name: 'a', image: 'debian/12', start: false });
    await backend.create({ name: 'b', image: 'debian/12', start: false });
    for (let i = 0; i < 3; i++) {
      const list = await backend.list();
      for (const s of list) {
        assert.deepEqual(s.checkpoints, []);
        assert.match(s.checkpointsUnavailable ?? '', /protected path/);
      }
    }
    // The first listing (inside create) probed; no refresh after it asks again.
    assert.equal(sim.callCount('zfs.resource.snapshot.destroy'), 1, 'one probe for all refreshes');
    assert.match((await backend.capabilities()).checkpointsUnavailable ?? '', /host jobs/);
    await assert.rejects(backend.createCheckpoint('a', 'x'), UnsupportedError);
    await assert.rejects(backend.clone({ sandbox: 'a' }, 'c'), UnsupportedError);
    assert.equal(sim.callCount('zfs.resource.snapshot.create'), 0, 'refused before any write');
  });

  test('destroy is the RC.1 job and leaves nothing', async () => {
    await backend.start('a');
    await backend.destroy('a');
    await backend.destroy('b');
    assert.deepEqual(await backend.list(), []);
    assert.deepEqual(
      (await sim.engine.listDatasets()).filter((d) => d.name.includes('/px-')),
      [],
    );
  });

  test('bad names are refused before the server is asked', async () => {
    await assert.rejects(backend.create({ name: 'bad_name', image: 'debian/12' }), ValidationError);
  });
});
