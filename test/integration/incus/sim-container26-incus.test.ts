// TrueNAS 26 on the simulator's Incus engine: a container.* container is a real lab container. Through the API
// only (a raw client): create it, write a first-boot hook into its rootfs at the 26 path (file_receive; symlinks
// refused with ELOOP), start it, read back the address the hook reported (filesystem.listdir, truenas-26.md §2),
// stop it and delete it, leaving nothing in the engine's project.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { requireLab, type Lab } from '../../lab/lab';
import { createIncusEngine, type IncusEngine } from '../../sim/engines/incus';
import { startSimulator, type SimServer } from '../../sim/index';
import { RawClient, type Frame } from '../../sim/rawclient';
import { testPrefix } from './helpers';

const KEY = `1-${'c'.repeat(64)}`;
const IMAGE = { name: 'debian:bookworm:amd64:default', version: '20260802_05:24' };
const HOOK = `#!/bin/sh
# first-boot hook: report the IPv4 address as an empty file named after it
(for i in $(seq 1 60); do
  a=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n1)
  if [ -n "$a" ]; then mkdir -p /var/lib/pxtest/address && : > "/var/lib/pxtest/address/$a"; exit 0; fi
  sleep 1
done) &
exit 0
`;

describe('TrueNAS 26 simulator on real Incus containers', { timeout: 180_000 }, () => {
  const name = `px-${testPrefix()}`;
  const root = `/mnt/.truenas_containers/tank/containers/${name}`;
  let lab: Lab;
  let engine: IncusEngine;
  let sim: SimServer;
  let c: RawClient;
  let real: IncusRestClient;
  let id = 0;

  before(async () => {
    lab = await requireLab();
    engine = await createIncusEngine({ lab });
    sim = await startSimulator({ version: '26', apiKey: KEY, engine, jobDurationMs: 10 });
    c = await RawClient.connect(sim.url);
    await c.login(KEY);
    await c.call('core.subscribe', ['core.get_jobs']);
    real = new IncusRestClient({ socketPath: lab.socket, project: engine.project });
  });

  after(async () => {
    c?.close();
    real?.close();
    await sim?.close(); // closes the engine: its containers and project go with it
  });

  const job = async (method: string, params: unknown[]) =>
    c.jobEnd(await c.call<number>(method, params), 60_000);
  const realStatus = async () =>
    (await real.call<{ status: string }>('GET', `/1.0/instances/${name}`)).metadata.status;

  test('create gives a stopped real container; the hook goes into its rootfs, links refused (ELOOP)', async () => {
    const created = await job('container.create', [{ name, image: IMAGE, cpuset: '0' }]);
    assert.equal(created.state, 'SUCCESS', String(created.error));
    id = (created.result as Frame).id as number;
    assert.equal(await realStatus(), 'Stopped');
    const b64 = Buffer.from(HOOK).toString('base64');
    assert.equal(
      await c.call('filesystem.file_receive', [`${root}/etc/rc.local`, b64, { mode: 0o755 }]),
      true,
    );
    const st = await c.call<Frame>('filesystem.stat', [`${root}/etc/rc.local`]);
    assert.deepEqual([st.type, st.size, Number(st.mode) & 0o777, st.uid], ['FILE', HOOK.length, 0o755, 0]);
    // Debian's /var/run is a link to /run: 26's safe_open refuses it.
    const link = await c.request('filesystem.file_receive', [`${root}/var/run/x`, b64]);
    assert.equal(
      (link.error?.data as Frame).reason,
      `[Errno 40] Symlink detected in path: '${root}/var/run/x'`,
    );
  });

  test('start boots it: the hook ran in the container and its address is readable through the API', async () => {
    assert.equal(await c.call('container.start', [id]), null);
    const entry = await c.call<Frame>('container.get_instance', [id]);
    assert.equal((entry.status as Frame).state, 'RUNNING');
    assert.equal(typeof (entry.status as Frame).pid, 'number');
    assert.equal(await realStatus(), 'Running');
    const config = await real.call<{ config: Record<string, string> }>('GET', `/1.0/instances/${name}`);
    assert.equal(config.metadata.config['limits.cpu'], '0-0', 'cpuset "0" pins CPU 0');
    const deadline = Date.now() + 60_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      const reply = await c.request('filesystem.listdir', [`${root}/var/lib/pxtest/address`]);
      if (!reply.error) names = (reply.result as Frame[]).map((r) => String(r.name));
      if (names.length) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.equal(names.length, 1, 'the boot hook reported an address');
    // No NIC device and lxc bridge automatic: the NAT'd stand-in for truenasbr0, reached through the NAS.
    const subnet = lab.natBridgeIpv4.split('.').slice(0, 3).join('.');
    assert.ok(names[0].startsWith(`${subnet}.`), `${names[0]} is on ${lab.natBridgeIpv4}`);
    const state = await real.call<{ network: Record<string, { addresses: { address: string }[] }> }>(
      'GET',
      `/1.0/instances/${name}/state`,
    );
    const eth0 = (state.metadata.network.eth0?.addresses ?? []).map((a) => a.address);
    assert.ok(eth0.includes(names[0]), `the container's own eth0 has ${names[0]} (${eth0.join(', ')})`);
    const hostname = await c.call<Frame>('filesystem.stat', [`${root}/etc/hostname`]);
    assert.equal(hostname.size, name.length + 1, 'start wrote /etc/hostname');
  });

  test('stop (force_after_timeout) and delete act on the real container and leave nothing', async () => {
    const stopped = await job('container.stop', [id, { force_after_timeout: true }]);
    assert.equal(stopped.state, 'SUCCESS', String(stopped.error));
    assert.equal(await realStatus(), 'Stopped');
    assert.equal(await c.call('container.delete', [id]), null);
    const left = await real.call<string[]>('GET', '/1.0/instances');
    assert.deepEqual(left.metadata, []);
    assert.deepEqual(await c.call('container.query'), []);
  });
});
