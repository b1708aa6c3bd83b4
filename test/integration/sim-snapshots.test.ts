// Snapshots, datasets and files on the simulator: entry shape, create/delete/rollback/clone semantics with real
// file content, defer, holds, the clone-route dataset methods, and per-version method sets.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimServer } from '../sim/index.js';
import { RawClient, type Frame } from '../sim/rawclient.js';

const KEY = `1-${'a'.repeat(64)}`;
const DS = (name: string) => `tank/.ix-virt/containers/${name}`;
const ROOTFS = (name: string) => `/var/lib/incus/storage-pools/tank/containers/${name}/rootfs`;

async function client(sim: SimServer): Promise<RawClient> {
  const c = await RawClient.connect(sim.url);
  await c.login(KEY);
  await c.call('core.subscribe', ['core.get_jobs']);
  return c;
}

async function runJob(c: RawClient, method: string, params: unknown[]): Promise<Frame> {
  return c.jobEnd(await c.call<number>(method, params));
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}

async function fileText(sim: SimServer, name: string, path: string): Promise<string | undefined> {
  return (await sim.engine.readFile(DS(name), `rootfs${path}`))?.toString();
}

describe('simulator snapshots (25.10, pool.snapshot.*)', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 10 });
    c = await client(sim);
    await c.call('core.subscribe', ['pool.snapshot.query']);
    for (const name of ['px-a', 'px-b']) {
      assert.equal(
        (await runJob(c, 'virt.instance.create', [{ name, image: 'ubuntu/24.04' }])).state,
        'SUCCESS',
      );
    }
  });
  after(async () => {
    c.close();
    await sim.close();
  });

  it('creates a snapshot with the entry shape of PoolSnapshotEntry and an added event', async () => {
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/root/one.txt`, b64('one'), { mode: 0o600 }]);
    const snap = await c.call<Frame>('pool.snapshot.create', [{ dataset: DS('px-a'), name: 'first' }]);
    assert.equal(snap.id, `${DS('px-a')}@first`);
    assert.equal(snap.name, snap.id);
    assert.equal(snap.snapshot_name, 'first');
    assert.equal(snap.dataset, DS('px-a'));
    assert.equal(snap.pool, 'tank');
    assert.equal(snap.type, 'SNAPSHOT');
    assert.match(String(snap.createtxg), /^\d+$/);
    const props = snap.properties as Record<string, Frame>;
    for (const key of [
      'used',
      'referenced',
      'createtxg',
      'creation',
      'userrefs',
      'clones',
      'defer_destroy',
    ]) {
      assert.deepEqual(Object.keys(props[key]).sort(), ['parsed', 'rawvalue', 'source', 'value'], key);
    }
    assert.equal(typeof props.referenced.parsed, 'number');
    assert.equal(props.referenced.rawvalue, String(props.referenced.parsed));
    assert.match(String(props.referenced.value), /^\d+(\.\d+)?[BKMGT]$/);
    assert.equal(props.createtxg.parsed, snap.createtxg);
    const created = (props.creation.parsed as { $date: number }).$date;
    assert.ok(Math.abs(created - Date.now()) < 5000);
    assert.match(String(props.creation.value), /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d \d{4}$/);
    assert.equal(props.userrefs.parsed, '0');
    const added = await c.waitFor(
      (f) => f.method === 'collection_update' && (f.params as Frame).collection === 'pool.snapshot.query',
    );
    assert.equal((added.params as Frame).msg, 'added');
    assert.equal((added.params as Frame).id, snap.id);
  });

  it('refuses a duplicate with EEXIST and a bad name with a validation error', async () => {
    const dup = await c.request('pool.snapshot.create', [{ dataset: DS('px-a'), name: 'first' }]);
    assert.equal(dup.error?.code, -32001);
    assert.equal(dup.error?.data?.error, 17);
    assert.equal(dup.error?.data?.errname, 'EEXIST');
    assert.match(
      String(dup.error?.data?.reason),
      /^\[EEXIST\] Failed to snapshot tank\/\.ix-virt\/containers\/px-a@first: .*already exists/,
    );
    const bad = await c.request('pool.snapshot.create', [{ dataset: DS('px-a'), name: 'a/b' }]);
    assert.deepEqual(bad.error?.data?.extra, [['snapshot_create.name', 'Invalid snapshot name', 22]]);
    const neither = await c.request('pool.snapshot.create', [{ dataset: DS('px-a') }]);
    assert.deepEqual(neither.error?.data?.extra, [
      ['snapshot_create.naming_schema', 'You must specify either name or naming schema', 22],
    ]);
    const both = await c.request('pool.snapshot.create', [
      { dataset: DS('px-a'), name: 'x', naming_schema: 'auto-%Y' },
    ]);
    assert.equal(
      (both.error?.data?.extra as unknown[][])[0][1],
      "You can't specify name and naming schema at the same time",
    );
    const schema = await c.call<Frame>('pool.snapshot.create', [
      { dataset: DS('px-b'), naming_schema: 'auto-%Y%m%d' },
    ]);
    assert.match(String(schema.snapshot_name), /^auto-\d{8}$/);
    assert.equal(await c.call('pool.snapshot.delete', [schema.id]), true);
    const noDs = await c.request('pool.snapshot.create', [{ dataset: 'tank/nope', name: 'x' }]);
    assert.equal(
      noDs.error?.data?.reason,
      '[EFAULT] Failed to snapshot tank/nope@x: Dataset tank/nope not found',
    );
    const noSnap = await c.request('pool.snapshot.clone', [
      { snapshot: 'tank/nope@x', dataset_dst: 'tank/y' },
    ]);
    assert.equal(
      noSnap.error?.data?.reason,
      '[EFAULT] Failed to clone snapshot: Snapshot tank/nope@x not found',
    );
  });

  it('queries with filters and options.extra.properties, and get_instance', async () => {
    const rows = await c.call<Frame[]>('pool.snapshot.query', [
      [['dataset', 'in', [DS('px-a'), DS('px-b')]]],
      { extra: { properties: ['referenced', 'creation'] }, order_by: ['-createtxg'] },
    ]);
    assert.equal(rows.length, 1);
    assert.deepEqual(Object.keys(rows[0].properties as Frame).sort(), ['creation', 'referenced']);
    const one = await c.call<Frame>('pool.snapshot.get_instance', [`${DS('px-a')}@first`]);
    assert.equal(one.snapshot_name, 'first');
    const missing = await c.request('pool.snapshot.get_instance', [`${DS('px-a')}@nope`]);
    assert.equal(
      missing.error?.data?.reason,
      `[ENOENT] None: PoolSnapshot ${DS('px-a')}@nope does not exist`,
    );
    const names = await c.call<Frame[]>('pool.snapshot.query', [
      [['name', 'C$', '@FIRST']],
      { select: ['name'] },
    ]);
    assert.deepEqual(names, [{ name: `${DS('px-a')}@first` }]);
  });

  it('rollback needs recursive past newer snapshots, rolls a running (mounted) dataset back in place, and restores files', async () => {
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/root/two.txt`, b64('two')]);
    await c.call('pool.snapshot.create', [{ dataset: DS('px-a'), name: 'second' }]);
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/root/three.txt`, b64('three')]);
    await c.call('pool.snapshot.create', [{ dataset: DS('px-a'), name: 'third' }]);
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/root/four.txt`, b64('four')]);

    // OpenZFS rolls a mounted filesystem back without unmounting it (zfs_ioc_rollback: suspend, roll, resume).
    assert.equal(await c.call('pool.snapshot.rollback', [`${DS('px-a')}@third`]), null);
    assert.equal(await fileText(sim, 'px-a', '/root/four.txt'), undefined);
    assert.equal(await fileText(sim, 'px-a', '/root/three.txt'), 'three');
    assert.equal(await c.call('pool.snapshot.delete', [`${DS('px-a')}@third`]), true);
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/root/one.txt`, b64('changed')]);
    assert.equal((await runJob(c, 'virt.instance.stop', ['px-a', { timeout: 30 }])).state, 'SUCCESS');

    const blocked = await c.request('pool.snapshot.rollback', [`${DS('px-a')}@first`]);
    assert.equal(blocked.error?.code, -32001);
    assert.match(String(blocked.error?.data?.reason), /more recent snapshots or bookmarks exist/);
    assert.match(String(blocked.error?.data?.reason), /px-a@second/);

    assert.equal(await c.call('pool.snapshot.rollback', [`${DS('px-a')}@second`]), null);
    assert.equal(
      await fileText(sim, 'px-a', '/root/three.txt'),
      undefined,
      'file written after the snapshot is gone',
    );
    assert.equal(await fileText(sim, 'px-a', '/root/one.txt'), 'one');
    assert.equal(await fileText(sim, 'px-a', '/root/two.txt'), 'two');

    await c.call('pool.snapshot.create', [{ dataset: DS('px-a'), name: 'third' }]);
    assert.equal(await c.call('pool.snapshot.rollback', [`${DS('px-a')}@first`, { recursive: true }]), null);
    const left = await c.call<Frame[]>('pool.snapshot.query', [
      [['dataset', '=', DS('px-a')]],
      { select: ['snapshot_name'] },
    ]);
    assert.deepEqual(left, [{ snapshot_name: 'first' }], 'recursive rollback destroyed the newer snapshots');
    assert.equal(await fileText(sim, 'px-a', '/root/two.txt'), undefined);
    assert.equal(await fileText(sim, 'px-a', '/root/one.txt'), 'one');
    assert.equal((await runJob(c, 'virt.instance.start', ['px-a'])).state, 'SUCCESS');
  });

  it('clones into a new dataset with a copy of the snapshot content and an origin', async () => {
    await c.call('pool.dataset.create', [{ name: 'tank/scratch' }]);
    assert.equal(
      await c.call('pool.snapshot.clone', [
        { snapshot: `${DS('px-a')}@first`, dataset_dst: 'tank/scratch/copy' },
      ]),
      true,
    );
    const ds = await c.call<Frame>('pool.dataset.get_instance', ['tank/scratch/copy']);
    assert.equal((ds.origin as Frame).value, `${DS('px-a')}@first`);
    assert.equal((await sim.engine.readFile('tank/scratch/copy', 'rootfs/root/one.txt'))?.toString(), 'one');
    const exists = await c.request('pool.snapshot.clone', [
      { snapshot: `${DS('px-a')}@first`, dataset_dst: 'tank/scratch/copy' },
    ]);
    assert.equal(exists.error?.data?.error, 14);
    assert.match(
      String(exists.error?.data?.reason),
      /^\[EFAULT\] Failed to clone snapshot: .*dataset already exists/,
    );
    const snap = await c.call<Frame>('pool.snapshot.get_instance', [`${DS('px-a')}@first`]);
    assert.equal(((snap.properties as Frame).clones as Frame).value, 'tank/scratch/copy');
  });

  it('refuses to delete a snapshot with clones unless defer, and reaps it with the last clone', async () => {
    const id = `${DS('px-a')}@first`;
    const refused = await c.request('pool.snapshot.delete', [id]);
    assert.equal(refused.error?.code, -32602);
    assert.deepEqual(refused.error?.data?.extra, [
      [
        'options.defer',
        `Please set this attribute as '${id}' snapshot has dependent clones: tank/scratch/copy`,
        22,
      ],
    ]);
    assert.equal(await c.call('pool.snapshot.delete', [id, { defer: true }]), true);
    const marked = await c.call<Frame>('pool.snapshot.get_instance', [id]);
    assert.equal(((marked.properties as Frame).defer_destroy as Frame).value, 'on');
    assert.equal(await c.call('pool.dataset.delete', ['tank/scratch/copy']), true);
    assert.equal(
      (await c.request('pool.snapshot.get_instance', [id])).error?.code,
      -32602,
      'gone with its clone',
    );
    const missing = await c.request('pool.snapshot.delete', [id]);
    assert.equal(missing.error?.code, -32602);
    assert.deepEqual(missing.error?.data?.extra, [[null, `Snapshot ${id} not found`, 2]]);
  });

  it('holds block delete; release lets it go', async () => {
    await c.call('pool.snapshot.create', [{ dataset: DS('px-b'), name: 'held' }]);
    const id = `${DS('px-b')}@held`;
    assert.equal(await c.call('pool.snapshot.hold', [id]), null);
    const held = await c.call<Frame>('pool.snapshot.get_instance', [id, { extra: { holds: true } }]);
    assert.deepEqual(held.holds, { truenas: 1 });
    assert.equal(((held.properties as Frame).userrefs as Frame).parsed, '1');
    assert.equal(
      (await c.request('pool.snapshot.delete', [id])).error?.data?.reason,
      '[EFAULT] dataset is busy',
    );
    assert.equal(await c.call('pool.snapshot.release', [id]), null);
    assert.equal(await c.call('pool.snapshot.delete', [id]), true);
    const removed = await c.waitFor(
      (f) =>
        f.method === 'collection_update' &&
        (f.params as Frame).msg === 'removed' &&
        (f.params as Frame).id === id,
    );
    assert.deepEqual((removed.params as Frame).extra, { recursive: false });
  });

  it('renames snapshots only with force', async () => {
    await c.call('pool.snapshot.create', [{ dataset: DS('px-b'), name: 'old' }]);
    const refused = await c.request('pool.snapshot.rename', [
      `${DS('px-b')}@old`,
      { new_name: `${DS('px-b')}@new` },
    ]);
    assert.equal((refused.error?.data?.extra as unknown[][])[0][0], 'pool.snapshot.rename.force');
    assert.equal(
      await c.call('pool.snapshot.rename', [
        `${DS('px-b')}@old`,
        { new_name: `${DS('px-b')}@new`, force: true },
      ]),
      null,
    );
    assert.equal(
      (await c.call<Frame>('pool.snapshot.get_instance', [`${DS('px-b')}@new`])).snapshot_name,
      'new',
    );
  });

  it('runs the 25.10 clone route: rename the new dataset away, clone, delete the trash', async () => {
    await c.call('filesystem.file_receive', [`${ROOTFS('px-b')}/etc/marker`, b64('from px-b')]);
    await c.call('pool.snapshot.create', [{ dataset: DS('px-b'), name: 'base' }]);
    assert.equal(
      (await runJob(c, 'virt.instance.create', [{ name: 'px-c', image: 'ubuntu/24.04', autostart: false }]))
        .state,
      'SUCCESS',
    );
    const hidden = await c.request('pool.dataset.delete', [DS('px-c'), { recursive: true }]);
    assert.equal(hidden.error?.code, -32602);
    assert.equal(hidden.error?.data?.reason, `[ENOENT] None: PoolDataset ${DS('px-c')} does not exist`);
    const noForce = await c.request('pool.dataset.rename', [DS('px-c'), { new_name: 'tank/px-trash-c' }]);
    assert.equal((noForce.error?.data?.extra as unknown[][])[0][0], 'pool.dataset.rename.force');
    assert.equal(
      await c.call('pool.dataset.rename', [DS('px-c'), { new_name: 'tank/px-trash-c', force: true }]),
      null,
    );
    assert.equal(
      await c.call('pool.snapshot.clone', [{ snapshot: `${DS('px-b')}@base`, dataset_dst: DS('px-c') }]),
      true,
    );
    assert.equal(await c.call('pool.dataset.delete', ['tank/px-trash-c', { recursive: true }]), true);
    assert.equal((await runJob(c, 'virt.instance.start', ['px-c'])).state, 'SUCCESS');
    assert.equal(await fileText(sim, 'px-c', '/etc/marker'), 'from px-b');
    assert.equal(
      await fileText(sim, 'px-c', '/etc/hostname'),
      'px-b\n',
      'a clone keeps the source identity until fixed',
    );
    await c.call('filesystem.file_receive', [`${ROOTFS('px-c')}/etc/hostname`, b64('px-c\n')]);
    assert.equal(await fileText(sim, 'px-c', '/etc/hostname'), 'px-c\n');
    assert.equal(await fileText(sim, 'px-b', '/etc/hostname'), 'px-b\n', 'the source is untouched');
    const visible = await c.call<Frame[]>('pool.dataset.query', [[], { select: ['id'] }]);
    assert.equal(
      visible.some((d) => String(d.id).includes('.ix-virt')),
      false,
    );
    assert.ok(visible.some((d) => d.id === 'tank'));
  });

  it('lands writes into an unmounted container on the host, invisible to the container', async () => {
    assert.equal((await runJob(c, 'virt.instance.stop', ['px-c', { timeout: 5 }])).state, 'SUCCESS');
    const path = `${ROOTFS('px-c')}/root/while-stopped`;
    assert.equal(await c.call('filesystem.file_receive', [path, b64('shadow')]), true);
    assert.equal((await c.call<Frame>('filesystem.stat', [path])).type, 'FILE');
    assert.equal(await fileText(sim, 'px-c', '/root/while-stopped'), undefined);
    assert.equal((await runJob(c, 'virt.instance.start', ['px-c'])).state, 'SUCCESS');
    assert.equal(
      (await c.request('filesystem.stat', [path])).error?.data?.error,
      2,
      'hidden by the mounted dataset',
    );
  });

  it('destroying a sandbox with a cloned checkpoint parks its dataset under deleted/', async () => {
    assert.equal((await runJob(c, 'virt.instance.delete', ['px-b'])).state, 'SUCCESS');
    const all = await c.call<Frame[]>('zfs.dataset.query', [
      [['id', '^', 'tank/.ix-virt/deleted/containers/px-b']],
    ]);
    assert.equal(all.length, 1);
    assert.equal((await runJob(c, 'virt.instance.delete', ['px-c'])).state, 'SUCCESS');
    const after = await c.call<Frame[]>('zfs.dataset.query', [
      [['id', '^', 'tank/.ix-virt/deleted/containers/px-b']],
    ]);
    assert.equal(after.length, 0, 'removed with its last clone');
  });
});

describe('simulator snapshots (25.04, zfs.snapshot.*)', () => {
  let sim: SimServer;
  let c: RawClient;
  before(async () => {
    sim = await startSimulator({ version: '25.04', apiKey: KEY, jobDurationMs: 10 });
    c = await client(sim);
    await c.call('core.subscribe', ['zfs.snapshot.query']);
    await runJob(c, 'virt.instance.create', [{ name: 'px-s', image: 'ubuntu/24.04' }]);
    await runJob(c, 'virt.instance.create', [{ name: 'px-t', image: 'ubuntu/24.04', autostart: false }]);
  });
  after(async () => {
    c.close();
    await sim.close();
  });

  it('has zfs.snapshot.* and no pool.snapshot.* or pool.dataset.rename', async () => {
    for (const method of [
      'pool.snapshot.query',
      'pool.snapshot.create',
      'pool.snapshot.clone',
      'pool.dataset.rename',
    ]) {
      assert.deepEqual((await c.request(method, [])).error, {
        code: -32601,
        message: 'Method does not exist',
      });
    }
    const snap = await c.call<Frame>('zfs.snapshot.create', [{ dataset: DS('px-s'), name: 'ready' }]);
    assert.equal(snap.id, `${DS('px-s')}@ready`);
    const ev = await c.waitFor(
      (f) => f.method === 'collection_update' && (f.params as Frame).collection === 'zfs.snapshot.query',
    );
    assert.equal((ev.params as Frame).msg, 'added');
    const missing = await c.request('zfs.snapshot.get_instance', [`${DS('px-s')}@x`]);
    assert.equal(missing.error?.data?.reason, `[ENOENT] None: ZFSSnapshot ${DS('px-s')}@x does not exist`);
  });

  it('runs the 25.04 clone route through zfs.dataset.delete and zfs.snapshot.clone', async () => {
    const running = await c.request('zfs.dataset.delete', [DS('px-s'), { recursive: true }]);
    assert.equal(running.error?.data?.errname, 'EBUSY', 'a running container keeps its dataset busy');
    const notRecursive = await c.request('zfs.dataset.delete', [DS('px-s')]);
    assert.match(String(notRecursive.error?.data?.reason), /filesystem has children/);
    assert.equal(await c.call('zfs.dataset.delete', [DS('px-t'), { recursive: true }]), true);
    assert.equal(
      await c.call('zfs.snapshot.clone', [{ snapshot: `${DS('px-s')}@ready`, dataset_dst: DS('px-t') }]),
      true,
    );
    assert.equal((await runJob(c, 'virt.instance.start', ['px-t'])).state, 'SUCCESS');
    const promoteNot = await c.request('pool.dataset.promote', [DS('px-s')]);
    assert.equal(promoteNot.error?.data?.reason, '[EBADMSG] Only cloned datasets can be promoted.');
    assert.equal(await c.call('pool.dataset.promote', [DS('px-t')]), null);
    const moved = await c.call<Frame[]>('zfs.snapshot.query', [
      [['snapshot_name', '=', 'ready']],
      { select: ['dataset'] },
    ]);
    assert.deepEqual(moved, [{ dataset: DS('px-t') }], 'promote moved the origin snapshot onto the clone');
  });

  it('a deleted instance whose dataset is gone fails to start with the Incus reason', async () => {
    await runJob(c, 'virt.instance.create', [{ name: 'px-u', image: 'ubuntu/24.04', autostart: false }]);
    await c.call('zfs.dataset.delete', [DS('px-u'), { recursive: true }]);
    const end = await runJob(c, 'virt.instance.start', ['px-u']);
    assert.equal(end.state, 'FAILED');
    assert.match(
      String(end.error),
      /^\[EFAULT\] Failed to start instance: .*dataset does not exist\. Please check job logs\.$/,
    );
  });

  it('filesystem.stat and file_receive errors', async () => {
    const nope = await c.request('filesystem.stat', ['/nope']);
    assert.equal(nope.error?.data?.reason, '[ENOENT] Path /nope not found');
    const rel = await c.request('filesystem.stat', ['relative/path']);
    assert.equal(rel.error?.data?.error, 22);
    // As root on the NAS, file_receive writes the NAS's own files too: here the simulator's NAS-root stand-in.
    const realPasswd = readFileSync('/etc/passwd');
    assert.equal(await c.call('filesystem.file_receive', ['/etc/passwd', b64('x')]), true);
    assert.equal(readFileSync(join(sim.nasRoot, 'etc/passwd'), 'utf8'), 'x');
    assert.deepEqual(readFileSync('/etc/passwd'), realPasswd, "this machine's /etc/passwd is untouched");
    const dir = await c.call<Frame>('filesystem.stat', ['/var/lib/incus/storage-pools/tank/containers']);
    assert.equal(dir.type, 'DIRECTORY');
    await c.call('filesystem.file_receive', [
      `${ROOTFS('px-s')}/root/.ssh/authorized_keys`,
      b64('ssh-ed25519 AAA a\n'),
    ]);
    await c.call('filesystem.file_receive', [
      `${ROOTFS('px-s')}/root/.ssh/authorized_keys`,
      b64('ssh-ed25519 BBB b\n'),
      { append: true, mode: 0o600 },
    ]);
    assert.equal(
      await fileText(sim, 'px-s', '/root/.ssh/authorized_keys'),
      'ssh-ed25519 AAA a\nssh-ed25519 BBB b\n',
    );
    const st = await c.call<Frame>('filesystem.stat', [`${ROOTFS('px-s')}/root/.ssh/authorized_keys`]);
    assert.equal(Number(st.mode) & 0o777, 0o600);
    assert.equal(st.size, 36);
  });
});
