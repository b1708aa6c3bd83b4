// Every fault switch of the simulator: the client recovers, and the server state shows nothing lost,
// duplicated or half-made.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError, ServerError, TimeoutError } from '../../src/core/errors';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import type { Backend } from '../../src/core/backend';
import { API_KEY, clientFor, type Rig, startRig, stateOf, VERSIONS, waitFor } from './truenas-fixtures';

for (const version of VERSIONS) {
  describe(`TrueNAS ${version} faults`, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(version, {}, { jobDurationMs: 150 });
      await rig.backend.create({ name: 'keep', image: 'debian/12' });
      await rig.backend.createCheckpoint('keep', 'k1');
    });
    afterEach(() => rig.sim.faults.reset());
    after(async () => {
      await rig?.close();
    });

    async function assertBaseline(extra: string[] = []): Promise<void> {
      const st = await stateOf(rig.sim);
      const expected = ['px-keep:RUNNING', ...extra].sort();
      assert.deepEqual(st.instances, expected);
      assert.ok(
        st.snapshots.some((s) => s.endsWith('px-keep@k1')),
        'checkpoint k1 survived',
      );
      assert.ok(!st.datasets.some((d) => d.includes('px-trash')), 'no trash dataset');
    }

    test('one connection is reused by many concurrent calls', async () => {
      await Promise.all(Array.from({ length: 15 }, () => rig.backend.list()));
      await Promise.all([rig.backend.get('keep'), rig.backend.listCheckpoints('keep'), rig.backend.info()]);
      assert.equal(rig.sim.connections(), 1);
    });

    test('socket dropped mid-job: the job is re-attached after reconnect, created exactly once', async () => {
      const logins = rig.sim.callCount('auth.login_ex');
      const creates = rig.sim.callCount('virt.instance.create');
      rig.sim.faults.dropSocketMidJob('virt.instance.create');
      const box = await rig.backend.create({ name: 'drop1', image: 'debian/12' });
      assert.equal(box.status, 'running');
      assert.equal(
        rig.sim.callCount('auth.login_ex'),
        logins + 1,
        'the socket really dropped and the client logged in again',
      );
      assert.equal(rig.sim.callCount('virt.instance.create'), creates + 1, 'the job was not sent twice');
      assert.ok(rig.sim.callCount('core.get_jobs') > 0, 'the job was polled after the reconnect');
      await assertBaseline(['px-drop1:RUNNING']);
      assert.equal(rig.sim.connections(), 1);
      await rig.backend.destroy('drop1');
      await assertBaseline();
    });

    test('socket dropped before the job id arrived: the client finds its job instead of sending it again', async () => {
      // An older job with the very same arguments (from another session) must not be mistaken for the one
      // whose reply was lost.
      const other = clientFor(rig.sim);
      try {
        const args = [
          {
            name: 'px-lost',
            source_type: 'IMAGE',
            image: 'debian/12',
            instance_type: 'CONTAINER',
            autostart: true,
          },
        ];
        await other.callJob('virt.instance.create', args, { context: 'Creating' });
        await other.callJob('virt.instance.delete', ['px-lost'], { context: 'Deleting' });
      } finally {
        other.dispose();
      }
      const lines: string[] = [];
      const note = (m: string) => lines.push(m);
      const backend = createTrueNASBackend(rig.config, API_KEY, {
        trace: () => {},
        debug: note,
        info: note,
        warn: note,
        error: note,
      });
      try {
        await backend.list();
        await backend.networkPlan?.(); // create reads the NAS's network first; the delay below is for create itself
        const logins = rig.sim.callCount('auth.login_ex');
        const creates = rig.sim.callCount('virt.instance.create');
        rig.sim.faults.delayReplies(300); // the job id reply is still pending when the socket drops (at 50 ms)
        rig.sim.faults.dropSocketMidJob('virt.instance.create');
        const created = backend.create({ name: 'lost', image: 'debian/12' });
        setTimeout(() => rig.sim.faults.delayReplies(0), 150);
        const box = await created;
        assert.equal(box.status, 'running');
        assert.ok(rig.sim.callCount('auth.login_ex') > logins);
        assert.equal(rig.sim.callCount('virt.instance.create'), creates + 1, 'never re-sent blindly');
        const checker = clientFor(rig.sim);
        const jobs = await checker.call<{ id: number }[]>('core.get_jobs', [
          [['method', '=', 'virt.instance.create']],
        ]);
        checker.dispose();
        const newest = Math.max(...jobs.map((j) => j.id));
        assert.ok(
          lines.some((l) => l.includes(`re-attached to job ${newest} `)),
          `re-attached to the new job ${newest}: ${lines.filter((l) => /re-attached/.test(l)).join(' | ')}`,
        );
        await assertBaseline(['px-lost:RUNNING']);
        await backend.destroy('lost');
        await assertBaseline();
      } finally {
        backend.dispose();
      }
    });

    test('socket dropped mid-job for start/stop: the outcome is awaited, not repeated', async () => {
      await rig.backend.create({ name: 'drop2', image: 'debian/12', start: false });
      rig.sim.faults.dropSocketMidJob('virt.instance.start');
      await rig.backend.start('drop2');
      assert.equal((await rig.backend.get('drop2')).status, 'running');
      rig.sim.faults.dropSocketMidJob('virt.instance.delete');
      await rig.backend.destroy('drop2');
      await assertBaseline();
    });

    test('delayed replies with a short call timeout: a clear timeout, then normal service', async () => {
      const client = clientFor(rig.sim, API_KEY, { callTimeoutMs: 150 });
      try {
        await client.call('virt.instance.query', []);
        rig.sim.faults.delayReplies(400);
        await assert.rejects(client.call('virt.instance.query', [[['name', '^', 'px-']]]), (e: Error) => {
          assert.ok(e instanceof TimeoutError, String(e));
          return /did not answer virt\.instance\.query within 0\.2 s/.test(e.message);
        });
        await assert.rejects(
          client.call('zfs.snapshot.create', [{ dataset: 'x', name: 'y' }], {
            context: 'Creating a checkpoint',
          }),
          (e: Error) =>
            e instanceof TimeoutError && /outcome of creating a checkpoint is unknown/.test(e.message),
        );
        rig.sim.faults.delayReplies(0);
        await new Promise((r) => setTimeout(r, 500));
        const rows = await client.call<unknown[]>('virt.instance.query', [[['name', '^', 'px-']]]);
        assert.equal(rows.length, 1);

        // A job whose id reply times out is found among the server's jobs and awaited, not sent again.
        const stops = rig.sim.callCount('virt.instance.stop');
        rig.sim.faults.delayReplies(300);
        setTimeout(() => rig.sim.faults.delayReplies(0), 100);
        await client.callJob('virt.instance.stop', ['px-keep', { timeout: 5, force: true }], {
          context: 'Stopping',
        });
        assert.equal(rig.sim.callCount('virt.instance.stop'), stops + 1);
        assert.equal((await rig.backend.get('keep')).status, 'stopped');
        await rig.backend.start('keep');
      } finally {
        client.dispose();
      }
      await assertBaseline();
    });

    test('a failed job is reported with its reason and leaves nothing half-made', async () => {
      rig.sim.faults.failNextJob('Incus daemon exploded');
      await assert.rejects(rig.backend.create({ name: 'failing', image: 'debian/12' }), (e: Error) => {
        assert.ok(e instanceof ServerError, String(e));
        assert.match(e.message, /Creating sandbox "failing" failed: .*Incus daemon exploded/);
        return true;
      });
      await assertBaseline();
      rig.sim.faults.failNextJob();
      await assert.rejects(
        rig.backend.clone({ sandbox: 'keep', checkpoint: 'k1' }, 'failclone'),
        ServerError,
      );
      await assertBaseline();
      const snaps = (await stateOf(rig.sim)).snapshots;
      assert.deepEqual(
        snaps.filter((s) => s.includes('px-keep@')),
        [snaps.find((s) => s.endsWith('@k1'))],
      );
    });

    test('expired session: the client logs in again transparently', async () => {
      const logins = rig.sim.callCount('auth.login_ex');
      rig.sim.faults.expireSession();
      const list = await rig.backend.list();
      assert.deepEqual(
        list.map((s) => s.name),
        ['keep'],
      );
      assert.equal(rig.sim.callCount('auth.login_ex'), logins + 1);
      rig.sim.faults.expireSession();
      await rig.backend.createCheckpoint('keep', 'after-expiry');
      await rig.backend.deleteCheckpoint('keep', 'after-expiry');
      await assertBaseline();
      assert.equal(rig.sim.connections(), 1);
    });

    test('-32000 too many calls: reads are retried, writes that never ran are retried too', async () => {
      await rig.backend.list();
      const calls = rig.sim.callCount();
      rig.sim.faults.tooManyCalls(2);
      const list = await rig.backend.list();
      assert.equal(list.length, 1);
      assert.equal(rig.sim.callCount() - calls, 4, 'two refused calls, each retried once');
      // A write refused with -32000 never ran, so it is retried too: exactly one snapshot results.
      const ns = version === '25.04' ? 'zfs.snapshot' : 'pool.snapshot';
      const client = clientFor(rig.sim);
      try {
        const creates = rig.sim.callCount(`${ns}.create`);
        await client.call('virt.instance.query', []);
        rig.sim.faults.tooManyCalls(1);
        await client.call(`${ns}.create`, [
          { dataset: `${rig.sim.engine.pool}/.ix-virt/containers/px-keep`, name: 'busy' },
        ]);
        assert.equal(rig.sim.callCount(`${ns}.create`), creates + 2);
      } finally {
        client.dispose();
      }
      const labels = (await rig.backend.listCheckpoints('keep')).map((c) => c.label);
      assert.deepEqual(
        labels.filter((l) => l === 'busy'),
        ['busy'],
        'created exactly once',
      );
      await rig.backend.deleteCheckpoint('keep', 'busy');
      await assertBaseline();
    });

    test('cancelling a create aborts the job and removes what it made', async () => {
      const ac = new AbortController();
      const pending = rig.backend.create({ name: 'cancelme', image: 'debian/12' }, { signal: ac.signal });
      setTimeout(() => ac.abort(), 40);
      await assert.rejects(pending, (e: Error) => /cancelled/i.test(e.message));
      assert.equal(rig.sim.callCount('core.job_abort'), 1, 'the server job was aborted');
      await waitFor(
        async () => !(await stateOf(rig.sim)).instances.some((i) => i.startsWith('px-cancelme')),
        5000,
        'cleanup',
      );
      await assertBaseline();
    });

    test('a server that goes away gives a clear connection error', async () => {
      const sim2 = await (await import('../sim/index')).startSimulator({ version, apiKey: API_KEY });
      const port = sim2.port;
      await sim2.close();
      const backend: Backend = createTrueNASBackend(
        {
          serverId: 'gone',
          host: '127.0.0.1',
          port,
          username: 'truenas_admin',
          secure: false,
          callTimeoutMs: 1000,
        },
        API_KEY,
      );
      try {
        await assert.rejects(
          backend.list(),
          (e: Error) =>
            e instanceof ConnectionError &&
            new RegExp(
              `Cannot connect to ws://127\\.0\\.0\\.1:${port} \\(plain, no TLS\\): connection refused`,
            ).test(e.message),
        );
      } finally {
        backend.dispose();
      }
    });
  });
}
