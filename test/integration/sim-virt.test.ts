// virt.* on the simulator: global config, instance lifecycle and state, events, per-version fields, TrueNAS 26.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimServer } from '../sim/index.js';
import { RawClient, type Frame } from '../sim/rawclient.js';

const KEY = `1-${'a'.repeat(64)}`;
const GIB = 1024 ** 3;

async function client(sim: SimServer): Promise<RawClient> {
  const c = await RawClient.connect(sim.url);
  await c.login(KEY);
  await c.call('core.subscribe', ['core.get_jobs']);
  await c.call('core.subscribe', ['virt.instance.query']);
  return c;
}

async function runJob(c: RawClient, method: string, params: unknown[]): Promise<Frame> {
  const id = await c.call<number>(method, params);
  return c.jobEnd(id);
}

describe('simulator virt (25.10)', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 20, seed: true });
    c = await client(sim);
  });
  after(async () => {
    c.close();
    await sim.close();
  });

  it('reports the global config', async () => {
    assert.deepEqual(await c.call('virt.global.config'), {
      id: 1,
      pool: 'tank',
      dataset: 'tank/.ix-virt',
      storage_pools: ['tank'],
      bridge: null,
      v4_network: '127.77.1.1/24',
      v6_network: '::ffff:127.77.1.1/120',
      state: 'INITIALIZED',
    });
  });

  it('lists the seeded sandboxes with status and aliases only when running', async () => {
    const rows = await c.call<Frame[]>('virt.instance.query', [
      [['name', '^', 'px-']],
      { order_by: ['name'] },
    ]);
    assert.deepEqual(
      rows.map((r) => [r.name, r.status]),
      [
        ['px-agent', 'RUNNING'],
        ['px-old', 'STOPPED'],
        ['px-web', 'RUNNING'],
      ],
    );
    const web = rows.find((r) => r.name === 'px-web')!;
    assert.equal(web.id, 'px-web');
    assert.equal(web.type, 'CONTAINER');
    assert.equal(web.memory, 4 * GIB);
    assert.equal(web.cpu, '2');
    assert.equal(web.privileged_mode, false);
    const aliases = web.aliases as Frame[];
    assert.equal(aliases.length, 2);
    assert.match(
      String(aliases[0].address),
      /^127\.77\.1\.\d+$/,
      'a loopback address: nothing is routed off this machine',
    );
    assert.equal(aliases[0].netmask, 24);
    assert.match(String(aliases[1].address), /^::ffff:127\.77\.1\.\d+$/);
    assert.deepEqual(rows.find((r) => r.name === 'px-old')!.aliases, []);
    assert.equal((web.image as Frame).os, 'Ubuntu');
  });

  it('creates, updates, stops, starts, restarts and deletes with events', async () => {
    const created = await runJob(c, 'virt.instance.create', [
      {
        name: 'px-life',
        image: 'debian/12',
        cpu: '2',
        memory: 2 * GIB,
        environment: { FOO: 'bar' },
        autostart: false,
      },
    ]);
    assert.equal(created.state, 'SUCCESS');
    const entry = created.result as Frame;
    assert.equal(entry.status, 'STOPPED');
    assert.deepEqual(entry.aliases, []);
    assert.deepEqual(entry.environment, { FOO: 'bar' });
    assert.equal(entry.autostart, false);

    const updated = await runJob(c, 'virt.instance.update', [
      'px-life',
      { memory: 3 * GIB, environment: { A: '1' }, autostart: true },
    ]);
    assert.equal((updated.result as Frame).memory, 3 * GIB);
    assert.deepEqual((updated.result as Frame).environment, { A: '1' }, 'environment is replaced');

    assert.equal((await runJob(c, 'virt.instance.start', ['px-life'])).result, true);
    const running = await c.call<Frame>('virt.instance.get_instance', ['px-life']);
    assert.equal(running.status, 'RUNNING');
    assert.equal((running.aliases as Frame[]).length, 2);

    const again = await runJob(c, 'virt.instance.start', ['px-life']);
    assert.equal(again.state, 'FAILED');
    assert.match(String(again.error), /Failed to start instance: The instance is already running/);

    assert.equal((await runJob(c, 'virt.instance.restart', ['px-life', { timeout: 30 }])).state, 'SUCCESS');
    assert.equal((await runJob(c, 'virt.instance.stop', ['px-life', { timeout: 30 }])).state, 'SUCCESS');
    const stoppedTwice = await runJob(c, 'virt.instance.stop', ['px-life', { force: true }]);
    assert.equal(stoppedTwice.error, '[EFAULT] The instance is already stopped');
    assert.equal((await runJob(c, 'virt.instance.delete', ['px-life'])).result, true);
    const gone = await c.request('virt.instance.get_instance', ['px-life']);
    assert.equal(gone.error?.code, -32602);
    assert.deepEqual(gone.error?.data?.extra, [[null, 'VirtInstance px-life does not exist', 2]]);
    assert.equal(
      (await sim.engine.listDatasets()).some((d) => d.name === 'tank/.ix-virt/containers/px-life'),
      false,
    );

    const ev = c.events('virt.instance.query').filter((e) => e.id === 'px-life');
    const summary = ev.map((e) => `${e.msg}${e.fields ? `:${(e.fields as Frame).status}` : ''}`);
    assert.deepEqual(summary, [
      'added',
      'changed', // update: id only
      'changed:RUNNING',
      'changed:STOPPED',
      'changed:RUNNING',
      'changed:STOPPED',
      'removed',
    ]);
    assert.equal('fields' in ev[0], false, 'ADDED carries only the id');
  });

  it('autostart (default true) leaves the new instance RUNNING', async () => {
    const created = await runJob(c, 'virt.instance.create', [{ name: 'px-auto', image: 'ubuntu/24.04' }]);
    assert.equal((created.result as Frame).status, 'RUNNING');
    assert.equal(((created.result as Frame).aliases as Frame[]).length, 2);
  });

  it('rejects what the real server rejects', async () => {
    const big = await runJob(c, 'virt.instance.create', [
      { name: 'px-big', image: 'ubuntu/24.04', memory: 1024 * GIB },
    ]);
    assert.deepEqual((big.exc_info as Frame).extra, [
      ['virt_instance_create.memory', 'Cannot reserve more than physical memory', 22],
    ]);
    const pool = await runJob(c, 'virt.instance.create', [
      { name: 'px-p', image: 'ubuntu/24.04', storage_pool: 'other' },
    ]);
    assert.deepEqual((pool.exc_info as Frame).extra, [
      ['virt_instance_create.storage_pool', 'Not a valid ZFS pool', 22],
    ]);
    const image = await runJob(c, 'virt.instance.create', [{ name: 'px-img', image: 'nosuch/1' }]);
    assert.equal(image.state, 'FAILED');
    assert.match(String(image.error), /^\[EFAULT\] Failed to create instance: /);
    const name = await runJob(c, 'virt.instance.create', [{ name: '9lives', image: 'ubuntu/24.04' }]);
    assert.match(String(name.error), /Invalid instance name/);
    const vm = await runJob(c, 'virt.instance.create', [
      { name: 'px-vm', image: 'ubuntu/24.04', instance_type: 'VM' },
    ]);
    assert.deepEqual((vm.exc_info as Frame).extra, [
      ['virt_instance_create.instance_type', "Input should be 'CONTAINER'", 22],
    ]);
    const upd = await runJob(c, 'virt.instance.update', ['px-auto', { root_disk_size: 20 }]);
    assert.deepEqual((upd.exc_info as Frame).extra, [
      ['virt_instance_update.root_disk_size', 'This attribute is not supported for containers', 22],
    ]);
    const env = await runJob(c, 'virt.instance.create', [
      { name: 'px-env', image: 'ubuntu/24.04', environment: { 'BAD KEY': 'x' } },
    ]);
    assert.deepEqual((env.exc_info as Frame).extra, [
      [
        'virt_instance_create.environment.BAD KEY.[key]',
        'Value error, ENV_KEY must not be empty, should start with alphanumeric characters, should not contain whitespaces, and can have _ and /',
        22,
      ],
    ]);
    const blank = await runJob(c, 'virt.instance.update', ['px-auto', { environment: { OK: '  ' } }]);
    assert.deepEqual((blank.exc_info as Frame).extra, [
      [
        'virt_instance_update.environment.OK',
        'Value error, ENV_VALUE must have at least one non-whitespace character to be considered valid',
        22,
      ],
    ]);
    const vmOnly = await runJob(c, 'virt.instance.update', [
      'px-auto',
      { secure_boot: true, enable_vnc: false, root_disk_size: null },
    ]);
    assert.deepEqual((vmOnly.exc_info as Frame).extra, [
      ['virt_instance_update.secure_boot', 'Secure boot is only supported for VMs', 22],
    ]);
    const nope = await runJob(c, 'virt.instance.delete', ['nope']);
    assert.equal(nope.error, '[ENOENT] None: VirtInstance nope does not exist');
    const q = await c.request('virt.instance.query', [[['name', 'LIKE', 'x']]]);
    assert.equal(q.error?.code, -32602);
    const many = await c.request('virt.instance.get_instance', ['px-web', {}, 3]);
    assert.deepEqual(many.error?.data?.extra, [['', 'Too many arguments (expected 2, found 3)', 22]]);
    assert.equal(
      (await sim.engine.listInstances()).filter((i) =>
        ['px-big', 'px-p', 'px-img', '9lives', 'px-vm'].includes(i.name),
      ).length,
      0,
    );
  });

  it('accepts 25.10-only create fields and raw output', async () => {
    const priv = await runJob(c, 'virt.instance.create', [
      { name: 'px-priv', image: 'ubuntu/24.04', privileged_mode: true, root_disk_size: 12, autostart: false },
    ]);
    assert.equal(priv.state, 'SUCCESS');
    assert.equal((priv.result as Frame).privileged_mode, true);
    const raw = await c.call<Frame>('virt.instance.get_instance', ['px-priv', { extra: { raw: true } }]);
    assert.equal(((raw.raw as Frame).config as Frame)['security.privileged'], 'true');
    const devices = await c.call<Frame[]>('virt.instance.device_list', ['px-priv']);
    assert.deepEqual(
      devices.map((d) => d.name),
      ['eth0', 'root'],
    );
  });
});

describe('simulator virt per version', () => {
  it('25.04 refuses 25.10-only fields and has no privileged_mode in entries', async () => {
    const sim = await startSimulator({ version: '25.04', apiKey: KEY, jobDurationMs: 10 });
    const c = await client(sim);
    const end = await runJob(c, 'virt.instance.create', [
      { name: 'px-x', image: 'ubuntu/24.04', privileged_mode: true, root_disk_size: 10 },
    ]);
    assert.deepEqual((end.exc_info as Frame).extra, [
      ['virt_instance_create.privileged_mode', 'Extra inputs are not permitted', 22],
      ['virt_instance_create.root_disk_size', 'Extra inputs are not permitted', 22],
    ]);
    const ok = await runJob(c, 'virt.instance.create', [
      { name: 'px-x', image: 'ubuntu/24.04', iso_volume: null },
    ]);
    assert.equal(ok.state, 'SUCCESS');
    assert.equal('privileged_mode' in (ok.result as Frame), false);
    c.close();
    await sim.close();
  });

  it('with virt not initialised: NO_POOL, empty query, jobs fail "Virtualization not initialized."', async () => {
    const sim = await startSimulator({
      version: '25.10',
      apiKey: KEY,
      jobDurationMs: 10,
      seed: true,
      virtInitialized: false,
    });
    const c = await client(sim);
    const config = await c.call<Frame>('virt.global.config');
    assert.equal(config.state, 'NO_POOL');
    assert.equal(config.pool, null);
    assert.equal(config.dataset, null);
    assert.deepEqual(await c.call('virt.instance.query'), []);
    const create = await runJob(c, 'virt.instance.create', [{ name: 'px-n', image: 'ubuntu/24.04' }]);
    assert.equal(create.error, '[EFAULT] Virtualization not initialized.');
    const start = await runJob(c, 'virt.instance.start', ['px-web']);
    assert.equal(start.error, '[EFAULT] Virtualization not initialized.');
    const bad = await runJob(c, 'virt.instance.create', [{ name: 'px-n' }]);
    assert.deepEqual(
      (bad.exc_info as Frame).extra,
      [['virt_instance_create.image', 'Field required', 22]],
      'arguments first',
    );
    c.close();
    await sim.close();
  });

  it('26 has no virt.* at all, but container.query', async () => {
    const sim = await startSimulator({ version: '26', apiKey: KEY, seed: true });
    const c = await RawClient.connect(sim.url);
    await c.login(KEY);
    assert.equal(await c.call('system.version'), 'TrueNAS-26.0.0-BETA.3');
    for (const method of [
      'virt.instance.query',
      'virt.global.config',
      'virt.instance.create',
      'zfs.snapshot.query',
    ]) {
      assert.deepEqual(
        (await c.request(method, [])).error,
        { code: -32601, message: 'Method does not exist' },
        method,
      );
    }
    const containers = await c.call<Frame[]>('container.query', [[], { order_by: ['name'] }]);
    assert.deepEqual(
      containers.map((x) => x.name),
      ['px-agent', 'px-old', 'px-web'],
    );
    assert.equal(typeof containers[0].id, 'number');
    assert.deepEqual((containers[1].status as Frame).state, 'STOPPED');
    c.close();
    await sim.close();
  });
});
