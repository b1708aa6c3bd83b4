// Where a TrueNAS sandbox lands decides whether the editor reaches it. The simulator's Incus engine plays the
// NAS's interfaces with the lab bridge: a BRIDGED NIC on the NAS's LAN bridge (chosen automatically when the NAS
// has one) is a real NIC on the lab bridge, which this machine reaches directly over SSH; a MACVLAN NIC on its
// physical interface is a real macvlan child of the lab bridge, which (a macvlan property) the host of its parent
// cannot reach, and the product says so instead of a bare timeout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { createTrueNASBackend } from '../../../src/backends/truenas/index';
import type { Backend } from '../../../src/core/backend';
import { TimeoutError } from '../../../src/core/errors';
import { explainUnreachable } from '../../../src/core/network-plan';
import {
  generateHostKey,
  generateKeyPair,
  prepareSandboxAccess,
  SshPool,
  waitForSsh,
  type SshTarget,
} from '../../../src/ssh/index';
import { requireLab, type Lab } from '../../lab/lab';
import { createIncusEngine, type IncusEngine } from '../../sim/engines/incus';
import { startSimulator, type SimServer } from '../../sim/index';
import type { SimNetworkLayout } from '../../sim/methods/network';
import { testPrefix } from './helpers';

const API_KEY = '1-' + 'e'.repeat(64);

interface Rig {
  engine: IncusEngine;
  sim: SimServer;
  backend: Backend;
}

async function rig(lab: Lab, network: SimNetworkLayout): Promise<Rig> {
  const engine = await createIncusEngine({ lab });
  const sim = await startSimulator({ version: '25.10', apiKey: API_KEY, engine, jobDurationMs: 10, network });
  const backend = createTrueNASBackend(
    {
      serverId: `nic-${network}`,
      host: '127.0.0.1',
      port: sim.port,
      username: 'truenas_admin',
      secure: false,
    },
    API_KEY,
  );
  return { engine, sim, backend };
}

/** The real Incus device behind the sandbox's eth0. */
async function realEth0(lab: Lab, r: Rig, name: string): Promise<Record<string, string>> {
  const client = new IncusRestClient({ socketPath: lab.socket, project: r.engine.project });
  try {
    const inst = await client.call<{ devices: Record<string, Record<string, string>> }>(
      'GET',
      `/1.0/instances/px-${name}`,
    );
    return inst.metadata.devices.eth0;
  } finally {
    client.close();
  }
}

/** Pinned host key and our key in, then a restart so sshd serves that key (TrueNAS writes only while running). */
async function sshReady(backend: Backend, name: string, user: ReturnType<typeof generateKeyPair>) {
  const hostKey = generateHostKey();
  await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.alloc(0), { mode: 0o600 });
  await prepareSandboxAccess(backend, name, { userPublicKey: user.publicOpenSsh, hostKey, pixelUser: false });
  await backend.restart(name, { timeoutSec: 10, force: true });
  return hostKey;
}

describe('TrueNAS NIC choice on real containers', { timeout: 300_000 }, () => {
  const prefix = testPrefix();
  const user = generateKeyPair('sim-nic');
  const pool = new SshPool();
  let lab: Lab;
  const rigs: Rig[] = [];

  before(async () => {
    lab = await requireLab();
  });

  after(async () => {
    pool.dispose();
    for (const r of rigs) {
      r.backend.dispose();
      await r.sim.close(); // removes the engine's containers and project
    }
  });

  test('a NAS with a LAN bridge: BRIDGED on it, and this machine reaches the sandbox directly over SSH', async () => {
    const r = await rig(lab, 'lan-bridge');
    rigs.push(r);
    const name = `${prefix}-lan`;
    const plan = await r.backend.networkPlan!();
    assert.equal(plan.kind, 'bridged');
    assert.equal(plan.parent, 'br0');
    assert.equal(plan.reachableFromClient, true);
    await r.backend.create({ name, image: 'debian/12', memoryMiB: 512, cpu: '1' });
    assert.deepEqual(await realEth0(lab, r, name), {
      type: 'nic',
      name: 'eth0',
      nictype: 'bridged',
      parent: lab.bridge,
    });
    const hostKey = await sshReady(r.backend, name, user);
    let target: SshTarget | undefined;
    const deadline = Date.now() + 60_000;
    while (!target && Date.now() < deadline) {
      const ip = (await r.backend.get(name)).ipv4;
      if (ip)
        target = {
          host: ip,
          username: 'root',
          privateKey: user.privateOpenSsh,
          hostKey: hostKey.publicOpenSsh,
        };
      else await new Promise((res) => setTimeout(res, 300));
    }
    assert.ok(target, 'the bridged sandbox got an address on the LAN (the lab bridge)');
    const [net, bits] = lab.bridgeIpv4.split('/');
    assert.equal(bits, '24');
    assert.ok(
      target.host.startsWith(net.split('.').slice(0, 3).join('.') + '.'),
      `${target.host} is on ${lab.bridgeIpv4}`,
    );
    await waitForSsh(target, { timeoutMs: 60_000, pool });
    const result = await pool.exec(target, 'cat /etc/hostname');
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.toString().trim(), `px-${name}`);
  });

  test("MACVLAN on the NAS's interface: a real macvlan child this host cannot reach, and the product says why", async (t) => {
    const r = await rig(lab, 'static');
    rigs.push(r);
    const name = `${prefix}-mac`;
    const plan = await r.backend.networkPlan!();
    assert.equal(plan.kind, 'macvlan');
    assert.equal(plan.parent, 'enp1s0');
    await r.backend.create({ name, image: 'debian/12', memoryMiB: 512, cpu: '1' });
    assert.deepEqual(await realEth0(lab, r, name), {
      type: 'nic',
      name: 'eth0',
      nictype: 'macvlan',
      parent: lab.bridge,
    });
    const hostKey = await sshReady(r.backend, name, user);
    // Give DHCP the time it takes on the bridged sandbox, then try what the editor would.
    await new Promise((res) => setTimeout(res, 8_000));
    const ip = (await r.backend.get(name)).ipv4;
    t.diagnostic(ip ? `the macvlan sandbox has ${ip}` : 'the macvlan sandbox got no address');
    let failure: unknown;
    if (ip) {
      // A lease came through: the host still must not reach it.
      failure = await waitForSsh(
        { host: ip, username: 'root', privateKey: user.privateOpenSsh, hostKey: hostKey.publicOpenSsh },
        { timeoutMs: 8_000 },
      ).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.ok(
        failure instanceof TimeoutError,
        `SSH to the macvlan sandbox at ${ip} must fail from its host`,
      );
    }
    const text = explainUnreachable({ name, address: ip, plan, lastSeen: 'the TCP connection timed out' });
    if (ip) {
      assert.match(text, /MACVLAN on enp1s0/);
      assert.match(text, /server it runs on does not/);
    } else {
      // The parent's host does not even see the child's DHCP request, so it never gets a lease here.
      assert.match(text, /no IP address yet/);
      assert.match(text, /MACVLAN \(enp1s0\).*DHCP/);
    }
  });
});
