import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledError, ServerError, ValidationError } from '../../src/core/errors';
import { JobTracker } from '../../src/backends/truenas/jobs';
import type { ProgressReport } from '../../src/core/sandbox';
import { chunks, guestPathProblem } from '../../src/backends/truenas/file-receive';
import { mapStatus, toSandbox } from '../../src/backends/truenas/virt-backend';
import {
  creationDate,
  isDeferredDestroy,
  snapshotClones,
  sortNewestFirst,
  toCheckpoint,
} from '../../src/backends/truenas/snapshots';

test('job: WAITING → RUNNING → progress → SUCCESS resolves with the result and reports progress once per change', async () => {
  const t = new JobTracker();
  const seen: ProgressReport[] = [];
  const done = t.wait(5, 'Creating "a"', (p) => seen.push(p));
  t.update({ id: 5, state: 'WAITING', progress: { percent: 0, description: '' } });
  t.update({ id: 5, state: 'RUNNING', progress: { percent: 40, description: 'rootfs: 40%' } });
  t.update({ id: 5, state: 'RUNNING', progress: { percent: 40, description: 'rootfs: 40%' } });
  t.update({ id: 5, state: 'SUCCESS', progress: { percent: 100, description: '' }, result: { ok: 1 } });
  t.update({ id: 5, state: 'SUCCESS', progress: { percent: 100, description: '' }, result: { ok: 1 } }); // sent twice by the server
  assert.deepEqual(await done, { ok: 1 });
  assert.deepEqual(seen, [
    { percent: 0, description: undefined },
    { percent: 40, description: 'rootfs: 40%' },
    { percent: 100, description: undefined },
  ]);
  assert.deepEqual(t.pendingIds(), []);
});

test('job: an end that arrives before anyone waits is kept (fast jobs)', async () => {
  const t = new JobTracker();
  t.update({ id: 9, state: 'SUCCESS', result: true });
  assert.equal(await t.wait(9, 'x'), true);
});

test('job: FAILED with a validation list rejects with a ValidationError', async () => {
  const t = new JobTracker();
  const done = t.wait(2, 'Stopping sandbox "a"');
  t.update({
    id: 2,
    state: 'FAILED',
    error: '[EINVAL] : Value error, Timeout should be set if force is disabled',
    exc_info: {
      type: 'VALIDATION',
      errno: 22,
      extra: [['', 'Value error, Timeout should be set if force is disabled', 22]],
    },
  });
  await assert.rejects(done, (e: Error) => {
    assert.ok(e instanceof ValidationError);
    assert.deepEqual(e.problems, [{ field: '', message: 'Timeout should be set if force is disabled' }]);
    return true;
  });
});

test('job: ABORTED is a CancelledError when we aborted it, a ServerError otherwise', async () => {
  const t = new JobTracker();
  const mine = t.wait(3, 'Creating "a"');
  t.markAborted(3);
  t.update({ id: 3, state: 'ABORTED', error: null });
  await assert.rejects(mine, CancelledError);
  const theirs = t.wait(4, 'Creating "b"');
  t.update({ id: 4, state: 'ABORTED', error: null });
  await assert.rejects(
    theirs,
    (e: Error) => e instanceof ServerError && /aborted on the server/.test(e.message),
  );
});

test('status, addresses and memory mapping', () => {
  assert.equal(mapStatus('RUNNING'), 'running');
  assert.equal(mapStatus('STOPPED'), 'stopped');
  assert.equal(mapStatus('FREEZING'), 'frozen');
  assert.equal(mapStatus('THAWED'), 'unknown');
  const s = toSandbox({
    name: 'px-web',
    status: 'RUNNING',
    cpu: '2',
    memory: 2147483648,
    aliases: [
      { type: 'INET6', address: 'fd42::5', netmask: 64 },
      { type: 'INET', address: '10.0.0.5', netmask: 24 },
    ],
    image: { description: 'Debian bookworm amd64', os: 'Debian', release: 'bookworm' },
  });
  assert.deepEqual(
    {
      name: s.name,
      instanceName: s.instanceName,
      status: s.status,
      ipv4: s.ipv4,
      ipv6: s.ipv6,
      memoryMiB: s.memoryMiB,
      image: s.image,
    },
    {
      name: 'web',
      instanceName: 'px-web',
      status: 'running',
      ipv4: '10.0.0.5',
      ipv6: 'fd42::5',
      memoryMiB: 2048,
      image: 'Debian bookworm amd64',
    },
  );
});

test('snapshot entries → checkpoints with the real creation time and referenced size, newest first', () => {
  const entry = (name: string, seconds: number, referenced: number, extra: Record<string, unknown> = {}) => ({
    id: `tank/.ix-virt/containers/px-a@${name}`,
    dataset: 'tank/.ix-virt/containers/px-a',
    snapshot_name: name,
    properties: {
      referenced: { value: '1M', rawvalue: String(referenced), parsed: referenced },
      creation: { value: 'x', rawvalue: String(seconds), parsed: { $date: seconds * 1000 } },
      createtxg: { value: '99', rawvalue: '99', parsed: '99' },
      ...extra,
    },
  });
  const older = toCheckpoint('a', entry('one', 1736157600, 100));
  const newer = toCheckpoint('a', entry('two', 1736161200, 200));
  assert.equal(older.createdAt.toISOString(), '2025-01-06T10:00:00.000Z');
  assert.equal(older.sizeBytes, 100);
  assert.deepEqual(
    sortNewestFirst([older, newer]).map((c) => c.label),
    ['two', 'one'],
  );
  assert.equal(
    creationDate({ id: 'x', dataset: 'x', properties: { creation: { rawvalue: '10' } } })!.getTime(),
    10_000,
  );
  const cloned = entry('three', 1, 1, {
    clones: {
      value: 'tank/.ix-virt/containers/px-b',
      rawvalue: 'tank/.ix-virt/containers/px-b',
      parsed: 'tank/.ix-virt/containers/px-b',
    },
    defer_destroy: { value: 'on', rawvalue: 'on', parsed: 'on' },
  });
  assert.deepEqual(snapshotClones(cloned), ['tank/.ix-virt/containers/px-b']);
  assert.ok(isDeferredDestroy(cloned));
  assert.deepEqual(
    snapshotClones(entry('four', 1, 1, { clones: { value: '', rawvalue: '', parsed: '' } })),
    [],
  );
});

test('file chunks keep every file_receive message under 2 MiB; guest paths are checked', () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 5, 1);
  const parts = chunks(big);
  assert.equal(parts.length, 4);
  assert.equal(Buffer.concat(parts).length, big.length);
  for (const p of parts) assert.ok(p.toString('base64').length + 1024 < 2 * 1024 * 1024);
  assert.deepEqual(
    chunks(Buffer.alloc(0)).map((c) => c.length),
    [0],
  );
  assert.equal(guestPathProblem('/etc/hostname'), undefined);
  assert.match(guestPathProblem('etc/hostname')!, /absolute/);
  assert.match(guestPathProblem('/etc/../root/x')!, /\.\./);
  assert.match(guestPathProblem('/etc/')!, /directory/);
});

test('job: after a middlewared restart another job under our id is never taken for ours', async () => {
  const t = new JobTracker();
  const identity = { method: 'virt.instance.create', arguments: [{ name: 'px-a' }] };
  // An end remembered from before the restart, for a job that now has the same id as ours.
  t.update({ id: 3, state: 'SUCCESS', method: 'virt.instance.create', arguments: [{ name: 'px-old' }] });
  const done = t.wait(3, 'Creating "a"', undefined, identity);
  assert.deepEqual(t.pendingIds(), [3], 'the remembered end of the other job was not taken');
  t.update({ id: 3, state: 'RUNNING', method: 'virt.instance.delete', arguments: ['px-b'] });
  await assert.rejects(done, (err: Error) => /another job now .*the outcome is unknown/.test(err.message));
  // Records without method and arguments (partial events) cannot tell, and are taken.
  const next = t.wait(4, 'Creating "c"', undefined, identity);
  t.update({ id: 4, state: 'SUCCESS', result: 1 });
  assert.equal(await next, 1);
});
