// TrueNAS file writes cannot be turned against the NAS. The simulator runs on real containers, and its
// file_receive resolves paths as the middleware does as root on the NAS (absolute link targets from the NAS's own
// root, here a directory standing in for it). Root inside a real container plants links to the NAS's /etc/passwd,
// /root/.ssh, /etc/ssh and a linked parent directory; Set Up SSH Access, clone (with its new identity), restore
// and the SSH step of provisioning must then either work safely (over SSH, inside the sandbox) or refuse naming
// the path, and every file of the NAS stays byte-identical. A last check writes through file_receive without the
// product's checks, to show the trap is real. Fails loudly without the lab.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { TrueNASClient } from '../../../src/backends/truenas/client';
import type { Backend } from '../../../src/core/backend';
import { SecurityError } from '../../../src/core/errors';
import {
  generateHostKey,
  generateKeyPair,
  prepareSandboxAccess,
  prepareSandboxAccessOverSsh,
  SshPool,
  waitForSsh,
  type KeyPair,
  type SshTarget,
} from '../../../src/ssh/index';
import { requireLab } from '../../lab/lab';
import { createIncusEngine, type IncusEngine } from '../../sim/engines/incus';
import type { SimServer } from '../../sim/index';
import { startLanBridgeNas } from '../../sim/virt-bridge';
import { snapshotNasRoot } from '../../sim/nas-root';
import { testPrefix } from './helpers';

const run = promisify(execFile);
const API_KEY = '1-' + 'd'.repeat(64);
const ROOTFS = (name: string) => `/var/lib/incus/storage-pools/tank/containers/px-${name}/rootfs`;

describe('TrueNAS writes and links planted inside real containers', { timeout: 360_000 }, () => {
  const prefix = testPrefix();
  const user = generateKeyPair('host-safety');
  let engine: IncusEngine;
  let sim: SimServer;
  let backend: Backend;
  let nasBefore: ReturnType<typeof snapshotNasRoot>;
  const pool = new SshPool();

  /** A command as root inside the sandbox's real container (what an agent with root could run). */
  async function asRoot(name: string, script: string): Promise<string> {
    const { stdout } = await run('incus', [
      'exec',
      '--project',
      engine.project,
      `px-${name}`,
      '--',
      'sh',
      '-c',
      script,
    ]);
    return stdout;
  }

  async function ipOf(name: string): Promise<string> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ip = (await backend.get(name)).ipv4;
      if (ip) return ip;
      if (Date.now() > deadline) throw new Error(`${name} got no IPv4`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async function rootTarget(name: string, hostKey: KeyPair): Promise<SshTarget> {
    const target = {
      host: await ipOf(name),
      username: 'root',
      privateKey: user.privateOpenSsh,
      hostKey: hostKey.publicOpenSsh,
    };
    await waitForSsh(target, { timeoutMs: 60_000, pool });
    return target;
  }

  /** Every file of the NAS outside the containers' mountpoints is as it was. */
  function assertNasUntouched(when: string): void {
    const now = snapshotNasRoot(sim.nasRoot);
    const outside = (m: Map<string, unknown>) =>
      new Map([...m].filter(([path]) => !path.startsWith('var/lib/incus/storage-pools/')));
    assert.deepEqual(outside(now), outside(nasBefore), `the NAS's own files changed ${when}`);
  }

  before(async () => {
    const lab = await requireLab();
    engine = await createIncusEngine({ lab });
    // Reached directly over SSH: a NAS with a LAN bridge chosen for new instances (a stock NAS's automatic bridge
    // is reachable only through the NAS, which test/integration/incus/jump-host.test.ts covers).
    // A long call timeout: on a shared, loaded machine real snapshots can take a while.
    ({ sim, backend } = await startLanBridgeNas(engine, API_KEY, 'sim-safety', 120_000));
    nasBefore = snapshotNasRoot(sim.nasRoot);
  });

  after(async () => {
    pool.dispose();
    backend?.dispose();
    await sim?.close(); // removes the engine's containers and project
  });

  const trap = `${prefix}-trap`;
  test('Set Up SSH Access into a fresh sandbox with planted links refuses, naming the path', async () => {
    await backend.create({ name: trap, image: 'debian/12' });
    await asRoot(
      trap,
      [
        'ln -sf /etc/passwd /etc/hostname',
        'rm -rf /root/.ssh && ln -s /root/.ssh /root/.ssh',
        'mkdir -p /home && ln -sfn /home/truenas_admin /home/pixel',
      ].join(' && '),
    );
    const hostKey = generateHostKey();
    // The host key path is clean: it goes in; root's authorized_keys is behind a link: refused, nothing written.
    await assert.rejects(
      prepareSandboxAccess(backend, trap, { userPublicKey: user.publicOpenSsh, hostKey, pixelUser: true }),
      (e: Error) => {
        assert.ok(e instanceof SecurityError, String(e));
        assert.match(
          e.message,
          /Refusing to write \/root\/\.ssh\/authorized_keys into "[^"]+": \/root\/\.ssh is a symbolic link/,
        );
        assert.match(e.message, /leads to \/root\/\.ssh on the NAS/);
        return true;
      },
    );
    await assert.rejects(
      backend.writeFile(trap, '/etc/hostname', Buffer.from('x\n')),
      /\/etc\/hostname is a symbolic link/,
    );
    await assert.rejects(
      backend.writeFile(trap, '/home/pixel/.ssh/authorized_keys', Buffer.from('k\n'), { append: true }),
      /\/home\/pixel is a symbolic link/,
    );
    // A link planted after the last check cannot matter: the inside resolves to the container's own files.
    assert.equal(
      (await asRoot(trap, 'cat /etc/hostname')).split(':')[0],
      'root',
      "the container's own passwd",
    );
    assertNasUntouched('after Set Up SSH Access into the trapped sandbox');
  });

  test('once anything has run (after a restart), nothing is written through the NAS, link or not', async () => {
    await backend.restart(trap);
    const before = sim.callCount('filesystem.file_receive');
    await assert.rejects(
      prepareSandboxAccess(backend, trap, {
        userPublicKey: user.publicOpenSsh,
        hostKey: generateHostKey(),
        pixelUser: false,
      }),
      (e: Error) =>
        e instanceof SecurityError && /will not write \/etc\/ssh\/ssh_host_ed25519_key into/.test(e.message),
    );
    assert.equal(sim.callCount('filesystem.file_receive'), before, 'no file_receive was sent');
    assertNasUntouched('after the refused write');
  });

  const src = `${prefix}-src`;
  const copy = `${prefix}-cpy`;
  let srcKey: KeyPair;
  test('a clone of a sandbox full of links gets its identity over SSH, inside; restore writes nothing', async () => {
    srcKey = generateHostKey();
    await backend.create({ name: src, image: 'debian/12' });
    await prepareSandboxAccess(backend, src, {
      userPublicKey: user.publicOpenSsh,
      hostKey: srcKey,
      pixelUser: false,
    });
    await backend.restart(src);
    const srcTarget = await rootTarget(src, srcKey);
    const srcMachineId = (await pool.exec(srcTarget, 'cat /etc/machine-id')).stdout.toString().trim();
    // The agent's work: links to the NAS's files where the clone's identity is written.
    const planted = await pool.exec(
      srcTarget,
      [
        // (the clone must still boot: its machine-id and sshd's private key stay real files)
        'ln -sfn /etc/passwd /etc/ssh/ssh_host_ed25519_key.pub',
        'ln -sf /etc/passwd /etc/ssh/ssh_host_rsa_key.pub',
        'mkdir -p /var/lib/dbus && ln -sf /etc/machine-id /var/lib/dbus/machine-id',
        'mkdir -p /opt && ln -sfn /etc /opt/etc',
      ].join(' && '),
    );
    assert.equal(planted.exitCode, 0, `the links were planted: ${planted.stderr.toString()}`);
    await backend.createCheckpoint(src, 'trapped');
    await pool.close(srcTarget);

    await backend.clone({ sandbox: src, checkpoint: 'trapped' }, copy);
    assertNasUntouched('after the clone');
    await assert.rejects(backend.writeFile(copy, '/etc/hostname', Buffer.from('x\n')), SecurityError);

    // What the editor does for a clone: connect with the source's pinned key, write identity and keys inside.
    const viaSource = await rootTarget(copy, srcKey);
    const copyKey = generateHostKey();
    await prepareSandboxAccessOverSsh(pool, viaSource, copy, {
      userPublicKey: user.publicOpenSsh,
      hostKey: copyKey,
      pixelUser: true,
      newIdentity: true,
    });
    await pool.close(viaSource);
    await backend.restart(copy);
    const copyTarget = await rootTarget(copy, copyKey); // sshd serves the clone's own key now
    const seen = (
      await pool.exec(
        copyTarget,
        'cat /etc/hostname; cat /etc/machine-id; find /etc/ssh -maxdepth 1 -name "ssh_host_*" -type l | wc -l',
      )
    ).stdout
      .toString()
      .trim()
      .split('\n');
    assert.equal(seen[0], `px-${copy}`);
    assert.match(seen[1], /^[0-9a-f]{32}$/);
    assert.notEqual(seen[1], srcMachineId);
    assert.equal(seen[2], '0', 'no inherited host key file is a link any more');
    assertNasUntouched('after the clone got its identity');

    // /etc/hostname -> the NAS's /etc/passwd: Incus applies its hostname template at the clone's first start
    // through a root-confined handle (os.Root), refuses the link and the start fails; nothing is left behind.
    const again = await rootTarget(src, srcKey);
    await pool.exec(again, 'ln -sf /etc/passwd /etc/hostname');
    await pool.close(again);
    await backend.createCheckpoint(src, 'hostname-link');
    await assert.rejects(backend.clone({ sandbox: src, checkpoint: 'hostname-link' }, `${copy}2`), /start/i);
    await assert.rejects(backend.get(`${copy}2`), /does not exist/);
    assertNasUntouched('after the refused clone');

    // Restore: a rollback, no file written; the restored sandbox is not written through the NAS either.
    await backend.restoreCheckpoint(src, 'trapped');
    await assert.rejects(backend.writeFile(src, '/etc/motd', Buffer.from('x\n')), SecurityError);
    assertNasUntouched('after the restore');
  });

  test('the trap is real: file_receive without the checks overwrites the NAS file behind the link', async () => {
    const client = new TrueNASClient(
      { host: '127.0.0.1', port: sim.port, secure: false, username: 'truenas_admin', callTimeoutMs: 10_000 },
      API_KEY,
    );
    try {
      await client.call('filesystem.file_receive', [
        `${ROOTFS(trap)}/etc/hostname`,
        Buffer.from('px-trap\n').toString('base64'),
        { append: false, mode: 420, uid: -1, gid: -1 },
      ]);
    } finally {
      client.dispose();
    }
    assert.equal(
      readFileSync(join(sim.nasRoot, 'etc/passwd'), 'utf8'),
      'px-trap\n',
      'followed to the NAS passwd',
    );
    assert.notEqual(readFileSync('/etc/passwd', 'utf8'), 'px-trap\n', "never this machine's");
  });
});
