// The production TrueNAS backend against the simulator, for every operation, on 25.04 and 25.10.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AlreadyExistsError,
  DependentClonesError,
  NotFoundError,
  SecurityError,
  ValidationError,
} from '../../src/core/errors';
import type { ProgressReport } from '../../src/core/sandbox';
import { snapshotNasRoot } from '../sim/nas-root';
import { clientFor, containerDs, type Rig, startRig, stateOf, VERSIONS, waitFor } from './truenas-fixtures';

for (const version of VERSIONS) {
  describe(`TrueNAS ${version} backend`, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(version);
    });
    after(async () => {
      await rig?.close();
    });

    test('info and capabilities', async () => {
      const info = await rig.backend.info();
      assert.match(info.version, new RegExp(`^TrueNAS ${version.replace('.', '\\.')}`));
      const caps = await rig.backend.capabilities();
      assert.deepEqual(caps, {
        restoreAnyCheckpoint: true,
        cloneFromCheckpoint: true,
        cloneFromCurrentState: true,
        writeFiles: true,
        writesResolveInSandbox: false,
        exec: false,
        cancel: true,
        clusterMembers: false,
        events: true,
      });
    });

    test('create, get, stop, start, restart with progress; memory and cpu reach the server', async () => {
      const progress: ProgressReport[] = [];
      const box = await rig.backend.create(
        { name: 'alpha', image: 'debian/12', cpu: '2', memoryMiB: 1024, environment: { FOO: 'bar' } },
        { onProgress: (p) => progress.push(p) },
      );
      assert.equal(box.name, 'alpha');
      assert.equal(box.instanceName, 'px-alpha');
      assert.equal(box.status, 'running');
      assert.equal(box.cpu, '2');
      assert.equal(box.memoryMiB, 1024);
      assert.ok(box.ipv4, 'a running sandbox has an IPv4 address');
      assert.ok(progress.length > 0, 'job progress reached the caller');
      const [inst] = (await rig.sim.engine.listInstances()).filter((i) => i.name === 'px-alpha');
      assert.equal(inst.memory, 1024 * 1024 * 1024);
      assert.deepEqual(inst.environment, { FOO: 'bar' });

      await rig.backend.stop('alpha');
      assert.equal((await rig.backend.get('alpha')).status, 'stopped');
      assert.equal((await rig.backend.get('alpha')).ipv4, undefined);
      await rig.backend.stop('alpha'); // already stopped: no error
      await rig.backend.start('alpha');
      assert.equal((await rig.backend.get('alpha')).status, 'running');
      await rig.backend.restart('alpha', { timeoutSec: 5 });
      assert.equal((await rig.backend.get('alpha')).status, 'running');
      await rig.backend.stop('alpha', { force: true });
      assert.equal((await rig.backend.get('alpha')).status, 'stopped');
      await rig.backend.start('alpha');
    });

    test('create with start:false leaves it stopped; the NIC settings become a NIC device', async () => {
      const box = await rig.backend.create({
        name: 'cold',
        image: 'ubuntu/24.04',
        start: false,
        nic: { nicType: 'MACVLAN', parent: 'eno1' },
      });
      assert.equal(box.status, 'stopped');
      const [inst] = (await rig.sim.engine.listInstances()).filter((i) => i.name === 'px-cold');
      const nic = inst.devices.find((d) => d.dev_type === 'NIC');
      assert.equal(nic?.nic_type, 'MACVLAN');
      assert.equal(nic?.parent, 'eno1');
      await rig.backend.destroy('cold');
    });

    test('list costs two calls whatever the number of sandboxes', async () => {
      await rig.backend.list(); // warm: version and virt.global.config are read once per backend
      for (const n of ['l1', 'l2', 'l3']) {
        await rig.backend.create({ name: n, image: 'alpine/3.20', start: false });
        await rig.backend.createCheckpoint(n, 'first');
      }
      const measure = async () => {
        const before = rig.sim.callCount();
        const list = await rig.backend.list();
        return { calls: rig.sim.callCount() - before, list };
      };
      const small = await measure();
      await rig.backend.create({ name: 'l4', image: 'alpine/3.20', start: false });
      await rig.backend.create({ name: 'l5', image: 'alpine/3.20', start: false });
      const big = await measure();
      assert.equal(small.calls, 2);
      assert.equal(big.calls, 2);
      assert.equal(big.list.length, small.list.length + 2);
      const l1 = big.list.find((s) => s.name === 'l1')!;
      assert.deepEqual(
        l1.checkpoints?.map((c) => c.label),
        ['first'],
      );
      for (const n of ['l1', 'l2', 'l3', 'l4', 'l5']) await rig.backend.destroy(n);
    });

    test('list asks only for the fields it shows, and reads a server that ignores select the same way', async () => {
      await rig.backend.create({ name: 'sel', image: 'debian/12', cpu: '1', memoryMiB: 512 });
      await rig.backend.createCheckpoint('sel', 'one');
      await rig.backend.createCheckpoint('sel', 'two');
      const snapshotQuery = version === '25.04' ? 'zfs.snapshot.query' : 'pool.snapshot.query';
      const seen = new Map<string, Record<string, unknown>[]>();
      const keep = (method: string) => (frame: string) => {
        seen.set(method, (JSON.parse(frame) as { result: Record<string, unknown>[] }).result);
        return frame;
      };
      rig.sim.faults.rewriteReplies('virt.instance.query', keep('virt.instance.query'));
      rig.sim.faults.rewriteReplies(snapshotQuery, keep(snapshotQuery));
      const honoured = await rig.backend.list();
      rig.sim.faults.reset();
      const sel = honoured.find((s) => s.name === 'sel')!;
      assert.equal(sel.status, 'running');
      assert.ok(sel.ipv4 && sel.image, 'address and image come through the selected fields');
      assert.equal(sel.cpu, '1');
      assert.equal(sel.memoryMiB, 512);
      assert.deepEqual(
        sel.checkpoints?.map((c) => c.label),
        ['two', 'one'],
      );
      assert.ok(sel.checkpoints?.every((c) => c.sizeBytes! > 0 && !Number.isNaN(c.createdAt.getTime())));
      // What came over the wire: only the selected fields (the snapshot query keeps top-level keys).
      const inst = seen.get('virt.instance.query')!.find((r) => r.name === 'px-sel')!;
      assert.deepEqual(Object.keys(inst).sort(), ['aliases', 'cpu', 'image', 'memory', 'name', 'status']);
      assert.deepEqual(Object.keys(inst.image as object).sort(), ['description', 'os', 'release']);
      for (const row of seen.get(snapshotQuery)!)
        assert.deepEqual(Object.keys(row).sort(), ['id', 'properties']);

      // A server that ignores select: whole rows (as asked without it) in place of the selected ones.
      const raw = clientFor(rig.sim);
      try {
        const ds = containerDs(rig.sim, '');
        const whole = {
          'virt.instance.query': await raw.call('virt.instance.query', [[['name', '^', 'px-']]], {
            context: 'test',
          }),
          [snapshotQuery]: await raw.call(
            snapshotQuery,
            [[['dataset', '^', ds]], { extra: { properties: ['referenced', 'creation', 'defer_destroy'] } }],
            { context: 'test' },
          ),
        };
        for (const [method, rows] of Object.entries(whole)) {
          assert.ok(Object.keys((rows as object[])[0]!).length > 6, `${method} rows are whole`);
          rig.sim.faults.rewriteReplies(method, (frame) =>
            JSON.stringify({ ...(JSON.parse(frame) as object), result: rows }),
          );
        }
        assert.deepEqual(await rig.backend.list(), honoured);
      } finally {
        rig.sim.faults.reset();
        raw.dispose();
      }
      await rig.backend.destroy('sel');
    });

    test('checkpoints: create (default label), list newest first with size and real time, restore an older one, delete', async () => {
      await rig.backend.create({ name: 'cp', image: 'debian/12' });
      const t0 = Date.now();
      const first = await rig.backend.createCheckpoint('cp', 'one');
      await rig.backend.writeFile('cp', '/root/marker', Buffer.from('after-one'));
      const second = await rig.backend.createCheckpoint('cp', 'two');
      const auto = await rig.backend.createCheckpoint('cp');
      assert.match(auto.label, /^px-\d{8}-\d{6}$/);
      assert.ok(Math.abs(first.createdAt.getTime() - t0) < 60_000, 'creation is a real time, not createtxg');
      assert.ok(typeof first.sizeBytes === 'number' && first.sizeBytes > 0);
      const list = await rig.backend.listCheckpoints('cp');
      assert.deepEqual(
        list.map((c) => c.label),
        [auto.label, 'two', 'one'],
      );
      assert.equal(second.sandbox, 'cp');
      await assert.rejects(rig.backend.createCheckpoint('cp', 'one'), AlreadyExistsError);
      await assert.rejects(rig.backend.createCheckpoint('cp', 'bad/label'), ValidationError);

      // Restore the OLDEST: the newer ones are destroyed, the file written after it is gone, it runs again.
      await rig.backend.restoreCheckpoint('cp', 'one');
      assert.deepEqual(
        (await rig.backend.listCheckpoints('cp')).map((c) => c.label),
        ['one'],
      );
      assert.equal((await rig.backend.get('cp')).status, 'running');
      assert.equal(
        await rig.sim.engine.readFile(containerDs(rig.sim, 'cp'), 'rootfs/root/marker'),
        undefined,
      );

      await assert.rejects(rig.backend.restoreCheckpoint('cp', 'nope'), NotFoundError);
      await rig.backend.deleteCheckpoint('cp', 'one');
      assert.deepEqual(await rig.backend.listCheckpoints('cp'), []);
      await assert.rejects(rig.backend.deleteCheckpoint('cp', 'one'), /has no checkpoint named "one"/);

      // A stopped sandbox stays stopped after a restore.
      await rig.backend.createCheckpoint('cp', 'again');
      await rig.backend.stop('cp');
      await rig.backend.restoreCheckpoint('cp', 'again');
      assert.equal((await rig.backend.get('cp')).status, 'stopped');
      await rig.backend.destroy('cp');
    });

    test('writeFile: content, mode, uid/gid, append, and chunks above 2 MiB', async () => {
      await rig.backend.create({ name: 'files', image: 'debian/12' });
      const ds = containerDs(rig.sim, 'files');
      await rig.backend.writeFile('files', '/root/.ssh/authorized_keys', Buffer.from('key-one\n'), {
        mode: 0o600,
        uid: 0,
        gid: 0,
      });
      await rig.backend.writeFile('files', '/root/.ssh/authorized_keys', Buffer.from('key-two\n'), {
        append: true,
      });
      assert.equal(
        (await rig.sim.engine.readFile(ds, 'rootfs/root/.ssh/authorized_keys'))?.toString(),
        'key-one\nkey-two\n',
      );
      const st = await rig.sim.engine.statPath(ds, 'rootfs/root/.ssh/authorized_keys');
      assert.equal(st?.mode, 0o600);
      await rig.backend.writeFile('files', '/home/pixel/x', Buffer.from('p'), {
        uid: 1000,
        gid: 1000,
        mode: 0o644,
      });
      assert.equal((await rig.sim.engine.statPath(ds, 'rootfs/home/pixel/x'))?.uid, 1000);
      const big = Buffer.alloc(5 * 1024 * 1024 + 17);
      for (let i = 0; i < big.length; i++) big[i] = i % 251;
      const before = rig.sim.callCount('filesystem.file_receive');
      await rig.backend.writeFile('files', '/opt/big.bin', big);
      assert.equal(rig.sim.callCount('filesystem.file_receive') - before, 6);
      assert.ok((await rig.sim.engine.readFile(ds, 'rootfs/opt/big.bin'))?.equals(big));
      await assert.rejects(rig.backend.writeFile('files', 'relative', Buffer.from('x')), /must be absolute/);
      await rig.backend.destroy('files');
      // Created but not started: the filesystem is not mounted yet.
      await rig.backend.create({ name: 'cold', image: 'debian/12', start: false });
      await assert.rejects(rig.backend.writeFile('cold', '/x', Buffer.from('x')), /must be running/);
      await rig.backend.destroy('cold');
    });

    test('writeFile goes through the NAS file API only into a sandbox nothing has run in, and never through a link', async () => {
      const nasBefore = snapshotNasRoot(rig.sim.nasRoot);
      await rig.backend.create({ name: 'trap', image: 'debian/12' });
      const ds = containerDs(rig.sim, 'trap');
      // What root inside could have done (an image, or anything that ran): links to the NAS's own files.
      await rig.sim.engine.symlink!(ds, 'rootfs/etc/hostname', '/etc/passwd');
      await rig.sim.engine.symlink!(ds, 'rootfs/root/.ssh', '/root/.ssh');
      await assert.rejects(
        rig.backend.writeFile('trap', '/etc/hostname', Buffer.from('px-trap\n')),
        (e: Error) => {
          assert.ok(e instanceof SecurityError, String(e));
          assert.match(
            e.message,
            /Refusing to write \/etc\/hostname into "trap": \/etc\/hostname is a symbolic link/,
          );
          assert.match(e.message, /leads to \/etc\/passwd on the NAS/);
          return true;
        },
      );
      await assert.rejects(
        rig.backend.writeFile('trap', '/root/.ssh/authorized_keys', Buffer.from('k\n'), { append: true }),
        /\/root\/\.ssh is a symbolic link/,
      );
      await rig.backend.writeFile('trap', '/etc/motd', Buffer.from('fine\n'));
      assert.equal((await rig.sim.engine.readFile(ds, 'rootfs/etc/motd'))?.toString(), 'fine\n');
      // Once it was restarted (handed over), nothing is written through the NAS any more, link or not.
      await rig.backend.restart('trap');
      const calls = rig.sim.callCount('filesystem.file_receive');
      await assert.rejects(rig.backend.writeFile('trap', '/etc/motd', Buffer.from('again\n')), (e: Error) => {
        assert.ok(e instanceof SecurityError, String(e));
        assert.match(e.message, /will not write \/etc\/motd into "trap" through the TrueNAS file API/);
        return true;
      });
      assert.equal(rig.sim.callCount('filesystem.file_receive'), calls, 'nothing was sent');
      assert.deepEqual(snapshotNasRoot(rig.sim.nasRoot), nasBefore, "the NAS's own files are byte-identical");
      await rig.backend.destroy('trap');
    });

    test('clone from a checkpoint: new identity, same content, source untouched', async () => {
      await rig.backend.create({ name: 'src', image: 'debian/12', cpu: '1', memoryMiB: 512 });
      await rig.backend.writeFile('src', '/root/data', Buffer.from('v1'));
      await rig.backend.createCheckpoint('src', 'base');
      await rig.backend.writeFile('src', '/root/data', Buffer.from('v2'));
      const progress: ProgressReport[] = [];
      const count = (m: string) => rig.sim.callCount(m);
      const before = {
        zfsDelete: count('zfs.dataset.delete'),
        zfsClone: count('zfs.snapshot.clone'),
        rename: count('pool.dataset.rename'),
        poolClone: count('pool.snapshot.clone'),
        poolDelete: count('pool.dataset.delete'),
      };
      const clone = await rig.backend.clone({ sandbox: 'src', checkpoint: 'base' }, 'copy', {
        onProgress: (p) => progress.push(p),
      });
      // The route of truenas-clone-route.md for this version, and no other.
      if (version === '25.04') {
        assert.equal(count('zfs.dataset.delete') - before.zfsDelete, 1);
        assert.equal(count('zfs.snapshot.clone') - before.zfsClone, 1);
        assert.equal(count('pool.dataset.rename') + count('pool.snapshot.clone'), 0);
      } else {
        assert.equal(count('pool.dataset.rename') - before.rename, 1);
        assert.equal(count('pool.snapshot.clone') - before.poolClone, 1);
        assert.equal(count('pool.dataset.delete') - before.poolDelete, 1);
        assert.equal(
          count('zfs.dataset.delete') + count('zfs.snapshot.clone'),
          0,
          'public methods only on 25.10',
        );
      }
      assert.equal(clone.name, 'copy');
      assert.equal(clone.status, 'running');
      assert.equal(clone.memoryMiB, 512);
      const ds = containerDs(rig.sim, 'copy');
      assert.equal((await rig.sim.engine.readFile(ds, 'rootfs/root/data'))?.toString(), 'v1');
      // The clone's identity is not written through the NAS (it runs the source's software): that is done over
      // SSH by the editor, and the file API refuses it.
      assert.equal((await rig.sim.engine.readFile(ds, 'rootfs/etc/hostname'))?.toString(), 'px-src\n');
      await assert.rejects(rig.backend.writeFile('copy', '/etc/hostname', Buffer.from('x')), SecurityError);
      const datasets = await rig.sim.engine.listDatasets();
      assert.equal(datasets.find((d) => d.name === ds)?.origin, `${containerDs(rig.sim, 'src')}@base`);
      assert.ok(!datasets.some((d) => d.name.includes('px-trash')), 'no trash dataset left');
      assert.equal(
        (await rig.sim.engine.readFile(containerDs(rig.sim, 'src'), 'rootfs/root/data'))?.toString(),
        'v2',
      );
      assert.deepEqual(
        (await rig.backend.listCheckpoints('copy')).map((c) => c.label),
        [],
      );

      // The checkpoint the clone depends on cannot be deleted; the message says why.
      await assert.rejects(rig.backend.deleteCheckpoint('src', 'base'), (e: Error) => {
        assert.ok(e instanceof ValidationError);
        return /cannot be deleted: sandbox "copy" was cloned from it/.test(e.message);
      });
      await assert.rejects(
        rig.backend.clone({ sandbox: 'src', checkpoint: 'base' }, 'copy'),
        AlreadyExistsError,
      );
      await assert.rejects(
        rig.backend.clone({ sandbox: 'src', checkpoint: 'missing' }, 'copy2'),
        NotFoundError,
      );
      await assert.rejects(rig.backend.clone({ sandbox: 'ghost' }, 'copy3'), NotFoundError);
      assert.equal((await rig.sim.engine.listInstances()).filter((i) => /copy[23]/.test(i.name)).length, 0);
      await rig.backend.destroy('copy');
      await rig.backend.deleteCheckpoint('src', 'base');
      await rig.backend.destroy('src');
    });

    test('clone from the current state leaves no temporary checkpoint', async () => {
      await rig.backend.create({ name: 'live', image: 'debian/12' });
      await rig.backend.writeFile('live', '/root/state', Buffer.from('now'));
      const before = (await rig.backend.listCheckpoints('live')).length;
      await rig.backend.clone({ sandbox: 'live' }, 'twin');
      assert.equal(
        (await rig.sim.engine.readFile(containerDs(rig.sim, 'twin'), 'rootfs/root/state'))?.toString(),
        'now',
      );
      assert.equal(
        (await rig.backend.listCheckpoints('live')).length,
        before,
        'no temporary checkpoint is listed',
      );
      assert.deepEqual(
        (await rig.backend.listCheckpoints('twin')).map((c) => c.label),
        [],
      );
      await rig.backend.destroy('twin');
      const left = (await rig.sim.engine.listSnapshots()).filter(
        (s) => s.dataset === containerDs(rig.sim, 'live'),
      );
      assert.deepEqual(
        left.map((s) => s.id),
        [],
        'the temporary snapshot is gone once the clone is gone',
      );
      await rig.backend.destroy('live');
    });

    test('destroying a sandbox that a clone depends on keeps the clone working; nothing is left at the end', async () => {
      await rig.backend.create({ name: 'parent', image: 'debian/12' });
      await rig.backend.writeFile('parent', '/root/p', Buffer.from('parent-data'));
      await rig.backend.createCheckpoint('parent', 'base');
      await rig.backend.clone({ sandbox: 'parent', checkpoint: 'base' }, 'child');
      await rig.backend.destroy('parent');
      await assert.rejects(rig.backend.get('parent'), NotFoundError);
      const child = await rig.backend.get('child');
      assert.equal(child.status, 'running');
      assert.equal(
        (await rig.sim.engine.readFile(containerDs(rig.sim, 'child'), 'rootfs/root/p'))?.toString(),
        'parent-data',
      );
      await rig.backend.destroy('child');
      const st = await stateOf(rig.sim);
      assert.ok(!st.datasets.some((d) => /px-(parent|child)/.test(d)), st.datasets.join(', '));
      assert.ok(!st.snapshots.some((s) => /px-(parent|child)/.test(s)), st.snapshots.join(', '));
      const deleted = (await rig.sim.engine.listDatasets()).filter((d) =>
        d.name.includes('/.ix-virt/deleted/containers/'),
      );
      assert.deepEqual(
        deleted.map((d) => d.name),
        [],
        'the kept source dataset went with its last clone',
      );
    });

    test('restore past a clone is refused before anything is stopped, naming the sandboxes in the way', async () => {
      await rig.backend.create({ name: 'rs', image: 'debian/12' });
      await rig.backend.createCheckpoint('rs', 'old');
      await rig.backend.writeFile('rs', '/root/v', Buffer.from('newer'));
      await rig.backend.createCheckpoint('rs', 'newer');
      await rig.backend.clone({ sandbox: 'rs', checkpoint: 'newer' }, 'rs-cp');
      await rig.backend.clone({ sandbox: 'rs' }, 'rs-live'); // from the current state (a hidden snapshot)
      const count = (m: string) => rig.sim.callCount(m);
      const ns = version === '25.04' ? 'zfs.snapshot' : 'pool.snapshot';
      const before = { stop: count('virt.instance.stop'), rollback: count(`${ns}.rollback`) };

      await assert.rejects(rig.backend.restoreCheckpoint('rs', 'old'), (e: Error) => {
        assert.ok(e instanceof DependentClonesError, String(e));
        assert.deepEqual([...e.dependents].sort(), ['rs-cp', 'rs-live']);
        assert.deepEqual(e.otherDatasets, []);
        const names = e.dependents.map((d) => `"${d}"`).join(', ');
        assert.equal(
          e.message,
          `Cannot restore "rs" to "old": sandboxes ${names} were cloned from a later state of "rs", and rolling ` +
            'back would destroy them. Nothing was changed. Destroy them first, or clone "old" into a new sandbox instead.',
        );
        return true;
      });
      // Only the clone of the current state is newer than "newer".
      await assert.rejects(rig.backend.restoreCheckpoint('rs', 'newer'), (e: Error) => {
        assert.ok(e instanceof DependentClonesError, String(e));
        assert.deepEqual(e.dependents, ['rs-live']);
        assert.match(e.message, /sandbox "rs-live" was cloned from a later state of "rs".*Destroy it first/);
        return true;
      });
      assert.equal(count('virt.instance.stop'), before.stop, 'nothing was stopped');
      assert.equal(count(`${ns}.rollback`), before.rollback, 'no rollback was tried');
      assert.equal((await rig.backend.get('rs')).status, 'running');
      assert.deepEqual(
        (await rig.backend.listCheckpoints('rs')).map((c) => c.label),
        ['newer', 'old'],
      );

      // What the message offers: with the clones gone, the restore goes through.
      await rig.backend.destroy('rs-live');
      await rig.backend.restoreCheckpoint('rs', 'newer');
      await rig.backend.destroy('rs-cp');
      await rig.backend.restoreCheckpoint('rs', 'old');
      assert.deepEqual(
        (await rig.backend.listCheckpoints('rs')).map((c) => c.label),
        ['old'],
      );
      assert.equal(await rig.sim.engine.readFile(containerDs(rig.sim, 'rs'), 'rootfs/root/v'), undefined);
      await rig.backend.destroy('rs');
    });

    test('destroy removes the sandbox, its dataset and its checkpoints', async () => {
      await rig.backend.create({ name: 'doomed', image: 'debian/12' });
      await rig.backend.createCheckpoint('doomed', 'a');
      await rig.backend.createCheckpoint('doomed', 'b');
      await rig.backend.destroy('doomed');
      const st = await stateOf(rig.sim);
      assert.ok(!st.instances.some((i) => i.startsWith('px-doomed')));
      assert.ok(!st.datasets.some((d) => d.endsWith('px-doomed')));
      assert.ok(!st.snapshots.some((s) => s.includes('px-doomed@')));
      await assert.rejects(rig.backend.get('doomed'), NotFoundError);
    });

    test('error paths: unknown sandbox, duplicate name, bad names, memory too small', async () => {
      await assert.rejects(
        rig.backend.get('nope'),
        (e: Error) => e instanceof NotFoundError && /"nope" does not exist/.test(e.message),
      );
      await assert.rejects(rig.backend.start('nope'), NotFoundError);
      await assert.rejects(rig.backend.stop('nope'), NotFoundError);
      await assert.rejects(rig.backend.destroy('nope'), NotFoundError);
      await assert.rejects(rig.backend.listCheckpoints('nope'), NotFoundError);
      await assert.rejects(rig.backend.createCheckpoint('nope'), NotFoundError);

      await rig.backend.create({ name: 'dup', image: 'debian/12', start: false });
      const creates = rig.sim.callCount('virt.instance.create');
      await assert.rejects(rig.backend.create({ name: 'dup', image: 'debian/12' }), (e: Error) => {
        assert.ok(e instanceof AlreadyExistsError, String(e));
        return /already exists/.test(e.message);
      });
      assert.equal(
        rig.sim.callCount('virt.instance.create'),
        creates + 1,
        'the server decided the duplicate',
      );
      await rig.backend.destroy('dup');

      const calls = rig.sim.callCount();
      await assert.rejects(
        rig.backend.create({ name: '1bad', image: 'debian/12' }),
        /cannot start with a digit/,
      );
      await assert.rejects(
        rig.backend.create({ name: 'ok', image: 'debian/12', memoryMiB: 16 }),
        (e: Error) => {
          assert.ok(e instanceof ValidationError);
          assert.deepEqual(e.problems, [{ field: 'memory', message: 'Memory must be at least 128 MiB.' }]);
          return true;
        },
      );
      await assert.rejects(rig.backend.create({ name: 'ok', image: '' }), /image is required/);
      assert.equal(rig.sim.callCount(), calls, 'bad input never reaches the server');
    });

    test('the server validation list is shown per field (client level)', async () => {
      const client = clientFor(rig.sim);
      try {
        await assert.rejects(
          client.callJob(
            'virt.instance.create',
            [{ name: 'px-val', image: 'debian/12', memory: 1024, foo: 1 }],
            {
              context: 'Creating sandbox "val"',
            },
          ),
          (e: Error) => {
            assert.ok(e instanceof ValidationError, String(e));
            const fields = e.problems.map((p) => p.field).sort();
            assert.deepEqual(fields, ['foo', 'memory']);
            assert.match(e.message, /memory: Value must be 32MiB or larger/);
            assert.match(e.message, /foo: Extra inputs are not permitted/);
            return true;
          },
        );
        await assert.rejects(
          client.callJob('virt.instance.stop', ['px-val', {}], { context: 'Stopping' }),
          /Timeout should be set if force is disabled|does not exist|not found/i,
        );
        assert.equal((await rig.sim.engine.listInstances()).filter((i) => i.name === 'px-val').length, 0);
      } finally {
        client.dispose();
      }
    });

    test('events: onDidChange forwards instance and checkpoint changes, also after a reconnect', async () => {
      const seen: string[] = [];
      const sub = rig.backend.onDidChange((c) => seen.push(`${c.kind}:${c.name ?? ''}`));
      try {
        await waitFor(() => rig.sim.callCount('core.subscribe') >= 3, 2000, 'the event subscriptions');
        await rig.backend.create({ name: 'evt', image: 'debian/12' });
        await rig.backend.createCheckpoint('evt', 'x');
        await waitFor(() => seen.includes('checkpoint:evt'), 2000, 'a checkpoint event');
        assert.ok(seen.includes('sandbox:evt'), `events seen: ${seen.join(', ')}`);

        // The socket drops; the client reconnects, subscribes again and events keep coming.
        rig.sim.faults.dropSocketMidJob('virt.instance.stop');
        await rig.backend.stop('evt');
        assert.ok(seen.includes('connection:'), 'the connection change was reported');
        seen.length = 0;
        await rig.backend.start('evt');
        await waitFor(() => seen.includes('sandbox:evt'), 2000, 'an instance event after the reconnect');
        await rig.backend.destroy('evt');
      } finally {
        sub.dispose();
      }
    });
  });
}
