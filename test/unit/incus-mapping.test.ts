import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cloneConfig,
  globalAddress,
  isSandboxInstance,
  mapStatus,
  parseMemoryMiB,
  toSandbox,
  zfsRestoreRefusal,
} from '../../src/backends/incus/mapping';
import { mapIncusError } from '../../src/backends/incus/rest-client';
import { DependentClonesError, ValidationError } from '../../src/core/errors';
import type { IncusInstance } from '../../src/backends/incus/types';

test('only px- instances are sandboxes', () => {
  assert.equal(isSandboxInstance('px-a'), true);
  assert.equal(isSandboxInstance('px-'), false);
  assert.equal(isSandboxInstance('web'), false);
});

test('status mapping', () => {
  assert.equal(mapStatus('Running'), 'running');
  assert.equal(mapStatus('Stopped'), 'stopped');
  assert.equal(mapStatus('Frozen'), 'frozen');
  assert.equal(mapStatus('Error'), 'error');
  assert.equal(mapStatus('Whatever'), 'unknown');
});

test('memory limits in any Incus unit', () => {
  assert.equal(parseMemoryMiB('512MiB'), 512);
  assert.equal(parseMemoryMiB('2GiB'), 2048);
  assert.equal(parseMemoryMiB('1073741824'), 1024);
  assert.equal(parseMemoryMiB('1GB'), 954);
  assert.equal(parseMemoryMiB('50%'), undefined);
  assert.equal(parseMemoryMiB(undefined), undefined);
});

const instance: IncusInstance = {
  name: 'px-web',
  status: 'Running',
  location: 'node2',
  created_at: '2026-11-27T03:52:31.924Z',
  config: {
    'image.description': 'Debian 12',
    'user.owner': 'me',
    'volatile.eth0.hwaddr': '10:66:6a:00:00:01',
  },
  expanded_config: { 'limits.cpu': '2', 'limits.memory': '1GiB' },
  state: {
    status: 'Running',
    network: {
      lo: { addresses: [{ family: 'inet', address: '127.0.0.1', scope: 'local' }] },
      eth0: {
        addresses: [
          { family: 'inet6', address: 'fe80::1', scope: 'link' },
          { family: 'inet', address: '10.77.0.5', scope: 'global' },
          { family: 'inet6', address: 'fd42::5', scope: 'global' },
        ],
      },
    },
  },
  snapshots: [
    { name: 'old', created_at: '2026-11-27T01:00:00Z', size: 4096 },
    { name: 'new', created_at: '2026-11-27T02:00:00Z', size: -1 },
  ],
};

test('an instance becomes a sandbox with addresses, limits, labels, location and checkpoints newest first', () => {
  const s = toSandbox(instance, true);
  assert.equal(s.name, 'web');
  assert.equal(s.instanceName, 'px-web');
  assert.equal(s.status, 'running');
  assert.equal(s.ipv4, '10.77.0.5');
  assert.equal(s.ipv6, 'fd42::5');
  assert.equal(s.cpu, '2');
  assert.equal(s.memoryMiB, 1024);
  assert.equal(s.image, 'Debian 12');
  assert.equal(s.location, 'node2');
  assert.deepEqual(s.labels, { owner: 'me' });
  assert.deepEqual(
    s.checkpoints?.map((c) => [c.label, c.sizeBytes]),
    [
      ['new', undefined],
      ['old', 4096],
    ],
  );
  assert.equal(toSandbox(instance, false).location, undefined, 'no location on a standalone server');
  assert.equal(globalAddress(null, 'inet'), undefined);
});

test('clone config drops the volatile identity but keeps the base image', () => {
  assert.deepEqual(
    cloneConfig({
      'limits.cpu': '1',
      'volatile.eth0.hwaddr': 'x',
      'volatile.uuid': 'y',
      'volatile.idmap.current': '[]',
      'volatile.base_image': 'abc',
    }),
    { 'limits.cpu': '1', 'volatile.base_image': 'abc' },
  );
});

test('Incus on ZFS refusing a restore (texts of driver_zfs_volumes.go CanRestoreVolume) becomes our refusal', () => {
  const fromCopy = zfsRestoreRefusal(
    mapIncusError(
      400,
      'Snapshot "old" cannot be restored due to subsequent internal snapshot(s) (from a copy)',
    ),
    'web',
    'old',
  );
  assert.ok(fromCopy instanceof DependentClonesError);
  assert.deepEqual(fromCopy.dependents, []);
  assert.match(fromCopy.message, /^Cannot restore "web" to "old": a sandbox was copied from a later state/);
  assert.match(fromCopy.message, /Nothing was changed\. .*clone "old" into a new sandbox instead\.$/);
  const kept = zfsRestoreRefusal(
    mapIncusError(
      400,
      'Snapshot "old" cannot be restored due to subsequent snapshot(s). Set zfs.remove_snapshots to override',
    ),
    'web',
    'old',
  );
  assert.ok(kept instanceof ValidationError && !(kept instanceof DependentClonesError));
  assert.match(kept.message, /volume\.zfs\.remove_snapshots=true/);
  assert.equal(zfsRestoreRefusal(mapIncusError(500, 'disk full'), 'web', 'old'), undefined);
  assert.equal(zfsRestoreRefusal(new Error('x'), 'web', 'old'), undefined);
});
