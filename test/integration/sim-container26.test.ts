// TrueNAS 26 on the simulator (memory engine): versions and endpoints, container.* / container.device.* / lxc.*
// shapes, errors and events, B3 vs RC1 delete, and 26's symlink-safe file_receive into the rootfs.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimOptions, type SimServer } from '../sim/index.js';
import { RawClient, type Frame } from '../sim/rawclient.js';
import { useLanBridge } from '../sim/virt-bridge.js';

const KEY = `1-${'b'.repeat(64)}`;
const IMAGE = { name: 'debian:bookworm:amd64:default', version: '20260802_05:24' };
const ENTRY_KEYS = [
  'autostart',
  'capabilities_policy',
  'capabilities_state',
  'cpuset',
  'dataset',
  'default_network',
  'description',
  'devices',
  'id',
  'idmap',
  'init',
  'initdir',
  'initenv',
  'initgroup',
  'inituser',
  'name',
  'shutdown_timeout',
  'status',
  'time',
  'uuid',
];

async function client(sim: SimServer, path = '/api/current'): Promise<RawClient> {
  const c = await RawClient.connect(sim.url.replace('/api/current', path));
  await c.login(KEY);
  await c.call('core.subscribe', ['core.get_jobs']);
  await c.call('core.subscribe', ['container.query']);
  return c;
}

type Start = Omit<SimOptions, 'apiKey'>;

/** A simulator on loopback (jobs of 20 ms) and a client of it, logged in and subscribed to jobs and containers. */
async function open(options: Start): Promise<{ sim: SimServer; c: RawClient }> {
  const sim = await startSimulator({ apiKey: KEY, jobDurationMs: 20, ...options });
  try {
    return { sim, c: await client(sim) };
  } catch (err) {
    await sim.close();
    throw err;
  }
}

/** Closes what open() made (either may be missing when a set-up failed half-way). */
async function shut(rig: { sim?: SimServer; c?: RawClient }): Promise<void> {
  rig.c?.close();
  await rig.sim?.close();
}

/** A simulator and client for one test, closed whatever the test does. */
async function withSim(options: Start, body: (sim: SimServer, c: RawClient) => Promise<void>): Promise<void> {
  const rig = await open(options);
  try {
    await body(rig.sim, rig.c);
  } finally {
    await shut(rig);
  }
}

async function runJob(c: RawClient, method: string, params: unknown[], timeoutMs = 5000): Promise<Frame> {
  const id = await c.call<number>(method, params);
  return c.jobEnd(id, timeoutMs);
}

async function create(c: RawClient, name: string, extra: Frame = {}): Promise<Frame> {
  const job = await runJob(c, 'container.create', [{ name, image: IMAGE, ...extra }]);
  assert.equal(job.state, 'SUCCESS', String(job.error));
  return job.result as Frame;
}

/** The first container.query event (seen or to come) of this kind that matches. */
function containerEvent(
  c: RawClient,
  msg: string,
  match: (p: Frame) => boolean = () => true,
): Promise<Frame> {
  return c
    .waitFor((f) => {
      if (f.method !== 'collection_update') return false;
      const p = f.params as Frame;
      return p.collection === 'container.query' && p.msg === msg && match(p);
    })
    .then((f) => f.params as Frame);
}

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

describe('simulator TrueNAS 26: versions and endpoints', () => {
  it('"26" is BETA.3; each build has its own system.version and /api/versions', async () => {
    for (const [option, version, has25105] of [
      ['26', 'TrueNAS-26.0.0-BETA.3', false],
      ['26.0.0-BETA.3', 'TrueNAS-26.0.0-BETA.3', false],
      ['26-rc1', 'TrueNAS-26.0.0-RC.1', true],
      ['26.0.0-RC.1', 'TrueNAS-26.0.0-RC.1', true],
    ] as const) {
      const sim = await startSimulator({ version: option, apiKey: KEY });
      try {
        const c = await client(sim);
        assert.equal(await c.call('system.version'), version, option);
        assert.equal(await c.call('system.version_short'), version.slice('TrueNAS-'.length));
        assert.equal((await c.call<Frame>('system.info')).version, version);
        c.close();
        const versions = (await getJson(sim.port, '/api/versions')) as string[];
        assert.equal(versions.at(-1), 'v26.0.0');
        assert.equal(versions.includes('v25.10.5'), has25105, option);
        assert.ok(versions.includes('v25.10.4') && versions.includes('v24.10'));
      } finally {
        await sim.close();
      }
    }
  });

  it('container.* needs /api/v26.0.0 or /api/current; virt.* exists under no endpoint', async () => {
    const sim = await startSimulator({ version: '26', apiKey: KEY, seed: true });
    try {
      for (const path of ['/api/current', '/api/v26.0.0']) {
        const c = await client(sim, path);
        assert.equal((await c.call<Frame[]>('container.query')).length, 3, path);
        c.close();
      }
      const legacy = await client(sim, '/api/v25.10.4');
      const reply = await legacy.request('container.query', []);
      assert.equal(reply.error?.code, -32001);
      const data = reply.error?.data as Frame;
      assert.equal(data.error, 201);
      assert.equal(data.errname, 'ENOMETHOD');
      assert.equal(data.reason, "[ENOMETHOD] Method 'query' not found in 'container'");
      assert.match(
        String(((await legacy.request('lxc.config', [])).error?.data as Frame).reason),
        /Method 'config' not found in 'lxc'/,
      );
      // Methods that existed in 25.10 answer on its endpoint.
      assert.equal(typeof (await legacy.call('system.version')), 'string');
      for (const method of ['virt.instance.query', 'virt.global.config', 'virt.instance.start']) {
        for (const c of [legacy, await client(sim)]) {
          assert.deepEqual((await c.request(method, [])).error, {
            code: -32601,
            message: 'Method does not exist',
          });
        }
      }
      legacy.close();
    } finally {
      await sim.close();
    }
  });

  it('migrated 25.10 sandboxes show up with integer ids and 26 datasets', async () => {
    const sim = await startSimulator({ version: '26', apiKey: KEY, seed: true });
    try {
      const c = await client(sim);
      const rows = await c.call<Frame[]>('container.query', [[], { order_by: ['name'] }]);
      assert.deepEqual(
        rows.map((r) => [typeof r.id, r.name, r.dataset, (r.status as Frame).state]),
        [
          ['number', 'px-agent', 'tank/.truenas_containers/containers/px-agent', 'RUNNING'],
          ['number', 'px-old', 'tank/.truenas_containers/containers/px-old', 'STOPPED'],
          ['number', 'px-web', 'tank/.truenas_containers/containers/px-web', 'RUNNING'],
        ],
      );
      for (const r of rows) {
        assert.deepEqual(Object.keys(r).sort(), ENTRY_KEYS);
        assert.ok(!('aliases' in r) && !('memory' in r) && !('environment' in r));
      }
      const running = await c.call<Frame[]>('container.query', [[['status.state', '=', 'RUNNING']]]);
      assert.deepEqual(running.map((r) => r.name).sort(), ['px-agent', 'px-web']);
      c.close();
    } finally {
      await sim.close();
    }
  });
});

describe('simulator TrueNAS 26 (BETA.3): container lifecycle', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => ({ sim, c } = await open({ version: '26.0.0-BETA.3' })));
  after(() => shut({ sim, c }));

  it('lists the registry and the lxc config', async () => {
    const registry = await c.call<{ name: string; versions: { version: string }[] }[]>(
      'container.image.query_registry',
    );
    const debian = registry.find((p) => p.name === IMAGE.name);
    assert.ok(debian?.versions.some((v) => v.version === IMAGE.version));
    assert.deepEqual(await c.call('lxc.config'), {
      id: 1,
      preferred_pool: 'tank',
      bridge: null,
      v4_network: '172.200.0.0/24',
      v6_network: 'fd42:4c58:43ae::/64',
    });
    assert.deepEqual(await c.call('container.pool_choices'), { tank: 'tank' });
    assert.deepEqual(await c.call('container.device.nic_attach_choices'), {
      BRIDGE: ['truenasbr0'],
      MACVLAN: ['enp1s0'],
    });
  });

  it('creates a stopped container (a job) with the exact entry and an ADDED event', async () => {
    const entry = await create(c, 'px-one', { cpuset: '0-1', initenv: { A: 'b' } });
    assert.deepEqual(Object.keys(entry).sort(), ENTRY_KEYS);
    assert.equal(typeof entry.id, 'number');
    assert.match(String(entry.uuid), /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...entry, id: 0, uuid: '' },
      {
        id: 0,
        uuid: '',
        name: 'px-one',
        description: '',
        devices: [],
        cpuset: '0-1',
        autostart: true,
        time: 'LOCAL',
        shutdown_timeout: 90,
        dataset: 'tank/.truenas_containers/containers/px-one',
        init: '/sbin/init',
        initdir: null,
        initenv: { A: 'b' },
        inituser: null,
        initgroup: null,
        idmap: { type: 'DEFAULT' },
        capabilities_policy: 'DEFAULT',
        capabilities_state: {},
        default_network: 'truenasbr0',
        status: { state: 'STOPPED', pid: null, domain_state: null },
      },
    );
    const added = await containerEvent(c, 'added');
    assert.deepEqual(added.id, entry.id);
    assert.deepEqual(added.fields, entry);
    // The root dataset is a clone of the cached image.
    const ds = (await sim.engine.listDatasets()).find((d) => d.name === entry.dataset);
    assert.equal(ds?.origin, `tank/.truenas_containers/images/${IMAGE.name}:${IMAGE.version}@image`);
  });

  it('refuses bad create arguments with the middleware messages', async () => {
    const failed = async (data: Frame) => {
      const job = await runJob(c, 'container.create', [data]);
      assert.equal(job.state, 'FAILED');
      return (job.exc_info as Frame).extra as unknown[];
    };
    assert.deepEqual(await failed({ name: 'px_bad', image: IMAGE }), [
      [
        'container_create.name',
        'Name must be a valid hostname (up to 100 characters total): 1-63 characters per label, only letters, digits, and hyphens within each label, labels separated by dots, and must not be an IPv4 address.',
        22,
      ],
    ]);
    assert.deepEqual(await failed({ name: 'px-one', image: IMAGE }), [
      ['container_create.name', 'A container with this name already exists.', 17],
    ]);
    assert.deepEqual(await failed({ name: 'px-x', image: IMAGE, memory: 1 }), [
      ['container_create.memory', 'Extra inputs are not permitted', 22],
    ]);
    assert.deepEqual(await failed({ name: 'px-x', image: { name: 'nope:x:amd64:default', version: '1' } }), [
      ['container_create.image.name', 'Image does not exist in the registry.', 22],
    ]);
    assert.deepEqual(await failed({ name: 'px-x', image: { name: IMAGE.name, version: '1' } }), [
      ['container_create.image.version', 'Version does not exist in the registry.', 22],
    ]);
    assert.deepEqual(await failed({ name: 'px-x', image: IMAGE, cpuset: '0_1' }), [
      ['container_create.cpuset', 'Underscores are not allowed in CPU set values', 22],
    ]);
    assert.deepEqual(await failed({ name: 'px-x', image: IMAGE, capabilities_state: { nope: true } }), [
      ['container_create.capabilities_state', 'Invalid capabilities: nope', 22],
    ]);
  });

  it('get_instance of a missing id is InstanceNotFound', async () => {
    const reply = await c.request('container.get_instance', [999]);
    assert.equal(reply.error?.code, -32602);
    assert.deepEqual((reply.error?.data as Frame).extra, [[null, 'Container 999 does not exist', 2]]);
  });

  it('starts (plain call) and stops (job), with CHANGED events carrying the whole entry', async () => {
    const [row] = await c.call<Frame[]>('container.query', [[['name', '=', 'px-one']]]);
    const stopJob = await runJob(c, 'container.stop', [row.id, { force_after_timeout: true }]);
    assert.equal(stopJob.state, 'FAILED');
    assert.equal(stopJob.error, "Domain 'px-one' does not exist", 'never started: no domain yet');
    const before = c.events('container.query').length;
    assert.equal(await c.call('container.start', [row.id]), null);
    const changed = await containerEvent(
      c,
      'changed',
      (p) => p.id === row.id && ((p.fields as Frame).status as Frame).state === 'RUNNING',
    );
    assert.ok(c.events('container.query').length > before);
    assert.deepEqual(Object.keys(changed.fields as Frame).sort(), ENTRY_KEYS);
    const status = (changed.fields as Frame).status as Frame;
    assert.equal(status.domain_state, 'RUNNING');
    assert.equal(typeof status.pid, 'number');
    const again = await c.request('container.start', [row.id]);
    assert.equal(again.error?.code, -32001);
    assert.equal((again.error?.data as Frame).reason, "Domain 'px-one' is already started ('RUNNING').");

    const renaming = await c.request('container.update', [row.id, { name: 'px-two' }]);
    assert.equal(
      (renaming.error?.data as Frame).reason,
      '[EFAULT] Container must be stopped before renaming.',
    );

    const stopped = await runJob(c, 'container.stop', [row.id, { force_after_timeout: true }]);
    assert.equal(stopped.state, 'SUCCESS');
    const after = await c.call<Frame>('container.get_instance', [row.id]);
    assert.deepEqual(after.status, { state: 'STOPPED', pid: null, domain_state: 'SHUTOFF' });
    const notActive = await runJob(c, 'container.stop', [row.id, {}]);
    assert.equal(notActive.error, "Domain 'px-one' is not active");
  });

  it('a stop without force_after_timeout leaves a guest that ignores it RUNNING', async () => {
    const entry = await create(c, 'px-stubborn', { shutdown_timeout: 5 });
    await c.call('container.start', [entry.id]);
    sim.faults.ignoreShutdown('px-stubborn');
    try {
      const started = Date.now();
      const soft = await runJob(c, 'container.stop', [entry.id, {}], 15_000);
      assert.equal(soft.state, 'SUCCESS');
      assert.ok(Date.now() - started >= 4500, 'it waited shutdown_timeout');
      let row = await c.call<Frame>('container.get_instance', [entry.id]);
      assert.equal((row.status as Frame).state, 'RUNNING', 'the job succeeded, the container still runs');
      const hard = await runJob(c, 'container.stop', [entry.id, { force_after_timeout: true }], 15_000);
      assert.equal(hard.state, 'SUCCESS');
      row = await c.call<Frame>('container.get_instance', [entry.id]);
      assert.equal((row.status as Frame).state, 'STOPPED');
    } finally {
      sim.faults.reset();
    }
  });

  it('updates and renames a stopped container (dataset follows); NIC devices replace the default network', async () => {
    const [row] = await c.call<Frame[]>('container.query', [[['name', '=', 'px-one']]]);
    const updated = await c.call<Frame>('container.update', [row.id, { name: 'px-two', cpuset: '2' }]);
    assert.equal(updated.dataset, 'tank/.truenas_containers/containers/px-two');
    assert.equal(updated.cpuset, '2');
    assert.ok((await sim.engine.listDatasets()).some((d) => d.name === updated.dataset));
    const bad = await c.request('container.update', [row.id, { image: IMAGE }]);
    assert.deepEqual((bad.error?.data as Frame).extra, [
      ['container_update.image', 'Extra inputs are not permitted', 22],
    ]);

    const badNic = await c.request('container.device.create', [
      { container: row.id, attributes: { dtype: 'NIC', nic_attach: 'eth9' } },
    ]);
    assert.deepEqual((badNic.error?.data as Frame).extra, [
      ['attributes.nic_attach', 'Not a valid choice.', 22],
    ]);
    const nic = await c.call<Frame>('container.device.create', [
      { container: row.id, attributes: { dtype: 'NIC', nic_attach: 'truenasbr0' } },
    ]);
    const attrs = nic.attributes as Frame;
    assert.match(String(attrs.mac), /^00:a0:98(:[0-9a-f]{2}){3}$/);
    assert.deepEqual(
      { ...attrs, mac: '' },
      {
        dtype: 'NIC',
        type: 'E1000',
        nic_attach: 'truenasbr0',
        mac: '',
        trust_guest_rx_filters: false,
      },
    );
    const withNic = await c.call<Frame>('container.get_instance', [row.id]);
    assert.equal(withNic.default_network, null);
    assert.deepEqual(withNic.devices, [nic]);
    assert.equal(await c.call('container.device.delete', [nic.id]), true);
    const missing = await c.request('container.device.get_instance', [nic.id]);
    assert.deepEqual((missing.error?.data as Frame).extra, [
      [null, `ContainerDevice ${String(nic.id)} does not exist`, 2],
    ]);
  });

  it('B3 delete of a container with a snapshot: it vanishes, its dataset stays orphaned', async () => {
    const entry = await create(c, 'px-trap');
    await c.call('pool.snapshot.create', [{ dataset: entry.dataset, name: 'cp1' }]);
    const reply = await c.request('container.delete', [entry.id]);
    assert.equal(reply.error?.code, -32602);
    assert.deepEqual((reply.error?.data as Frame).extra, [
      [
        'zfs.resource.destroy',
        `'${String(entry.dataset)}' has snapshots. Set recursive=True to remove them.`,
        39,
      ],
    ]);
    assert.deepEqual(await c.call('container.query', [[['id', '=', entry.id]]]), []);
    await containerEvent(c, 'removed', (p) => p.id === entry.id);
    assert.ok(
      (await sim.engine.listDatasets()).some((d) => d.name === entry.dataset),
      'orphaned dataset',
    );
    // A clean delete (no snapshots) leaves nothing.
    const clean = await create(c, 'px-clean');
    assert.equal(await c.call('container.delete', [clean.id]), null);
    assert.ok(!(await sim.engine.listDatasets()).some((d) => d.name === clean.dataset));
  });
});

describe('simulator TrueNAS 26 (RC.1): delete is a job with force/recursive', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => ({ sim, c } = await open({ version: '26.0.0-RC.1' })));
  after(() => shut({ sim, c }));

  it('refuses a running container without force and snapshots without recursive, then deletes it all', async () => {
    const entry = await create(c, 'px-rc');
    await sim.engine.createSnapshot(String(entry.dataset), 'cp1');
    await c.call('container.start', [entry.id]);
    let job = await runJob(c, 'container.delete', [entry.id]);
    assert.equal(job.state, 'FAILED');
    assert.deepEqual((job.exc_info as Frame).extra, [
      [
        'container_delete.force',
        "Container 'px-rc' is running. Stop it first, or pass force=True to stop and delete it.",
        16,
      ],
    ]);
    job = await runJob(c, 'container.delete', [entry.id, { force: true }]);
    assert.deepEqual((job.exc_info as Frame).extra, [
      [
        'container_delete.recursive',
        `Container 'px-rc' dataset '${String(entry.dataset)}' has 1 snapshot(s). Set \`recursive\` to delete the container together with them.`,
        39,
      ],
    ]);
    const still = await c.call<Frame>('container.get_instance', [entry.id]);
    assert.equal((still.status as Frame).state, 'RUNNING', 'checks run before libvirt is touched');
    job = await runJob(c, 'container.delete', [entry.id, { force: true, recursive: true }]);
    assert.equal(job.state, 'SUCCESS', String(job.error));
    assert.deepEqual(await c.call('container.query', [[['id', '=', entry.id]]]), []);
    assert.ok(!(await sim.engine.listDatasets()).some((d) => d.name === entry.dataset));
    assert.deepEqual(await sim.engine.listSnapshots((d) => d === entry.dataset), []);
  });
});

describe('simulator TrueNAS 26: file_receive into the rootfs', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => ({ sim, c } = await open({ version: '26' })));
  after(() => shut({ sim, c }));

  it('writes into a stopped container (0:0 by default) and refuses any symlink in the path (ELOOP)', async () => {
    const entry = await create(c, 'px-files');
    const root = '/mnt/.truenas_containers/tank/containers/px-files';
    const b64 = Buffer.from('ssh-ed25519 AAAA test\n').toString('base64');
    assert.equal(
      await c.call('filesystem.file_receive', [`${root}/root/.ssh/authorized_keys`, b64, { mode: 0o600 }]),
      true,
    );
    const st = await sim.engine.statPath(String(entry.dataset), 'root/.ssh/authorized_keys');
    assert.deepEqual([st?.type, st?.mode, st?.uid, st?.gid], ['FILE', 0o600, 0, 0]);
    assert.equal(
      (await sim.engine.readFile(String(entry.dataset), 'root/.ssh/authorized_keys'))?.toString(),
      'ssh-ed25519 AAAA test\n',
    );
    const stat = await c.call<Frame>('filesystem.stat', [`${root}/root/.ssh/authorized_keys`]);
    assert.equal(stat.size, 22);

    await sim.engine.symlink!(
      String(entry.dataset),
      'etc/resolv.conf',
      '../run/systemd/resolve/stub-resolv.conf',
    );
    await sim.engine.symlink!(String(entry.dataset), 'var/run', '/run');
    for (const path of [`${root}/etc/resolv.conf`, `${root}/var/run/x/y`]) {
      const reply = await c.request('filesystem.file_receive', [path, b64]);
      assert.equal(reply.error?.code, -32001, path);
      const data = reply.error?.data as Frame;
      assert.equal(data.errname, 'EINVAL');
      const link = path.endsWith('resolv.conf') ? path : `${root}/var/run/x/y`;
      assert.equal(data.reason, `[Errno 40] Symlink detected in path: '${link}'`);
    }
    assert.equal(
      await sim.engine.readFile(String(entry.dataset), 'run/systemd/resolve/stub-resolv.conf'),
      undefined,
    );
  });
});

describe('simulator TrueNAS 26: checkpoints (zfs.resource.snapshot.*, pool.snapshot.*) B3 vs RC1', () => {
  it('B3 allows create/query (size, creation)/rollback/clone/destroy on a container dataset', async () => {
    await withSim({ version: '26.0.0-BETA.3' }, async (sim, c) => {
      const box = await create(c, 'px-cp');
      const ds = String(box.dataset);
      const root = '/mnt/.truenas_containers/tank/containers/px-cp';
      const put = (text: string) =>
        c.call('filesystem.file_receive', [`${root}/work/state`, Buffer.from(text).toString('base64')]);
      await put('one\n');
      const made = await c.call<Frame>('zfs.resource.snapshot.create', [{ dataset: ds, name: 'cp1' }]);
      assert.deepEqual(Object.keys(made).sort(), [
        'createtxg',
        'dataset',
        'guid',
        'holds',
        'name',
        'pool',
        'properties',
        'snapshot_name',
        'type',
        'user_properties',
      ]);
      assert.equal(made.name, `${ds}@cp1`);
      assert.deepEqual(Object.keys(made.properties as Frame).sort(), ['createtxg', 'creation']);
      await put('two, longer\n');
      await c.call('zfs.resource.snapshot.create', [{ dataset: ds, name: 'cp2' }]);
      await put('three\n');
      const listed = await c.call<Frame[]>('zfs.resource.snapshot.query', [
        { paths: [ds], properties: ['used', 'creation', 'referenced'] },
      ]);
      assert.deepEqual(
        listed.map((s) => s.snapshot_name),
        ['cp1', 'cp2'],
      );
      const props = listed[0].properties as Record<string, Frame>;
      assert.equal(typeof props.used.value, 'number');
      assert.ok(Math.abs(Number(props.creation.value) - Date.now() / 1000) < 60);
      assert.equal(listed[0].holds, null);
      assert.deepEqual(
        (await c.call<Frame[]>('zfs.resource.snapshot.query', [{ paths: [ds] }]))[0].properties,
        null,
        'snapshots have no default properties',
      );
      assert.deepEqual(await c.call('zfs.resource.snapshot.count', [{ paths: [ds] }]), { [ds]: 2 });

      // Rollback to the older one needs recursive (it destroys cp2), and the container stopped (the client's job).
      const blocked = await c.request('zfs.resource.snapshot.rollback', [{ path: `${ds}@cp1` }]);
      assert.equal(blocked.error?.code, -32602);
      assert.deepEqual((blocked.error?.data as Frame).extra, [
        [
          'zfs.resource.snapshot.rollback',
          `Cannot rollback: more recent snapshots or bookmarks exist. Please pass \`recursive: true\` to delete the following snapshots and bookmarks recursively:\n  ${ds}@cp2`,
          22,
        ],
      ]);
      assert.equal(
        await c.call('zfs.resource.snapshot.rollback', [{ path: `${ds}@cp1`, recursive: true }]),
        null,
      );
      assert.equal((await sim.engine.readFile(ds, 'work/state'))?.toString(), 'one\n');
      assert.deepEqual(await c.call('zfs.resource.snapshot.count', [{ paths: [ds] }]), { [ds]: 1 });

      // Clone route (§4.4): a new container, its dataset replaced by a clone of the checkpoint.
      const copy = await create(c, 'px-cp-copy');
      await c.call('zfs.resource.destroy', [{ path: copy.dataset }]);
      assert.equal(
        await c.call('pool.snapshot.clone', [{ snapshot: `${ds}@cp1`, dataset_dst: copy.dataset }]),
        true,
      );
      assert.equal((await sim.engine.readFile(String(copy.dataset), 'work/state'))?.toString(), 'one\n');
      const family = await c.call<Frame[]>('zfs.resource.query', [
        { paths: ['tank/.truenas_containers/containers'], properties: ['origin'], get_children: true },
      ]);
      const copyRow = family.find((r) => r.name === copy.dataset);
      assert.deepEqual(Object.keys((copyRow?.properties as Frame) ?? {}), ['origin']);
      assert.equal(((copyRow?.properties as Frame).origin as Frame).value, `${ds}@cp1`);
      const gone = await c.request('zfs.resource.query', [{ paths: ['tank/nope'] }]);
      assert.deepEqual((gone.error?.data as Frame).extra, [
        ['zfs.resource.query', "'tank/nope' not found", 2],
      ]);
      const busy = await c.request('zfs.resource.snapshot.destroy', [{ path: `${ds}@cp1` }]);
      assert.deepEqual((busy.error?.data as Frame).extra, [
        [
          'zfs.resource.snapshot.destroy',
          `'${ds}@cp1' has the following clones: ${String(copy.dataset)}`,
          16,
        ],
      ]);
      await c.call('container.delete', [copy.id]);
      assert.equal(await c.call('zfs.resource.snapshot.destroy', [{ path: `${ds}@cp1` }]), null);
      assert.deepEqual(await c.call('zfs.resource.snapshot.query', [{ paths: [ds] }]), []);
      const extra = await c.request('zfs.resource.snapshot.create', [
        { dataset: ds, name: 'x', bypass: true },
      ]);
      assert.deepEqual((extra.error?.data as Frame).extra, [
        ['data.bypass', 'Extra inputs are not permitted', 22],
      ]);
    });
  });

  it('RC1 refuses every snapshot call on a container dataset as a protected path', async () => {
    await withSim({ version: '26.0.0-RC.1' }, async (sim, c) => {
      const box = await create(c, 'px-guard');
      const ds = String(box.dataset);
      // A migrated checkpoint under the protected tree (it can exist; it cannot be touched).
      await sim.engine.createSnapshot(ds, 'old');
      const refused = async (method: string, params: unknown[], schema: string, path: string) => {
        const reply = await c.request(method, params);
        assert.equal(reply.error?.code, -32602, method);
        assert.deepEqual(
          (reply.error?.data as Frame).extra,
          [[schema, `'${path}' is a protected path.`, 13]],
          method,
        );
      };
      await refused(
        'zfs.resource.snapshot.create',
        [{ dataset: ds, name: 'cp1' }],
        'zfs.resource.snapshot.create',
        ds,
      );
      await refused(
        'zfs.resource.snapshot.rollback',
        [{ path: `${ds}@old` }],
        'zfs.resource.snapshot.rollback',
        `${ds}@old`,
      );
      await refused(
        'zfs.resource.snapshot.destroy',
        [{ path: `${ds}@old` }],
        'zfs.resource.snapshot.destroy',
        `${ds}@old`,
      );
      await refused(
        'zfs.resource.snapshot.clone',
        [{ snapshot: `${ds}@old`, dataset: 'tank/elsewhere' }],
        'zfs.resource.snapshot.clone',
        `${ds}@old`,
      );
      await refused(
        'pool.snapshot.create',
        [{ dataset: ds, name: 'cp1' }],
        'zfs.resource.snapshot.create',
        ds,
      );
      await refused(
        'pool.snapshot.rollback',
        [`${ds}@old`, {}],
        'zfs.resource.snapshot.rollback',
        `${ds}@old`,
      );
      await refused('pool.snapshot.delete', [`${ds}@old`, {}], 'zfs.resource.snapshot.destroy', `${ds}@old`);
      await refused('zfs.resource.destroy', [{ path: ds }], 'zfs.resource.destroy', ds);
      // Queries that name the path still answer; unnamed ones leave the tree out.
      const named = await c.call<Frame[]>('zfs.resource.snapshot.query', [{ paths: [ds] }]);
      assert.deepEqual(
        named.map((s) => s.name),
        [`${ds}@old`],
      );
      const all = await c.call<Frame[]>('zfs.resource.snapshot.query', [{}]);
      assert.ok(!all.some((s) => String(s.name).startsWith(ds)));
      assert.deepEqual(await sim.engine.listSnapshots((d) => d === ds).then((l) => l.map((s) => s.name)), [
        'old',
      ]);
    });
  });
});

describe('simulator TrueNAS 26: listdir, start-time hostname, the host-job route (cronjob.*) on RC1', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => ({ sim, c } = await open({ version: '26.0.0-RC.1' })));
  after(() => shut({ sim, c }));

  it('start writes /etc/hostname and the 127.0.1.1 line; listdir reads a directory of the rootfs', async () => {
    const box = await create(c, 'px-named');
    const ds = String(box.dataset);
    const root = '/mnt/.truenas_containers/tank/containers/px-named';
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    await c.call('filesystem.file_receive', [
      `${root}/etc/hosts`,
      b64('127.0.0.1\tlocalhost\n127.0.1.1\told\n'),
    ]);
    await c.call('filesystem.file_receive', [`${root}/var/lib/pixels/address/10.1.2.3`, b64(' ')]);
    await c.call('filesystem.file_receive', [`${root}/var/lib/pixels/address/fd00::3`, b64(' ')]);
    await c.call('container.start', [box.id]);
    assert.equal((await sim.engine.readFile(ds, 'etc/hostname'))?.toString(), 'px-named\n');
    assert.equal(
      (await sim.engine.readFile(ds, 'etc/hosts'))?.toString(),
      '127.0.0.1\tlocalhost\n127.0.1.1\tpx-named\n',
    );
    const rows = await c.call<Frame[]>('filesystem.listdir', [`${root}/var/lib/pixels/address`]);
    assert.deepEqual(
      rows.map((r) => [r.name, r.path, r.type]),
      [
        ['10.1.2.3', `${root}/var/lib/pixels/address/10.1.2.3`, 'FILE'],
        ['fd00::3', `${root}/var/lib/pixels/address/fd00::3`, 'FILE'],
      ],
    );
    const missing = await c.request('filesystem.listdir', [`${root}/var/lib/nothing`]);
    assert.equal(
      (missing.error?.data as Frame).reason,
      `[ENOENT] Directory ${root}/var/lib/nothing does not exist`,
    );
    const top = await c.call<Frame[]>('filesystem.listdir', [
      '/mnt/.truenas_containers/tank/containers',
      [['type', '=', 'DIRECTORY']],
    ]);
    assert.deepEqual(
      top.map((r) => [r.name, r.is_mountpoint]),
      [['px-named', true]],
    );
    await runJob(c, 'container.stop', [box.id, { force: true }]);
  });

  it('a disabled root cron job runs zfs on the protected tree, and fails like a shell for anything else', async () => {
    const box = await create(c, 'px-cron');
    const ds = String(box.dataset);
    const hostJob = async (command: string) => {
      const job = await c.call<Frame>('cronjob.create', [
        {
          user: 'root',
          command,
          enabled: false,
          stdout: false,
          stderr: false,
          schedule: { minute: '0', hour: '0', dom: '1', month: '1', dow: '*' },
        },
      ]);
      try {
        return await runJob(c, 'cronjob.run', [job.id, false]);
      } finally {
        assert.equal(await c.call('cronjob.delete', [job.id]), true);
      }
    };
    const refused = await c.request('zfs.resource.snapshot.create', [{ dataset: ds, name: 'cp1' }]);
    assert.equal(refused.error?.code, -32602);
    assert.equal((await hostJob(`zfs snapshot '${ds}@cp1'`)).state, 'SUCCESS');
    const root = '/mnt/.truenas_containers/tank/containers/px-cron';
    await c.call('filesystem.file_receive', [`${root}/work/x`, Buffer.from('after\n').toString('base64')]);
    assert.equal((await hostJob(`zfs snapshot '${ds}@cp2'`)).state, 'SUCCESS');
    const named = await c.call<Frame[]>('zfs.resource.snapshot.query', [{ paths: [ds] }]);
    assert.deepEqual(
      named.map((s) => s.snapshot_name),
      ['cp1', 'cp2'],
    );
    assert.equal((await hostJob(`zfs rollback -r '${ds}@cp1'`)).state, 'SUCCESS');
    assert.equal(await sim.engine.readFile(ds, 'work/x'), undefined);
    // Clone route: a new container whose dataset is replaced by a clone of the checkpoint.
    const copy = await create(c, 'px-cron-copy');
    assert.equal(
      (
        await hostJob(
          `zfs destroy '${String(copy.dataset)}' && zfs clone '${ds}@cp1' ${String(copy.dataset)}`,
        )
      ).state,
      'SUCCESS',
    );
    const origin = (await sim.engine.listDatasets()).find((d) => d.name === copy.dataset)?.origin;
    assert.equal(origin, `${ds}@cp1`);
    const busy = await hostJob(`zfs destroy '${ds}@cp1'`);
    assert.equal(busy.state, 'FAILED');
    assert.equal(
      busy.error,
      `[EFAULT] CronTask "zfs destroy '${ds}@cp1'" exited with 1 (non-zero) exit status.`,
    );
    const other = await hostJob('rm -rf /');
    assert.equal(other.error, '[EFAULT] CronTask "rm -rf /" exited with 127 (non-zero) exit status.');
    assert.deepEqual(await c.call('cronjob.query'), []);
    const badUser = await c.request('cronjob.create', [{ user: 'nobody-here', command: 'true' }]);
    assert.deepEqual((badUser.error?.data as Frame).extra, [
      ['cron_job_create.user', 'Specified user does not exist', 22],
    ]);
  });
});

describe('simulator TrueNAS 26: the LAN bridge as the container bridge', () => {
  it('useLanBridge sets lxc.config bridge on a lan-bridge NAS; new containers default to it', async () => {
    await withSim({ version: '26', network: 'lan-bridge' }, async (sim, c) => {
      assert.deepEqual(await c.call('lxc.bridge_choices'), { '[AUTO]': 'Automatic', br0: 'br0' });
      const bad = await c.request('lxc.update', [{ bridge: 'nosuchbr0' }]);
      assert.deepEqual((bad.error?.data as Frame).extra, [
        ['lxc_config_update.bridge', 'Invalid bridge', 22],
      ]);
      await useLanBridge(sim, KEY);
      assert.equal((await c.call<Frame>('lxc.config')).bridge, 'br0');
      const box = await create(c, 'px-lan');
      assert.equal(box.default_network, 'br0');
      assert.deepEqual(await c.call('container.device.nic_attach_choices'), {
        BRIDGE: ['br0', 'br0'],
        MACVLAN: ['enp1s0'],
      });
      await c.call('lxc.update', [{ bridge: '[AUTO]' }]);
      assert.equal((await c.call<Frame>('container.get_instance', [box.id])).default_network, 'truenasbr0');
    });
  });
});

describe('simulator TrueNAS 26: pool.snapshot.* shapes', () => {
  it('query and create give 26 entries (requested properties only, string createtxg, holds)', async () => {
    await withSim({ version: '26' }, async (_sim, c) => {
      const box = await create(c, 'px-pool');
      const ds = String(box.dataset);
      const made = await c.call<Frame>('pool.snapshot.create', [{ dataset: ds, name: 'cp1' }]);
      assert.deepEqual(Object.keys(made.properties as Frame).sort(), ['createtxg', 'creation']);
      assert.equal(typeof made.createtxg, 'string');
      assert.ok(!('holds' in made));
      const dup = await c.request('pool.snapshot.create', [{ dataset: ds, name: 'cp1' }]);
      assert.deepEqual((dup.error?.data as Frame).extra, [
        ['pool.snapshot.create', 'cp1 already exists.', 17],
      ]);
      const [row] = await c.call<Frame[]>('pool.snapshot.query', [
        [['dataset', '=', ds]],
        { extra: { properties: ['used'] } },
      ]);
      assert.deepEqual(row.holds, {});
      const used = (row.properties as Frame).used as Frame;
      assert.deepEqual(Object.keys(row.properties as Frame), ['used']);
      assert.equal(used.value, String(used.parsed));
      assert.equal(used.source, 'NONE');
    });
  });
});
