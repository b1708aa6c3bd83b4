// The NAS's network as the simulator reports it (interface.query, network.general.summary,
// virt.global.bridge_choices / get_network, shapes from the 25.04 / 25.10 middleware), and the NIC device the
// production TrueNAS backend chooses from it, on 25.04 and 25.10.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import type { NicSetting } from '../../src/core/network-plan';
import { ValidationError } from '../../src/core/errors';
import { startSimulator, type SimServer, type SimVersion } from '../sim/index';
import type { SimNetworkLayout } from '../sim/methods/network';
import { RawClient, type Frame } from '../sim/rawclient';

const KEY = `1-${'n'.repeat(64)}`;
const VERSIONS: SimVersion[] = ['25.04', '25.10'];

async function rig(version: SimVersion, network: SimNetworkLayout, nic?: NicSetting) {
  const sim = await startSimulator({ version, apiKey: KEY, jobDurationMs: 10, network });
  const backend = createTrueNASBackend(
    { serverId: 'net', host: '127.0.0.1', port: sim.port, username: 'truenas_admin', secure: false, nic },
    KEY,
  );
  return {
    sim,
    backend,
    nicOf: async (name: string) =>
      (await sim.engine.listInstances())
        .find((i) => i.name === `px-${name}`)
        ?.devices.filter((d) => d.dev_type === 'NIC'),
    close: async () => {
      backend.dispose();
      await sim.close();
    },
  };
}

for (const version of VERSIONS) {
  describe(`simulated NAS network (${version})`, () => {
    const sims: SimServer[] = [];
    const clients: RawClient[] = [];
    async function raw(network: SimNetworkLayout): Promise<RawClient> {
      const sim = await startSimulator({ version, apiKey: KEY, jobDurationMs: 10, network });
      sims.push(sim);
      const c = await RawClient.connect(sim.url);
      clients.push(c);
      await c.login(KEY);
      return c;
    }
    after(async () => {
      for (const c of clients) c.close();
      for (const s of sims) await s.close();
    });

    test('stock: one physical NIC on DHCP: no configured aliases, the lease only in state.aliases', async () => {
      const c = await raw('stock');
      const rows = await c.call<Frame[]>('interface.query');
      assert.deepEqual(
        rows.map((r) => [r.name, r.type]),
        [['enp1s0', 'PHYSICAL']],
      );
      const [nic] = rows;
      assert.deepEqual(nic.aliases, []);
      assert.equal(nic.ipv4_dhcp, true);
      const state = nic.state as Frame;
      assert.equal(state.link_state, 'LINK_STATE_UP');
      const aliases = state.aliases as Frame[];
      assert.deepEqual(
        aliases.find((a) => a.type === 'INET'),
        { type: 'INET', address: '192.168.1.50', netmask: 24, broadcast: '192.168.1.255' },
      );
      // 25.04's netif lists the MAC as a LINK alias; 25.10's netlink state has INET/INET6 only.
      assert.equal(
        aliases.some((a) => a.type === 'LINK'),
        version === '25.04',
      );
      assert.deepEqual(await c.call('interface.query', [[['type', '=', 'BRIDGE']]]), []);
      assert.deepEqual(await c.call('network.general.summary'), {
        ips: { enp1s0: { IPV4: ['192.168.1.50/24'], IPV6: ['fe80::5054:ff:fe12:3456/64'] } },
        default_routes: ['192.168.1.1'],
        nameservers: ['192.168.1.1'],
      });
      assert.deepEqual(await c.call('virt.global.bridge_choices'), { '[AUTO]': 'Automatic' });
      const g = await c.call<Frame>('virt.global.config');
      assert.equal(g.bridge, null);
      assert.deepEqual(await c.call('virt.global.get_network', ['incusbr0']), {
        type: 'BRIDGE',
        managed: true,
        ipv4_address: g.v4_network,
        ipv4_nat: true,
        ipv6_address: g.v6_network,
        ipv6_nat: true,
      });
      const missing = await c.request('virt.global.get_network', ['br7']);
      assert.match(JSON.stringify(missing.error), /Network not found/);
      const tooMany = await c.request('network.general.summary', [1]);
      assert.match(JSON.stringify(tooMany.error), /Too many arguments/);
    });

    test('lan-bridge: br0 holds the address and is a bridge choice; enp1s0 is its member', async () => {
      const c = await raw('lan-bridge');
      const bridges = await c.call<Frame[]>('interface.query', [[['type', '=', 'BRIDGE']]]);
      assert.equal(bridges.length, 1);
      assert.equal(bridges[0].name, 'br0');
      assert.deepEqual(bridges[0].bridge_members, ['enp1s0']);
      assert.deepEqual(bridges[0].aliases, [{ type: 'INET', address: '192.168.1.50', netmask: 24 }]);
      assert.deepEqual(await c.call('virt.global.bridge_choices'), { '[AUTO]': 'Automatic', br0: 'br0' });
      const summary = await c.call<Frame>('network.general.summary');
      assert.deepEqual(Object.keys(summary.ips as Frame), ['br0']);
    });

    test("stock NAS (DHCP): no NIC device, the plan says automatic NAT'd bridge", async () => {
      const r = await rig(version, 'stock');
      try {
        const plan = await r.backend.networkPlan!();
        assert.equal(plan.kind, 'automatic-nat-bridge');
        assert.equal(plan.reachableFromClient, false);
        assert.match(plan.explanation, /DHCP/);
        await r.backend.create({ name: 'plain', image: 'debian/12' });
        assert.deepEqual(await r.nicOf('plain'), []);
      } finally {
        await r.close();
      }
    });

    test('static address: MACVLAN on enp1s0 for create and clone', async () => {
      const r = await rig(version, 'static');
      try {
        const plan = await r.backend.networkPlan!();
        assert.equal(plan.kind, 'macvlan');
        assert.equal(plan.parent, 'enp1s0');
        await r.backend.create({ name: 'lan', image: 'debian/12' });
        const nic = await r.nicOf('lan');
        assert.equal(nic?.length, 1);
        assert.equal(nic[0].nic_type, 'MACVLAN');
        assert.equal(nic[0].parent, 'enp1s0');
        assert.equal(nic[0].name, 'eth0');
        await r.backend.clone({ sandbox: 'lan' }, 'lan2');
        const cloned = await r.nicOf('lan2');
        assert.equal(cloned?.[0]?.nic_type, 'MACVLAN');
        assert.equal(cloned?.[0]?.parent, 'enp1s0');
      } finally {
        await r.close();
      }
    });

    test('LAN bridge: BRIDGED on br0', async () => {
      const r = await rig(version, 'lan-bridge');
      try {
        const plan = await r.backend.networkPlan!();
        assert.equal(plan.kind, 'bridged');
        assert.equal(plan.reachableFromClient, true);
        await r.backend.create({ name: 'br', image: 'debian/12' });
        const nic = await r.nicOf('br');
        assert.equal(nic?.[0]?.nic_type, 'BRIDGED');
        assert.equal(nic?.[0]?.parent, 'br0');
      } finally {
        await r.close();
      }
    });

    test('settings win; a bridged parent that is no bridge is refused by the server, nothing left behind', async () => {
      const r = await rig(version, 'lan-bridge', { nicType: 'MACVLAN', parent: 'enp1s0' });
      try {
        assert.equal((await r.backend.networkPlan!()).source, 'settings');
        await r.backend.create({ name: 'mac', image: 'debian/12' });
        assert.equal((await r.nicOf('mac'))?.[0]?.nic_type, 'MACVLAN');
        await assert.rejects(
          r.backend.create({
            name: 'bad',
            image: 'debian/12',
            nic: { nicType: 'BRIDGED', parent: 'enp1s0' },
          }),
          (err: unknown) => err instanceof ValidationError && /Invalid parent interface/.test(err.message),
        );
        assert.equal(
          (await r.sim.engine.listInstances()).some((i) => i.name === 'px-bad'),
          false,
        );
      } finally {
        await r.close();
      }
    });
  });
}
