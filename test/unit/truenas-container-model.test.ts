// TrueNAS 26: the pure mappings from the middleware's container shapes to our model (truenas-26.md).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../../src/core/errors';
import {
  addressFromListing,
  bootHookScript,
  checkpointsOf,
  containerDataset,
  containerToSandbox,
  cpusetFor,
  isOurs,
  isProtectedPathRefusal,
  machineIdText,
  mapContainerStatus,
  poolOfDataset,
  resolveImage,
  rootfsPath,
  stopOptions,
  type ContainerEntry,
  type ResourceSnapshot,
} from '../../src/backends/truenas/container-model';
import { shellSafe } from '../../src/backends/truenas/container-snapshots';

/** A ContainerEntry as §1.2 of truenas-26.md gives it (BETA.3). */
function entry(over: Partial<ContainerEntry> = {}): ContainerEntry {
  return {
    id: 3,
    uuid: '6f1c0a52-4a8e-4d63-9d7a-2b1c3d4e5f60',
    name: 'px-box',
    description: 'debian:bookworm:amd64:default@20260801_05:24',
    devices: [],
    cpuset: null,
    autostart: true,
    dataset: 'tank/.truenas_containers/containers/px-box',
    default_network: 'truenasbr0',
    status: { state: 'RUNNING', pid: 12345, domain_state: 'RUNNING' },
    ...over,
  };
}

test('container status: RUNNING / STOPPED / SUSPENDED (RC.1) and anything else', () => {
  assert.equal(mapContainerStatus({ state: 'RUNNING', pid: 1, domain_state: 'RUNNING' }), 'running');
  assert.equal(mapContainerStatus({ state: 'STOPPED', pid: null, domain_state: 'SHUTOFF' }), 'stopped');
  assert.equal(mapContainerStatus({ state: 'STOPPED', pid: null, domain_state: null }), 'stopped');
  assert.equal(mapContainerStatus({ state: 'SUSPENDED', pid: 1, domain_state: 'PAUSED' }), 'frozen');
  assert.equal(mapContainerStatus({ state: 'weird' }), 'unknown');
  assert.equal(mapContainerStatus(undefined), 'unknown');
});

test('ContainerEntry → Sandbox: short name, image, CPU set, address only while running', () => {
  const s = containerToSandbox(entry({ cpuset: '0-1' }), {
    address: { ipv4: '172.200.0.7' },
    checkpoints: [],
  });
  assert.equal(s.name, 'box');
  assert.equal(s.instanceName, 'px-box');
  assert.equal(s.status, 'running');
  assert.equal(s.ipv4, '172.200.0.7');
  assert.equal(s.image, 'debian:bookworm:amd64:default@20260801_05:24');
  assert.equal(s.cpu, '0-1');
  assert.deepEqual(s.checkpoints, []);
  assert.equal(s.checkpointsUnavailable, undefined);
  const stopped = containerToSandbox(
    entry({ status: { state: 'STOPPED', pid: null, domain_state: 'SHUTOFF' } }),
    {
      address: { ipv4: '172.200.0.7' },
    },
  );
  assert.equal(stopped.ipv4, undefined, 'a stopped sandbox shows no address from its last boot');
  // A migrated 25.10 sandbox: same name, nothing recorded in the description.
  const migrated = containerToSandbox(entry({ name: 'px-old', description: '' }), {
    checkpoints: [],
    checkpointsUnavailable: 'protected',
  });
  assert.equal(migrated.name, 'old');
  assert.equal(migrated.image, undefined);
  assert.equal(migrated.checkpointsUnavailable, 'protected');
  assert.ok(isOurs({ name: 'px-old' }));
  assert.ok(!isOurs({ name: 'nextcloud' }));
});

test('dataset and rootfs paths (§3): the root comes from pool + name', () => {
  assert.equal(poolOfDataset('tank/.truenas_containers/containers/px-box'), 'tank');
  assert.equal(poolOfDataset('fast/.truenas_containers/containers/px-a'), 'fast');
  assert.equal(containerDataset('tank', 'px-box'), 'tank/.truenas_containers/containers/px-box');
  assert.equal(rootfsPath('tank', 'px-box'), '/mnt/.truenas_containers/tank/containers/px-box');
});

test('the boot hook report: addresses only, stale marker means none, link-local v6 ignored', () => {
  assert.deepEqual(addressFromListing(['172.200.0.7']), { ipv4: '172.200.0.7', ipv6: undefined });
  assert.deepEqual(addressFromListing(['fd42:4c58:43ae::5', '172.200.0.9', 'fe80::1']), {
    ipv4: '172.200.0.9',
    ipv6: 'fd42:4c58:43ae::5',
  });
  assert.equal(addressFromListing(['stale', '172.200.0.7']), undefined);
  assert.equal(addressFromListing([]), undefined);
  assert.equal(addressFromListing(['passwd', '..', '999.1.1.1', 'fe80::2']), undefined);
});

test('checkpoints from zfs.resource.snapshot rows: newest first by txg, clone temporaries hidden', () => {
  const row = (name: string, txg: number, created: number, referenced: number): ResourceSnapshot => ({
    name: `tank/.truenas_containers/containers/px-box@${name}`,
    dataset: 'tank/.truenas_containers/containers/px-box',
    snapshot_name: name,
    createtxg: txg,
    properties: {
      creation: { raw: String(created), value: created },
      referenced: { raw: String(referenced), value: referenced },
    },
  });
  const list = checkpointsOf('box', [
    row('first', 10, 1_780_000_000, 1000),
    row('px-clone-other-abc', 12, 1_780_000_100, 5),
    row('second', 11, 1_780_000_050, 2000),
  ]);
  assert.deepEqual(
    list.map((c) => [c.label, c.sizeBytes, c.createdAt.getTime()]),
    [
      ['second', 2000, 1_780_000_050_000],
      ['first', 1000, 1_780_000_000_000],
    ],
  );
  assert.ok(list.every((c) => c.sandbox === 'box'));
});

test('stop always forces after the timeout (a plain stop can leave it running, §1.4)', () => {
  assert.deepEqual(stopOptions(), { force: false, force_after_timeout: true });
  assert.deepEqual(stopOptions({ force: true }), { force: true, force_after_timeout: true });
});

test('cpu count → cpuset', () => {
  assert.equal(cpusetFor('1'), '0');
  assert.equal(cpusetFor('4'), '0-3');
  assert.equal(cpusetFor('0-3,8'), '0-3,8');
});

test('image names: exact product, version pin, os/release alias, clear refusals', () => {
  const registry = [
    { name: 'alpine:edge:amd64:default', versions: [{ version: '20260801_13:00' }] },
    {
      name: 'debian:bookworm:amd64:default',
      versions: [{ version: '20260730_05:24' }, { version: '20260801_05:24' }],
    },
    { name: 'debian:bookworm:arm64:default', versions: [{ version: '20260801_05:24' }] },
  ];
  assert.deepEqual(resolveImage('debian/bookworm', registry), {
    name: 'debian:bookworm:amd64:default',
    version: '20260801_05:24',
  });
  assert.equal(resolveImage('debian/12', registry).name, 'debian:bookworm:amd64:default');
  assert.deepEqual(resolveImage('debian:bookworm:amd64:default@20260730_05:24', registry), {
    name: 'debian:bookworm:amd64:default',
    version: '20260730_05:24',
  });
  assert.deepEqual(resolveImage('alpine:edge:amd64:default', registry).version, '20260801_13:00');
  assert.throws(
    () => resolveImage('ubuntu/noble', registry),
    (e: Error) => e instanceof ValidationError && /not in the server's image registry/.test(e.message),
  );
  assert.throws(
    () => resolveImage('debian:bookworm:amd64:default@1999', registry),
    (e: Error) => e instanceof ValidationError && /has no version "1999"/.test(e.message),
  );
});

test('the RC.1 guard is recognised anywhere in an error chain', () => {
  const inner = new Error("'tank/.truenas_containers/containers/px-a@x' is a protected path.");
  assert.ok(isProtectedPathRefusal(new Error('Creating checkpoint failed', { cause: inner })));
  assert.ok(!isProtectedPathRefusal(new Error('not found')));
  assert.ok(!isProtectedPathRefusal('is a protected path'));
});

test('boot hook: reports into the address directory, brings up sshd, returns at once', () => {
  const script = bootHookScript();
  assert.ok(script.startsWith('#!/bin/sh\n'));
  assert.match(script, /\/var\/lib\/pixels\/address/);
  assert.match(script, /sshd/);
  assert.match(script, /&\nexit 0\n$/);
});

test('machine-id: 32 hex digits and a newline', () => {
  assert.match(machineIdText(Buffer.alloc(16, 0xab)), /^[0-9a-f]{32}\n$/);
  assert.throws(() => machineIdText(Buffer.alloc(4)), RangeError);
});

test('host-job commands take only names ZFS and our validators allow', () => {
  assert.equal(
    shellSafe('tank/.truenas_containers/containers/px-a@px-20260801-120000'),
    'tank/.truenas_containers/containers/px-a@px-20260801-120000',
  );
  for (const bad of ['tank/x; rm -rf /', 'tank/$(id)', 'tank/a b', '-rf', 'tank/`x`', "tank/'a'"])
    assert.throws(() => shellSafe(bad), /Refusing to pass/);
});
