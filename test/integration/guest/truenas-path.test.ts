// The same guest code through the TrueNAS path: the production TrueNAS backend against the simulator whose
// sandboxes are real Incus containers. TrueNAS has no exec API, so everything inside runs over SSH (pinned host
// key pushed with file_receive into the just-created sandbox); checkpoint restore and clone go through TrueNAS
// calls, and the clone's own identity and host key go in over SSH (the NAS's file API is not used on it).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Backend } from '../../../src/core/backend';
import {
  allowEgress,
  buildPolicy,
  provision,
  recheckEgress,
  showEgress,
  sshExecutor,
  type Executor,
} from '../../../src/guest/index';
import {
  generateHostKey,
  generateKeyPair,
  prepareSandboxAccess,
  prepareSandboxAccessOverSsh,
  SshPool,
  waitForSsh,
  type SshTarget,
} from '../../../src/ssh/index';
import { requireLab } from '../../lab/lab';
import { createIncusEngine, type IncusEngine } from '../../sim/engines/incus';
import type { SimServer } from '../../sim/index';
import { startLanBridgeNas } from '../../sim/virt-bridge';
import { fetchFrom, testPrefix, waitBooted, waitForAddresses } from './helpers';
import { NET, startInternet, type Internet } from './internet';

const API_KEY = '1-' + 'c'.repeat(64);

describe(
  'provisioning and egress through the TrueNAS backend (simulator on real containers)',
  { timeout: 300_000 },
  () => {
    const prefix = testPrefix();
    const name = `${prefix}-tn`;
    const user = generateKeyPair('truenas-path');
    let engine: IncusEngine;
    let sim: SimServer;
    let backend: Backend;
    let net: Internet;
    const pool = new SshPool();

    const targets = new Map<string, SshTarget>();
    async function sshInto(sandbox: string, hostKey: { publicOpenSsh: string }): Promise<Executor> {
      const deadline = Date.now() + 30_000;
      let ip: string | undefined;
      while (!ip && Date.now() < deadline) {
        ip = (await backend.get(sandbox)).ipv4;
        if (!ip) await new Promise((r) => setTimeout(r, 300));
      }
      assert.ok(ip, `${sandbox} got no IPv4`);
      const target = {
        host: ip,
        username: 'root',
        privateKey: user.privateOpenSsh,
        hostKey: hostKey.publicOpenSsh,
      };
      targets.set(sandbox, target);
      await waitForSsh(target, 60_000);
      const exec = sshExecutor(pool, target);
      await waitBooted(exec);
      await waitForAddresses(exec);
      return exec;
    }

    const url = (host: string) => `http://${host}:${net.port}/`;

    before(async () => {
      const lab = await requireLab();
      net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
      engine = await createIncusEngine({ lab });
      // This suite reaches its sandboxes directly (SSH and the lab's "internet"): a NAS with a LAN bridge, chosen
      // for new instances as its user would (a stock NAS would put them on its NAT'd automatic bridge).
      ({ sim, backend } = await startLanBridgeNas(engine, API_KEY, 'sim-guest'));
    });

    after(async () => {
      pool.dispose();
      backend?.dispose();
      await sim?.close(); // removes the engine's containers and project
      await net?.close();
    });

    let exec: Executor;
    const hostKey = generateHostKey();
    test('a sandbox created through TrueNAS is provisioned over SSH and locked down', async () => {
      // TrueNAS writes files only into a running sandbox: write, then restart so sshd loads the pinned key.
      await backend.create({ name, image: 'debian/12' });
      // Root's authorized_keys starts empty (the file API appends to an existing file), then the access goes in.
      await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.alloc(0), { mode: 0o600 });
      await prepareSandboxAccess(backend, name, {
        userPublicKey: user.publicOpenSsh,
        hostKey,
        pixelUser: false,
      });
      await backend.writeFile(name, '/etc/resolv.conf', Buffer.from(`nameserver ${NET.dnsV4}\n`));
      await backend.start(name);
      exec = await sshInto(name, hostKey);
      const outcomes = await provision(exec, {
        userPublicKeys: [user.publicOpenSsh],
        hostPublicKey: hostKey.publicOpenSsh,
        devtools: false,
        packages: [],
        egress: buildPolicy('allowlist', ['allowed.test']),
      });
      assert.ok(outcomes.every((o) => o.state === 'done' && !o.alreadyDone));
      assert.equal((await fetchFrom(exec, url('allowed.test'))).exitCode, 0);
      assert.equal((await fetchFrom(exec, url('denied.test'))).exitCode, 7);
      assert.equal((await showEgress(exec)).policy.mode, 'allowlist');
    });

    test('restore of an older checkpoint and a clone keep the policy', async () => {
      await backend.createCheckpoint(name, 'locked');
      await allowEgress(exec, 'denied.test');
      assert.equal((await fetchFrom(exec, url('denied.test'))).exitCode, 0);
      await backend.createCheckpoint(name, 'opened');
      await backend.restoreCheckpoint(name, 'locked');
      // The restore restarted the sandbox: drop the old connection, as the extension does.
      await pool.close(targets.get(name)!);
      await waitBooted(exec);
      const status = await recheckEgress(exec);
      assert.deepEqual(status.policy.allow, ['allowed.test']);
      assert.equal((await fetchFrom(exec, url('denied.test'))).exitCode, 7);
      assert.equal((await fetchFrom(exec, url('allowed.test'))).exitCode, 0);

      const cloneName = `${prefix}-tnc`;
      await backend.clone({ sandbox: name, checkpoint: 'locked' }, cloneName);
      // The clone still serves its source's key; its own identity and key go in over SSH, from inside.
      await sshInto(cloneName, hostKey);
      const viaSource = targets.get(cloneName)!;
      const cloneKey = generateHostKey();
      await prepareSandboxAccessOverSsh(pool, viaSource, cloneName, {
        userPublicKey: user.publicOpenSsh,
        hostKey: cloneKey,
        pixelUser: false,
        newIdentity: true,
      });
      await pool.close(viaSource);
      await backend.restart(cloneName);
      const cloneExec = await sshInto(cloneName, cloneKey);
      assert.equal((await recheckEgress(cloneExec)).reapplied, false);
      assert.equal((await fetchFrom(cloneExec, url('denied.test'))).exitCode, 7);
      assert.equal((await fetchFrom(cloneExec, url('allowed.test'))).exitCode, 0);
    });
  },
);
