import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BridgeConfigError,
  NoFreeAddressError,
  freeAddressRanges,
  pickFreeAddress,
  type BridgeIpv4,
} from '../../src/backends/incus/address-pick';
import {
  conflictingAddress,
  pinnedAddress,
  primaryNic,
  withoutNicIdentity,
} from '../../src/backends/incus/nic-address';
import { toSandbox } from '../../src/backends/incus/mapping';
import { rangeText } from '../../src/core/ip';
import { AlreadyExistsError, ServerError } from '../../src/core/errors';

const lab: BridgeIpv4 = { name: 'pxlabbr0', address: '10.77.0.1/24' };
const tiers = (bridge: BridgeIpv4, taken: string[] = []) =>
  freeAddressRanges(bridge, taken).map((tier) => tier.map(rangeText));

/** Every address pickFreeAddress can return, found by sweeping its random source over [0, 1). */
function reachable(bridge: BridgeIpv4, taken: string[], steps = 4096): Set<string> {
  const seen = new Set<string>();
  for (let i = 0; i < steps; i++) seen.add(pickFreeAddress(bridge, taken, () => i / steps));
  return seen;
}

test('a /24 offers every host address but the network, broadcast and gateway ones', () => {
  assert.deepEqual(tiers(lab), [['10.77.0.2-10.77.0.254']]);
  // The gateway need not be the first address.
  assert.deepEqual(tiers({ name: 'b', address: '192.168.5.100/24' }), [
    ['192.168.5.1-192.168.5.99', '192.168.5.101-192.168.5.254'],
  ]);
  const all = reachable(lab, []);
  assert.equal(all.size, 253);
  for (const a of ['10.77.0.0', '10.77.0.1', '10.77.0.255']) assert.equal(all.has(a), false, a);
  assert.equal(
    pickFreeAddress(lab, [], () => 0),
    '10.77.0.2',
  );
  assert.equal(
    pickFreeAddress(lab, [], () => 0.999999),
    '10.77.0.254',
  );
});

test('taken addresses are left out; what is not an IPv4 address of the subnet is ignored', () => {
  const taken = ['10.77.0.2', '10.77.0.3', '10.77.0.200', 'fd42::5', '', '10.99.0.7', 'junk'];
  assert.deepEqual(tiers(lab, taken), [['10.77.0.4-10.77.0.199', '10.77.0.201-10.77.0.254']]);
  const all = reachable(lab, taken);
  assert.equal(all.size, 250);
  for (const a of ['10.77.0.2', '10.77.0.3', '10.77.0.200']) assert.equal(all.has(a), false, a);
});

test('with DHCP ranges set, addresses outside them come first, then those inside', () => {
  const bridge = { ...lab, dhcpRanges: '10.77.0.2-10.77.0.99, 10.77.0.200-10.77.0.210' };
  assert.deepEqual(tiers(bridge, ['10.77.0.150']), [
    ['10.77.0.100-10.77.0.149', '10.77.0.151-10.77.0.199', '10.77.0.211-10.77.0.254'],
    ['10.77.0.2-10.77.0.99', '10.77.0.200-10.77.0.210'],
  ]);
  const outside = reachable(bridge, ['10.77.0.150']);
  assert.equal(outside.size, 253 - 98 - 11 - 1);
  for (const a of outside) {
    const last = Number(a.split('.')[3]);
    assert.ok(last >= 100 && last <= 254 && !(last >= 200 && last <= 210), a);
  }
  // Only the ranges are left: one of them is taken.
  const allOutside = Array.from({ length: 155 }, (_, i) => `10.77.0.${100 + i}`);
  assert.equal(
    pickFreeAddress(bridge, allOutside, () => 0),
    '10.77.0.2',
  );
});

test('the DHCP gateway and OVN ranges are not handed out', () => {
  const bridge = {
    ...lab,
    dhcpGateway: '10.77.0.254',
    dhcpRanges: '10.77.0.2-10.77.0.99',
    ovnRanges: '10.77.0.100-10.77.0.199',
  };
  assert.deepEqual(tiers(bridge), [['10.77.0.200-10.77.0.253'], ['10.77.0.2-10.77.0.99']]);
});

test('small subnets: a /30 has one address besides the gateway, a /31 two hosts (RFC 3021)', () => {
  assert.equal(
    pickFreeAddress({ name: 'n', address: '10.0.0.1/30' }, [], () => 0.7),
    '10.0.0.2',
  );
  assert.deepEqual(tiers({ name: 'n', address: '10.0.0.0/31' }), [['10.0.0.1']]);
});

test('a full subnet is a clear error naming the network', () => {
  const taken = Array.from({ length: 253 }, (_, i) => `10.77.0.${i + 2}`);
  assert.throws(
    () => pickFreeAddress(lab, taken),
    (err: unknown) =>
      err instanceof NoFreeAddressError &&
      /No free IPv4 address is left on network "pxlabbr0" \(10\.77\.0\.0\/24\)/.test(err.message),
  );
  assert.throws(
    () => pickFreeAddress({ name: 'n', address: '10.0.0.1/30' }, ['10.0.0.2']),
    NoFreeAddressError,
  );
  assert.throws(() => pickFreeAddress({ name: 'n', address: '10.0.0.1/32' }, []), NoFreeAddressError);
});

test('a bigger subnet is picked from without listing it', () => {
  const wide = { name: 'w', address: '10.0.0.1/8' };
  assert.equal(
    pickFreeAddress(wide, [], () => 0.5),
    '10.128.0.0',
  );
  assert.equal(
    pickFreeAddress(wide, [], () => 0.99999999999),
    '10.255.255.254',
  );
});

test('unreadable network config says which key', () => {
  assert.throws(
    () => pickFreeAddress({ name: 'n', address: '10.0.0.1' }, []),
    (err: unknown) =>
      err instanceof BridgeConfigError && /ipv4\.address "10\.0\.0\.1".*prefix/.test(err.message),
  );
  assert.throws(
    () => pickFreeAddress({ ...lab, dhcpRanges: '10.77.0.50-10.77.0.10' }, []),
    (err: unknown) =>
      err instanceof BridgeConfigError &&
      /ipv4\.dhcp\.ranges "10\.77\.0\.50-10\.77\.0\.10"/.test(err.message),
  );
  assert.throws(() => pickFreeAddress({ ...lab, ovnRanges: '10.77.0.5' }, []), BridgeConfigError);
});

test('the pinned NIC is the first managed-network NIC by device name', () => {
  assert.deepEqual(
    primaryNic({
      root: { type: 'disk', path: '/', pool: 'p' },
      eth1: { type: 'nic', network: 'b2' },
      eth0: { type: 'nic', network: 'b1' },
      aaa: { type: 'nic', nictype: 'macvlan', parent: 'enp1s0' },
    }),
    { device: 'eth0', network: 'b1' },
  );
  // A NIC on an unmanaged bridge: no dnsmasq of Incus' hands out addresses there.
  assert.equal(primaryNic({ eth0: { type: 'nic', nictype: 'bridged', parent: 'br0' } }), undefined);
  assert.equal(
    pinnedAddress({ eth0: { type: 'nic', network: 'b', 'ipv4.address': '10.0.0.9' } }),
    '10.0.0.9',
  );
  assert.equal(pinnedAddress({ eth0: { type: 'nic', network: 'b', 'ipv4.address': 'none' } }), undefined);
  assert.equal(pinnedAddress(undefined), undefined);
});

test("a copy's NIC devices lose the source's addresses and MAC, other devices stay", () => {
  assert.deepEqual(
    withoutNicIdentity({
      eth0: {
        type: 'nic',
        network: 'b',
        name: 'eth0',
        'ipv4.address': '10.0.0.9',
        'ipv6.address': 'fd00::9',
        hwaddr: '00:16:3e:00:00:01',
        'limits.max': '10Mbit',
      },
      root: { type: 'disk', path: '/', pool: 'p' },
    }),
    {
      eth0: { type: 'nic', network: 'b', name: 'eth0', 'limits.max': '10Mbit' },
      root: { type: 'disk', path: '/', pool: 'p' },
    },
  );
});

test("Incus' address conflict is recognised, with the address it names", () => {
  assert.equal(
    conflictingAddress(
      new ServerError(
        'Incus: Failed creating instance record: IP address "10.77.0.5" already defined on another NIC.',
      ),
    ),
    '10.77.0.5',
  );
  assert.equal(conflictingAddress(new AlreadyExistsError('Instance "px-a" already exists.')), undefined);
  assert.equal(
    conflictingAddress(new Error('IP address "10.77.0.5" already defined on another NIC')),
    undefined,
  );
});

test('a running sandbox reports its pinned address until the guest shows one, and then the guest’s', () => {
  const inst = {
    name: 'px-c',
    status: 'Running',
    config: {},
    expanded_devices: { eth0: { type: 'nic', network: 'b', 'ipv4.address': '10.77.0.40' } },
    state: { status: 'Running', network: { lo: { addresses: [] } } },
  };
  assert.equal(toSandbox(inst, false).ipv4, '10.77.0.40');
  const shown = {
    ...inst,
    state: {
      status: 'Running',
      network: { eth0: { addresses: [{ family: 'inet', address: '10.77.0.41', scope: 'global' }] } },
    },
  };
  assert.equal(toSandbox(shown, false).ipv4, '10.77.0.41');
  assert.equal(
    toSandbox({ ...inst, status: 'Stopped', state: { status: 'Stopped' } }, false).ipv4,
    undefined,
  );
});
