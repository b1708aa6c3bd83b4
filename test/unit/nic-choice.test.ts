// The TrueNAS NIC choice (what pixels does, plus a LAN bridge first) and the "cannot reach" explanations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseAutomatically,
  ipv4Gateway,
  ipv4Of,
  planFromSetting,
  type InterfaceEntry,
  type NetworkFacts,
} from '../../src/backends/truenas/nic-choice';
import { explainUnreachable } from '../../src/core/network-plan';

function iface(
  name: string,
  type: string,
  opts: { up?: boolean; configured?: string; runtime?: string } = {},
): InterfaceEntry {
  const alias = (cidr: string) => {
    const [address, prefix] = cidr.split('/');
    return { type: 'INET', address, netmask: Number(prefix) };
  };
  return {
    name,
    type,
    state: {
      link_state: opts.up === false ? 'LINK_STATE_DOWN' : 'LINK_STATE_UP',
      aliases: [
        { type: 'LINK', address: '52:54:00:00:00:01' },
        ...(opts.runtime ? [alias(opts.runtime)] : []),
      ],
    },
    aliases: opts.configured ? [alias(opts.configured)] : [],
  };
}

function facts(interfaces: InterfaceEntry[], extra: Partial<NetworkFacts> = {}): NetworkFacts {
  return {
    interfaces,
    defaultRoutes: ['fe80::1', '192.168.1.1'],
    bridgeChoices: ['[AUTO]'],
    globalBridge: null,
    automatic: { name: 'incusbr0', ipv4Address: '10.200.1.1/24', ipv4Nat: true },
    ...extra,
  };
}

test('the gateway is the first IPv4 default route; only configured addresses count (as in pixels)', () => {
  assert.equal(ipv4Gateway(['fe80::1', '10.0.0.1', '10.0.0.2']), '10.0.0.1');
  assert.equal(ipv4Gateway(['fe80::1']), undefined);
  assert.deepEqual(ipv4Of(iface('a', 'PHYSICAL', { configured: '192.168.1.50/24' })), {
    address: '192.168.1.50',
    prefix: 24,
  });
  assert.equal(ipv4Of(iface('a', 'PHYSICAL', { runtime: '192.168.1.50/24' })), undefined);
  const dotted: InterfaceEntry = {
    ...iface('b', 'PHYSICAL'),
    aliases: [{ type: 'INET', address: '10.1.2.3', netmask: '255.255.0.0' }],
  };
  assert.deepEqual(ipv4Of(dotted), { address: '10.1.2.3', prefix: 16 });
  assert.equal(ipv4Of(iface('c', 'PHYSICAL')), undefined);
});

test('static address: MACVLAN on the link-up physical interface whose subnet holds the gateway', () => {
  const plan = chooseAutomatically(
    facts([
      iface('enp2s0', 'PHYSICAL', { configured: '10.9.9.2/24' }),
      iface('enp3s0', 'PHYSICAL', { up: false, configured: '192.168.1.60/24' }),
      iface('enp1s0', 'PHYSICAL', { configured: '192.168.1.50/24' }),
    ]),
  );
  assert.equal(plan.kind, 'macvlan');
  assert.deepEqual(plan.nic, { nicType: 'MACVLAN', parent: 'enp1s0' });
  assert.equal(plan.reachableFromClient, 'unknown');
  assert.equal(plan.source, 'automatic');
  assert.match(plan.summary, /MACVLAN on enp1s0/);
  assert.match(plan.explanation, /NAS itself cannot/);
});

test('no interface holds the gateway: the first candidate, as pixels does', () => {
  const plan = chooseAutomatically(
    facts([iface('enp2s0', 'PHYSICAL', { configured: '10.9.9.2/24' }), iface('enp1s0', 'PHYSICAL')]),
  );
  assert.deepEqual(plan.nic, { nicType: 'MACVLAN', parent: 'enp2s0' });
});

test('a LAN bridge among the bridge choices wins: BRIDGED on it (the NAS reaches the sandbox too)', () => {
  const plan = chooseAutomatically(
    facts(
      [
        iface('enp1s0', 'PHYSICAL'),
        iface('br9', 'BRIDGE', { configured: '172.20.0.1/24' }),
        iface('br0', 'BRIDGE', { configured: '192.168.1.50/24' }),
      ],
      { bridgeChoices: ['[AUTO]', 'br9', 'br0'] },
    ),
  );
  assert.equal(plan.kind, 'bridged');
  assert.deepEqual(plan.nic, { nicType: 'BRIDGED', parent: 'br0' });
  assert.equal(plan.reachableFromClient, true);
});

test('a bridge not offered by bridge_choices (HA) is not used', () => {
  const plan = chooseAutomatically(
    facts([iface('br0', 'BRIDGE', { configured: '192.168.1.50/24' }), iface('enp1s0', 'PHYSICAL')]),
  );
  assert.equal(plan.kind, 'automatic-nat-bridge');
});

test('the NAS already puts instances on its own bridge: no NIC device, bridged on it', () => {
  const plan = chooseAutomatically(
    facts([iface('br0', 'BRIDGE', { configured: '192.168.1.50/24' })], {
      globalBridge: 'br0',
      bridgeChoices: ['[AUTO]', 'br0'],
    }),
  );
  assert.equal(plan.kind, 'bridged');
  assert.equal(plan.nic, undefined);
  assert.equal(plan.source, 'server-default');
  assert.equal(plan.reachableFromClient, true);
});

test('stock NAS on DHCP: no configured address, so (as pixels) the automatic bridge, and the text says why', () => {
  const plan = chooseAutomatically(facts([iface('enp1s0', 'PHYSICAL', { runtime: '192.168.1.50/24' })]));
  assert.equal(plan.kind, 'automatic-nat-bridge');
  assert.equal(plan.nic, undefined);
  assert.match(plan.explanation, /DHCP/);
});

test('a LAN bridge on DHCP is still recognised by its current address', () => {
  const plan = chooseAutomatically(
    facts([iface('br0', 'BRIDGE', { runtime: '192.168.1.50/24' })], { bridgeChoices: ['[AUTO]', 'br0'] }),
  );
  assert.deepEqual(plan.nic, { nicType: 'BRIDGED', parent: 'br0' });
});

test("nothing usable: the automatic bridge, NAT'd, unreachable from the client", () => {
  const plan = chooseAutomatically(
    facts([iface('enp1s0', 'PHYSICAL', { up: false, runtime: '192.168.1.5/24' })]),
  );
  assert.equal(plan.kind, 'automatic-nat-bridge');
  assert.equal(plan.nic, undefined);
  assert.equal(plan.reachableFromClient, false);
  assert.match(plan.summary, /incusbr0 \(NAT'd\)/);
  assert.match(plan.explanation, /jump host/);
});

test('settings: a type makes the plan; network alone is an Incus setting (TrueNAS cannot send it)', () => {
  assert.deepEqual(planFromSetting({ nicType: 'MACVLAN', parent: 'eno1' })?.nic, {
    nicType: 'MACVLAN',
    parent: 'eno1',
  });
  const bridged = planFromSetting({ nicType: 'BRIDGED', parent: 'br0' });
  assert.equal(bridged?.kind, 'bridged');
  assert.equal(bridged?.source, 'settings');
  assert.equal(planFromSetting({ network: 'incusbr0' }), undefined);
});

test('cannot reach: the reason and the fix that applies', () => {
  const nat = chooseAutomatically(facts([]));
  const natText = explainUnreachable({ name: 'dev', address: '10.200.1.5', plan: nat, lastSeen: 'x' });
  assert.match(natText, /NAT'd/);
  assert.match(natText, /"nic"/);
  assert.match(natText, /jump host/);

  const mac = chooseAutomatically(facts([iface('enp1s0', 'PHYSICAL', { configured: '192.168.1.50/24' })]));
  const macText = explainUnreachable({ name: 'dev', address: '192.168.1.77', plan: mac });
  assert.match(macText, /MACVLAN on enp1s0/);
  assert.match(macText, /server it runs on does not/);
  assert.match(macText, /LAN bridge/);

  assert.match(explainUnreachable({ name: 'dev', plan: mac }), /no IP address yet.*DHCP/);
  assert.match(explainUnreachable({ name: 'dev', plan: nat }), /no IP address yet/);
  assert.match(
    explainUnreachable({
      name: 'dev',
      address: '192.168.1.77',
      plan: planFromSetting({ nicType: 'BRIDGED', parent: 'br0' }),
    }),
    /bridged on br0.*route/,
  );
  assert.match(explainUnreachable({ name: 'dev', address: '1.2.3.4' }), /could not tell/);
});

test("an address in the server's NAT'd subnet is explained as NAT'd whatever new sandboxes get", () => {
  const mac = chooseAutomatically(facts([iface('enp1s0', 'PHYSICAL', { configured: '192.168.1.50/24' })]));
  assert.equal(mac.natSubnet, '10.200.1.1/24');
  assert.match(explainUnreachable({ name: 'old', address: '10.200.1.9', plan: mac }), /NAT'd/);
  assert.match(explainUnreachable({ name: 'new', address: '192.168.1.70', plan: mac }), /MACVLAN/);
});
