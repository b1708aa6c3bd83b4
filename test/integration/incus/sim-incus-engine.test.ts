// The TrueNAS code path end to end on real containers: the simulator with the Incus engine, driven by the
// production TrueNAS backend. Sandboxes are real containers (in the engine's own project); file_receive writes
// into the real root filesystem; checkpoints are real snapshots.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createIncusEngine } from '../../sim/engines/incus';
import type { IncusEngine } from '../../sim/engines/incus';
import { startSimulator } from '../../sim/index';
import type { SimServer } from '../../sim/index';
import { createTrueNASBackend } from '../../../src/backends/truenas/index';
import type { Backend } from '../../../src/core/backend';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { IncusFiles } from '../../../src/backends/incus/files';
import { requireLab } from '../../lab/lab';
import type { Lab } from '../../lab/lab';
import { testPrefix } from './helpers';
import { TrueNASClient } from '../../../src/backends/truenas/client';

const API_KEY = '1-' + 'b'.repeat(64);

for (const version of ['25.04', '25.10'] as const) {
  describe(`TrueNAS ${version} simulator on real Incus containers`, { timeout: 240_000 }, () => {
    const prefix = testPrefix();
    const a = `${prefix}-a`;
    const b = `${prefix}-b`;
    let lab: Lab;
    let engine: IncusEngine;
    let sim: SimServer;
    let backend: Backend;
    let real: IncusRestClient;

    before(async () => {
      lab = await requireLab();
      engine = await createIncusEngine({ lab });
      sim = await startSimulator({ version, apiKey: API_KEY, engine, jobDurationMs: 10 });
      backend = createTrueNASBackend(
        {
          serverId: `sim-incus-${version}`,
          host: '127.0.0.1',
          port: sim.port,
          username: 'truenas_admin',
          secure: false,
        },
        API_KEY,
      );
      real = new IncusRestClient({ socketPath: lab.socket, project: engine.project });
    });

    after(async () => {
      backend?.dispose();
      real?.close();
      await sim?.close(); // closes the engine: its containers and project go with it
      if (lab) {
        const admin = new IncusRestClient({ socketPath: lab.socket });
        const projects = await admin.call<string[]>('GET', '/1.0/projects');
        admin.close();
        assert.ok(
          !projects.metadata.some((p) => p.endsWith(`/${engine.project}`)),
          'the engine removed its project',
        );
      }
    });

    const waitIpv4 = async (name: string) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = await backend.get(name);
        if (s.ipv4) return s;
        if (Date.now() > deadline) throw new Error(`${name}: no IPv4 within 30 s`);
        await new Promise((r) => setTimeout(r, 300));
      }
    };

    const onSubnet = (ip: string, bridgeIpv4: string) =>
      assert.match(ip, new RegExp(`^${bridgeIpv4.split('.').slice(0, 3).join('\\.')}\\.`));

    test('create -> a real running container with an address on the automatic bridge (stock NAS)', async () => {
      // virt.global bridge is automatic: like the middleware, the engine puts a NIC-less instance there.
      await backend.create({ name: a, image: 'debian/12', memoryMiB: 512, cpu: '1' });
      const s = await waitIpv4(a);
      assert.equal(s.status, 'running');
      onSubnet(s.ipv4!, lab.natBridgeIpv4);
      const inst = await real.call<{ status: string; config: Record<string, string> }>(
        'GET',
        `/1.0/instances/px-${a}`,
      );
      assert.equal(inst.metadata.status, 'Running');
      assert.equal(inst.metadata.config['limits.cpu'], '1');
    });

    test('file_receive writes into the real root filesystem; checkpoint, change, restore', async () => {
      const files = new IncusFiles(real);
      await backend.writeFile(a, '/root/marker', Buffer.from('v1\n'), { mode: 0o600 });
      assert.equal((await files.read(`px-${a}`, '/root/marker')).toString(), 'v1\n');
      const c1 = await backend.createCheckpoint(a, 'first');
      await backend.writeFile(a, '/root/marker', Buffer.from('v2\n'));
      await backend.createCheckpoint(a, 'second');
      const snaps = await real.call<string[]>('GET', `/1.0/instances/px-${a}/snapshots`);
      assert.equal(snaps.metadata.length, 2, 'real Incus snapshots');
      await backend.restoreCheckpoint(a, c1.label);
      assert.equal((await files.read(`px-${a}`, '/root/marker')).toString(), 'v1\n');
      assert.deepEqual(
        (await backend.listCheckpoints(a)).map((c) => c.label),
        ['first'],
      );
    });

    test('clone from a checkpoint through the TrueNAS route: a real container with the checkpoint content', async () => {
      const receives = sim.callCount('filesystem.file_receive');
      await backend.clone({ sandbox: a, checkpoint: 'first' }, b);
      // Nothing is written into the clone through the NAS (its identity goes in over SSH, see truenas-path).
      assert.equal(sim.callCount('filesystem.file_receive'), receives);
      const s = await waitIpv4(b);
      const sa = await backend.get(a);
      assert.notEqual(s.ipv4, sa.ipv4);
      const files = new IncusFiles(real);
      assert.equal((await files.read(`px-${b}`, '/root/marker')).toString(), 'v1\n');
    });

    test('virt.global.update on a stock NAS: only the automatic bridge is a choice', async () => {
      const client = new TrueNASClient(
        { host: '127.0.0.1', port: sim.port, secure: false, username: 'truenas_admin' },
        API_KEY,
      );
      try {
        for (const bridge of ['nosuchbr0', 'br0'])
          await assert.rejects(
            client.callJob('virt.global.update', [{ bridge }], { context: 'bad bridge' }),
            /Invalid bridge/,
          );
        await client.callJob('virt.global.update', [{ bridge: '[AUTO]' }], { context: 'automatic' });
        assert.equal((await client.call<{ bridge: string | null }>('virt.global.config')).bridge, null);
      } finally {
        client.dispose();
      }
    });

    test('destroy leaves no containers in the engine project', async () => {
      await backend.destroy(b);
      await backend.destroy(a);
      const left = await real.call<string[]>('GET', '/1.0/instances');
      assert.deepEqual(
        left.metadata.filter((u) => u.includes(prefix)),
        [],
      );
    });
  });
}
