// The whole sandbox life on real Incus containers: create -> SSH with a pinned host key -> checkpoints ->
// restore an older one -> clone with its own identity -> destroy leaves nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { NotFoundError } from '../../../src/core/errors';
import type { BackendChange } from '../../../src/core/backend';
import type { Lab } from '../../lab/lab';
import { labBackend, leftovers, removeTestInstances, testPrefix, waitForIpv4 } from './helpers';

const run = promisify(execFile);

async function sshOk(dir: string, ip: string, command: string): Promise<string> {
  const { stdout } = await run(
    'ssh',
    [
      '-i',
      join(dir, 'id_user'),
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      '-o',
      'ConnectTimeout=3',
      `root@${ip}`,
      command,
    ],
    { timeout: 15_000 },
  );
  return stdout;
}

async function waitForSsh(dir: string, ip: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await sshOk(dir, ip, 'true');
      return;
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`ssh to ${ip} not ready within ${timeoutMs / 1000} s: ${(last as Error)?.message}`);
}

describe('incus backend on real containers', { timeout: 240_000 }, () => {
  const prefix = testPrefix();
  const a = `${prefix}-a`;
  const b = `${prefix}-b`;
  let lab: Lab;
  let backend: IncusBackend;
  let dir: string;
  const changes: BackendChange[] = [];

  before(async () => {
    ({ lab, backend } = await labBackend());
    dir = mkdtempSync(join(tmpdir(), 'px-incus-'));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_user')]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
    backend.onDidChange((c) => changes.push(c));
  });

  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let ipA = '';
  test('create (stopped), push keys before the first boot, start, SSH with the pinned host key', async () => {
    const created = await backend.create({
      name: a,
      image: lab.image,
      memoryMiB: 512,
      cpu: '1',
      start: false,
    });
    assert.equal(created.status, 'stopped');
    assert.equal(created.memoryMiB, 512);
    assert.equal(created.cpu, '1');
    assert.match(created.image ?? '', /Debian/);
    const hostPriv = readFileSync(join(dir, 'host_key'));
    const hostPub = readFileSync(join(dir, 'host_key.pub'));
    await backend.writeFile(a, '/etc/ssh/ssh_host_ed25519_key', hostPriv, { mode: 0o600 });
    await backend.writeFile(a, '/etc/ssh/ssh_host_ed25519_key.pub', hostPub, { mode: 0o644 });
    await backend.writeFile(a, '/root/.ssh/authorized_keys', readFileSync(join(dir, 'id_user.pub')), {
      mode: 0o600,
    });
    await backend.start(a);
    const running = await waitForIpv4(backend, a);
    assert.equal(running.status, 'running');
    assert.match(running.ipv4!, /^10\./);
    ipA = running.ipv4!;
    // IPv6 from the bridge too (DHCPv6); it may trail IPv4 by a moment.
    let v6 = running.ipv6;
    for (let i = 0; !v6 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      v6 = (await backend.get(a)).ipv6;
    }
    assert.ok(v6?.startsWith(lab.bridgeIpv6.split('::')[0] + ':'), `IPv6 in the bridge prefix: ${v6}`);
    // Host key known before the first connection: StrictHostKeyChecking=yes with only our key on file.
    writeFileSync(
      join(dir, 'known_hosts'),
      `${ipA} ${hostPub.toString().split(' ').slice(0, 2).join(' ')}\n`,
    );
    await waitForSsh(dir, ipA);
    assert.equal((await sshOk(dir, ipA, 'hostname')).trim(), `px-${a}`);
    const listed = (await backend.list()).find((s) => s.name === a);
    assert.ok(listed, 'list() shows the sandbox');
    assert.equal(listed.ipv4, ipA);
    assert.equal(listed.location, lab.clustered ? 'lab1' : undefined);
  });

  let first = '';
  test('checkpoint, change a file, restore an older checkpoint: the file is back', async () => {
    await backend.writeFile(a, '/root/marker', Buffer.from('v1\n'));
    const c1 = await backend.createCheckpoint(a);
    first = c1.label;
    assert.match(c1.label, /^px-\d{8}-\d{6}$/);
    const ex = await backend.exec(a, ['sh', '-c', 'echo v2 > /root/marker && cat /root/marker']);
    assert.equal(ex.exitCode, 0);
    assert.equal(ex.stdout.toString(), 'v2\n');
    await backend.createCheckpoint(a, 'second');
    await backend.writeFile(a, '/root/marker', Buffer.from('v3\n'), { append: true });
    assert.equal((await backend.readFile(a, '/root/marker')).toString(), 'v2\nv3\n');
    const listed = await backend.listCheckpoints(a);
    assert.deepEqual(
      listed.map((c) => c.label),
      ['second', first],
      'newest first',
    );
    assert.ok(listed.every((c) => c.createdAt instanceof Date && !isNaN(c.createdAt.getTime())));
    assert.ok(
      listed.every((c) => typeof c.sizeBytes === 'number'),
      'btrfs snapshots report a size',
    );

    await backend.restoreCheckpoint(a, first);
    assert.equal((await backend.readFile(a, '/root/marker')).toString(), 'v1\n');
    assert.deepEqual(
      (await backend.listCheckpoints(a)).map((c) => c.label),
      [first],
      'the newer checkpoint is gone after restoring an older one',
    );
    // Restoring a running sandbox leaves it running and reachable with the same pinned key.
    const back = await waitForIpv4(backend, a);
    assert.equal(back.status, 'running');
    await waitForSsh(dir, back.ipv4!);
    assert.equal((await sshOk(dir, back.ipv4!, 'cat /root/marker')).trim(), 'v1');
  });

  test('clone from a checkpoint: a new sandbox with its own IP, hostname, machine-id, MAC and host key', async () => {
    const clone = await backend.clone({ sandbox: a, checkpoint: first }, b);
    assert.equal(clone.name, b);
    const cb = await waitForIpv4(backend, b);
    const ca = await backend.get(a);
    assert.notEqual(cb.ipv4, ca.ipv4);
    const facts = async (name: string) => {
      const r = await backend.exec(name, [
        'sh',
        '-c',
        // the first-boot unit may still be writing host keys: wait for sshd to be up
        'for i in $(seq 50); do [ -s /etc/ssh/ssh_host_ed25519_key.pub ] && break; sleep 0.1; done; ' +
          'hostname; cat /etc/machine-id; cat /sys/class/net/eth0/address; cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub; cat /root/marker',
      ]);
      assert.equal(r.exitCode, 0, r.stderr.toString());
      return r.stdout.toString().trim().split('\n');
    };
    const [hostA, midA, macA, keyA, markerA] = await facts(a);
    const [hostB, midB, macB, keyB, markerB] = await facts(b);
    assert.equal(hostA, `px-${a}`);
    assert.equal(hostB, `px-${b}`);
    assert.match(midB, /^[0-9a-f]{32}$/);
    assert.notEqual(midB, midA);
    assert.notEqual(macB, macA);
    assert.ok(keyB && keyB !== keyA, 'the clone has a new SSH host key');
    assert.equal(markerA, 'v1');
    assert.equal(markerB, 'v1', 'the clone has the checkpoint content');
    assert.deepEqual(await backend.listCheckpoints(b), [], 'a clone starts without checkpoints');
  });

  test('clone from the current state of a running sandbox', async () => {
    const c = `${prefix}-c`;
    await backend.writeFile(a, '/root/now', Buffer.from('current\n'));
    await backend.clone({ sandbox: a }, c);
    assert.equal((await backend.readFile(c, '/root/now')).toString(), 'current\n');
    await backend.destroy(c);
  });

  test('stop, restart, start', async () => {
    await backend.stop(b, { timeoutSec: 20, force: true });
    assert.equal((await backend.get(b)).status, 'stopped');
    await backend.stop(b); // already stopped: no error
    await backend.restart(b); // restart of a stopped sandbox starts it
    assert.equal((await backend.get(b)).status, 'running');
    // Right after a start the container's init may miss the halt signal; the stop asks again instead of
    // sitting out the whole timeout.
    const t0 = Date.now();
    await backend.restart(b, { timeoutSec: 20, force: true });
    assert.ok(Date.now() - t0 < 12_000, `restart right after start took ${Date.now() - t0} ms`);
    assert.equal((await backend.get(b)).status, 'running');
  });

  test('events reached onDidChange for both sandboxes', () => {
    assert.ok(changes.some((c) => c.kind === 'sandbox' && c.name === a));
    assert.ok(changes.some((c) => c.kind === 'checkpoint' && c.name === a));
    assert.ok(changes.some((c) => c.kind === 'sandbox' && c.name === b));
  });

  test('destroy leaves nothing: no instances, no snapshots, no volumes', async () => {
    await backend.createCheckpoint(b, 'before-destroy');
    await backend.destroy(a);
    await backend.destroy(b);
    await assert.rejects(backend.get(a), NotFoundError);
    await assert.rejects(backend.listCheckpoints(b), NotFoundError);
    assert.deepEqual(await leftovers(lab, prefix), []);
    for (const pool of [lab.poolBtrfs, lab.poolDir]) {
      for (const kind of ['containers', 'containers-snapshots']) {
        const d = `/var/lib/incus/storage-pools/${pool}/${kind}`;
        if (existsSync(d))
          assert.deepEqual(
            readdirSync(d).filter((n) => n.startsWith(`px-${prefix}`)),
            [],
          );
      }
    }
  });
});
