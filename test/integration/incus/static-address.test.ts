// A clone's address is known before its first boot: its NIC on the lab bridge gets a free IPv4 as the device's
// ipv4.address, which the bridge's dnsmasq then hands to the guest. Real containers on the lab.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IncusBackend } from '../../../src/backends/incus/index';
import {
  NoFreeAddressError,
  pickFreeAddress,
  type BridgeIpv4,
} from '../../../src/backends/incus/address-pick';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import type { IncusInstance, IncusInstanceState } from '../../../src/backends/incus/types';
import { globalAddress } from '../../../src/backends/incus/mapping';
import { parseRange, parseIPv4 } from '../../../src/core/ip';
import type { Lab } from '../../lab/lab';
import { labBackend, leftovers, removeTestInstances, testPrefix } from './helpers';

type Chooser = (bridge: BridgeIpv4, taken: Set<string>) => Promise<string> | string;

describe('static NIC addresses on the lab bridge', { timeout: 240_000 }, () => {
  const prefix = testPrefix();
  const source = `${prefix}-src`;
  let lab: Lab;
  let backend: IncusBackend;
  let raw: IncusRestClient;
  const others: IncusBackend[] = [];
  let sourceAddress = '';

  /** A second client of the same server (its own connection, its own view of what is free). */
  function otherClient(chooseAddress?: Chooser): IncusBackend {
    const b = new IncusBackend({
      serverId: 'lab',
      connection: { socketPath: lab.socket },
      network: lab.bridge,
      storagePool: lab.poolBtrfs,
      chooseAddress,
    });
    others.push(b);
    return b;
  }

  /** The address pinned on the instance's own eth0 device (what Incus stores, read without the code under test). */
  async function deviceAddress(name: string): Promise<string | undefined> {
    const inst = (await raw.call<IncusInstance>('GET', `/1.0/instances/px-${name}`)).metadata;
    return inst.devices?.eth0?.['ipv4.address'];
  }

  /** What the guest itself has on its interfaces, once it has one (bounded). */
  async function guestAddress(name: string): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const state = (await raw.call<IncusInstanceState>('GET', `/1.0/instances/px-${name}/state`)).metadata;
      const ip = globalAddress(state, 'inet');
      if (ip) return ip;
      if (Date.now() > deadline) throw new Error(`px-${name} showed no IPv4 within 30 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Every IPv4 the server says is held on the bridge: leases (static ones included) and NIC addresses. */
  async function heldOnBridge(): Promise<Set<string>> {
    const leases = (await raw.call<{ address: string }[]>('GET', `/1.0/networks/${lab.bridge}/leases`))
      .metadata;
    const insts = (await raw.call<IncusInstance[]>('GET', '/1.0/instances', { query: { recursion: '1' } }))
      .metadata;
    const held = new Set(leases.map((l) => l.address));
    for (const i of insts)
      for (const d of Object.values(i.expanded_devices ?? {}))
        if (d['ipv4.address']) held.add(d['ipv4.address']);
    return held;
  }

  function inLabSubnet(ip: string): boolean {
    const subnet = parseRange(lab.bridgeIpv4);
    const bits = parseIPv4(ip);
    return bits > subnet.start && bits < subnet.end && ip !== lab.bridgeIpv4.split('/')[0];
  }

  before(async () => {
    ({ lab, backend } = await labBackend());
    raw = new IncusRestClient({ socketPath: lab.socket });
    await backend.create({ name: source, image: lab.image, start: false });
  });

  after(async () => {
    backend?.dispose();
    for (const b of others) b.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    raw?.close();
    // The deletes run on as operations: nothing of this run may be left once they are done.
    for (let i = 0; lab && i < 150 && (await leftovers(lab, prefix)).length; i++)
      await new Promise((r) => setTimeout(r, 200));
    if (lab) assert.deepEqual(await leftovers(lab, prefix), []);
  });

  test('create leaves the address to DHCP (a plain `incus copy` of the sandbox must still start)', async () => {
    assert.equal(await deviceAddress(source), undefined);
    // The clones below copy a source that has a static address of its own: theirs must differ.
    sourceAddress = pickFreeAddress({ name: lab.bridge, address: lab.bridgeIpv4 }, await heldOnBridge());
    await raw.call('PATCH', `/1.0/instances/px-${source}`, {
      body: {
        devices: { eth0: { type: 'nic', name: 'eth0', network: lab.bridge, 'ipv4.address': sourceAddress } },
      },
    });
    await backend.createCheckpoint(source, 'cp');
  });

  let first = '';
  test('a clone has its own address before its first boot, the guest gets exactly that one', async () => {
    const made = await backend.clone({ sandbox: source, checkpoint: 'cp' }, `${prefix}-c1`);
    first = (await deviceAddress(`${prefix}-c1`)) ?? '';
    assert.ok(inLabSubnet(first), `clone address ${first}`);
    assert.notEqual(first, sourceAddress, "the source's address is not copied");
    // Known as soon as it runs: clone() answers with it, whether the guest shows it yet or not.
    assert.equal(made.status, 'running');
    assert.equal(made.ipv4, first);
    assert.equal(await guestAddress(`${prefix}-c1`), first);
  });

  test('two clients cloning at once get different addresses', async () => {
    const [a, b] = await Promise.all([
      backend.clone({ sandbox: source, checkpoint: 'cp' }, `${prefix}-c2`),
      otherClient().clone({ sandbox: source, checkpoint: 'cp' }, `${prefix}-c3`),
    ]);
    const addresses = [await deviceAddress(a.name), await deviceAddress(b.name)];
    assert.ok(
      addresses.every((x) => x && inLabSubnet(x)),
      addresses.join(' '),
    );
    assert.equal(new Set([...addresses, first, sourceAddress]).size, 4, addresses.join(' '));
    assert.deepEqual([await guestAddress(a.name), await guestAddress(b.name)], addresses);
  });

  test('an address another client takes between the pick and the start is replaced by another one', async () => {
    const thief = `px-${prefix}-thief`;
    let stolen = '';
    let calls = 0;
    const client = otherClient(async (bridge, taken) => {
      calls++;
      if (calls > 1) return pickFreeAddress(bridge, taken);
      // The first pick is free when made; another client takes it before our clone starts (Incus checks at start).
      stolen = pickFreeAddress(bridge, taken);
      await raw.call('POST', '/1.0/instances', {
        body: {
          name: thief,
          type: 'container',
          source: { type: 'none' },
          devices: { eth0: { type: 'nic', name: 'eth0', network: lab.bridge, 'ipv4.address': stolen } },
        },
      });
      return stolen;
    });
    const made = await client.clone({ sandbox: source, checkpoint: 'cp' }, `${prefix}-c4`);
    assert.equal(calls, 2);
    const got = await deviceAddress(made.name);
    assert.ok(got && inLabSubnet(got) && got !== stolen, `${got} vs stolen ${stolen}`);
    assert.equal(
      (await raw.call<IncusInstance>('GET', `/1.0/instances/${thief}`)).metadata.devices?.eth0[
        'ipv4.address'
      ],
      stolen,
    );
    assert.equal(await guestAddress(made.name), got);
  });

  test("a destroyed sandbox's address is free again", async () => {
    await backend.destroy(`${prefix}-c1`);
    assert.equal((await heldOnBridge()).has(first), false, `${first} still held`);
    // A client that wants exactly that address gets it, and the server agrees it is free.
    const client = otherClient((_bridge, taken) => {
      assert.equal(taken.has(first), false, `${first} still counted as taken`);
      return first;
    });
    const made = await client.clone({ sandbox: source, checkpoint: 'cp' }, `${prefix}-c5`);
    assert.equal(await deviceAddress(made.name), first);
  });

  test('with no free address the clone is made anyway and gets one by DHCP', async () => {
    const client = otherClient(() => {
      throw new NoFreeAddressError('No free IPv4 address is left on network "x".');
    });
    const made = await client.clone({ sandbox: source, checkpoint: 'cp' }, `${prefix}-c6`);
    assert.equal(await deviceAddress(made.name), undefined);
    assert.ok(inLabSubnet(await guestAddress(made.name)));
  });
});
