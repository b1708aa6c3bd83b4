// The backend on the lab's real 3-member Incus cluster (test/lab/cluster-up.sh): placement on a member, one list
// call and one event stream for every member, a clone from a checkpoint landing on another member, SSH and exec on
// every member, a member whose daemon stops (its sandboxes shown as away, commands saying why, the rest working,
// events again once it is back) and an evacuation that moves a sandbox and a restore that brings it back;
// provisioning and the egress policy on a member other than the first; over HTTPS, the event stream moving to
// another member when its own stops.
// Members are stopped only here, and started again before the suite ends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createIncusBackend } from '../../../src/backends/incus/index';
import type { IncusBackend } from '../../../src/backends/incus/index';
import type { BackendChange } from '../../../src/core/backend';
import { MemberUnavailableError } from '../../../src/core/errors';
import type { Sandbox } from '../../../src/core/sandbox';
import { clusterIncus, requireCluster, startMembers, stopMember } from '../../lab/cluster';
import type { ClusterLab } from '../../lab/cluster';
import { countingProxy } from '../../lab/count-proxy';
import type { CountingProxy } from '../../lab/count-proxy';
import {
  allowEgress,
  backendExecutor,
  buildPolicy,
  denyEgress,
  provision,
  showEgress,
} from '../../../src/guest/index';
import { generateKeyPair } from '../../../src/ssh/index';
import { FAKE_MISE_INSTALLER } from '../guest/fake-mise';
import { fetchFrom, useTestResolver } from '../guest/helpers';
import { CLUSTER_NET, startInternet } from '../guest/internet';
import type { Internet } from '../guest/internet';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { makeSelfSignedCert } from '../../lab/tls';
import { removeTestInstances, sweepStaleTestInstances, testPrefix } from './helpers';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The DHCP block cluster-up.sh gives member pxmN: 10.79.0.(64·N)/26. */
function memberOfAddress(ip: string | undefined): string | undefined {
  const last = Number(ip?.split('.')[3]);
  return ip?.startsWith('10.79.0.') && last >= 64 ? `pxm${Math.floor(last / 64)}` : undefined;
}

/** A member's status straight from the cluster (not through the code under test). */
async function memberStatus(cluster: ClusterLab, member: string): Promise<string> {
  const { stdout } = await run('curl', [
    '-sf',
    '--max-time',
    '5',
    '--unix-socket',
    cluster.socket,
    `http://incus/1.0/cluster/members/${member}`,
  ]);
  return (JSON.parse(stdout) as { metadata: { status: string } }).metadata.status;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (${String(last)})` : ''}`);
    await sleep(250);
  }
}

describe('incus backend on a 3-member cluster', { timeout: 240_000 }, () => {
  const prefix = testPrefix();
  const a = `${prefix}-a`; // on pxm2
  const b = `${prefix}-b`; // placed by Incus
  const c = `${prefix}-c`; // clone of a's checkpoint, on pxm3
  let cluster: ClusterLab;
  let proxy: CountingProxy;
  let backend: IncusBackend;
  let dir: string;
  let stopped: string | undefined;
  let evacuated: string | undefined;
  let guardOn = false;
  let internet: Internet | undefined;
  /** The client certificate the HTTPS test had the cluster trust (removed at the end). */
  let trusted: string | undefined;
  /** The guard taken off the cluster network and deleted (setting off), by the code under test. */
  const guardOff = async () => {
    const off = createIncusBackend({ serverId: 'cluster', socketPath: cluster.socket, hostGuard: 'off' });
    try {
      await off.syncHostGuard(a, { mode: 'unrestricted', allow: [] });
      guardOn = false;
    } finally {
      off.dispose();
    }
  };

  const ssh = async (ip: string): Promise<string> => {
    const { stdout } = await run(
      'ssh',
      [
        ...['-i', join(dir, 'id'), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=accept-new'],
        ...[
          '-o',
          `UserKnownHostsFile=${join(dir, `known_${ip}`)}`,
          '-o',
          'ConnectTimeout=3',
          '-o',
          'LogLevel=ERROR',
        ],
        `root@${ip}`,
        'hostname',
      ],
      { timeout: 15_000 },
    );
    return stdout.trim();
  };
  const sshReady = (ip: string) => until(`ssh to ${ip}`, 30_000, () => ssh(ip));
  const withIp = (name: string) =>
    until(`${name} has an IPv4`, 30_000, async () => {
      const s = await backend.get(name);
      return s.ipv4 ? s : undefined;
    });
  const listed = async (name: string): Promise<Sandbox> => {
    const s = (await backend.list()).find((x) => x.name === name);
    assert.ok(s, `${name} is listed`);
    return s;
  };

  before(async () => {
    cluster = await requireCluster();
    await sweepStaleTestInstances(cluster);
    dir = mkdtempSync(join(tmpdir(), 'px-cluster-'));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
    proxy = await countingProxy(cluster.socket);
    backend = createIncusBackend({
      serverId: 'cluster',
      socketPath: proxy.path,
      network: cluster.network,
      storagePool: cluster.pool,
    });
  });

  after(async () => {
    // Whatever a failed test left: the member back, evacuation undone, our sandboxes gone.
    if (stopped) await startMembers(cluster).catch(() => undefined);
    if (guardOn) await guardOff().catch(() => undefined);
    await internet?.close();
    if (evacuated)
      await clusterIncus(cluster, 'cluster', 'restore', evacuated, '--force').catch(() => undefined);
    if (trusted) {
      const admin = new IncusRestClient({ socketPath: cluster.socket });
      await admin.call('DELETE', `/1.0/certificates/${trusted}`).catch(() => undefined);
      admin.close();
    }
    for (const name of [c, b, a]) await backend?.destroy(name).catch(() => undefined);
    if (cluster) await removeTestInstances(cluster, prefix);
    backend?.dispose();
    await proxy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('create: on the member asked for, or where Incus places it; SSH and exec on each', async () => {
    const info = await backend.info();
    assert.deepEqual(info.clusterMembers, cluster.members);
    assert.equal((await backend.capabilities()).clusterMembers, true);

    await backend.create({ name: a, image: cluster.image, target: 'pxm2', start: false });
    await backend.writeFile(a, '/root/.ssh/authorized_keys', readFileSync(join(dir, 'id.pub')), {
      mode: 0o600,
    });
    await backend.start(a);
    await backend.create({ name: b, image: cluster.image });
    const sa = await withIp(a);
    const sb = await withIp(b);
    assert.equal(sa.location, 'pxm2');
    assert.equal(memberOfAddress(sa.ipv4), 'pxm2', `${sa.ipv4} is from pxm2's block`);
    assert.ok(sb.location && cluster.members.includes(sb.location), `b placed on a member (${sb.location})`);
    assert.equal(memberOfAddress(sb.ipv4), sb.location);
    assert.equal(await sshReady(sa.ipv4!), `px-${a}`);
    const out = await backend.exec(b, ['cat', '/etc/hostname']);
    assert.equal(out.stdout.toString().trim(), `px-${b}`);

    await assert.rejects(
      backend.create({ name: `${prefix}-x`, image: cluster.image, target: 'pxm9' }),
      /Cluster member "pxm9" does not exist/,
    );
    await assert.rejects(
      backend.create({ name: `${prefix}-x`, image: cluster.image, target: '@nogroup' }),
      /Cluster member group "nogroup" does not exist/,
    );
  });

  test('list: one call for the sandboxes of every member (two round trips at most)', async () => {
    await backend.list(); // the server's description is read once per backend
    const before = proxy.requests.length;
    const all = await backend.list();
    const calls = proxy.requests.slice(before);
    assert.ok(calls.length <= 2, `list made ${calls.length} requests: ${calls.join(', ')}`);
    const mine = all.filter((s) => s.name.startsWith(prefix));
    assert.deepEqual(
      mine.map((s) => s.name),
      [a, b],
    );
    assert.ok(mine.every((s) => s.location && !s.memberAway));
  });

  test('a checkpoint cloned onto another member: there, running, with its own address; events from any member', async () => {
    const changes: BackendChange[] = [];
    const sub = backend.onDidChange((ch) => changes.push(ch));
    try {
      await backend.createCheckpoint(a, 'cp1');
      await assert.rejects(
        backend.clone({ sandbox: a, checkpoint: 'cp1', target: 'pxm9' }, `${prefix}-y`),
        /Cluster member "pxm9" does not exist/,
      );
      assert.ok(
        !(await backend.list()).some((s) => s.name === `${prefix}-y`),
        'nothing of the refused clone is left',
      );
      const made = await backend.clone({ sandbox: a, checkpoint: 'cp1', target: 'pxm3' }, c);
      assert.equal(made.location, 'pxm3');
      const sc = await withIp(c);
      assert.equal(memberOfAddress(sc.ipv4), 'pxm3');
      assert.equal(await sshReady(sc.ipv4!), `px-${c}`, 'the clone answers SSH with its own hostname');
      // A change made through another member (pxm3's own socket) reaches our one stream (on pxm1).
      changes.length = 0;
      await run('incus', ['stop', '-f', `px-${c}`], {
        env: { ...process.env, INCUS_DIR: cluster.memberDirs.pxm3 },
      });
      await until('the stop event of the clone', 15_000, async () =>
        changes.some((ch) => ch.name === c) ? true : undefined,
      );
      await backend.start(c);
      // Restore on a member other than the one our requests reach: what was written after cp1 is gone.
      await backend.writeFile(a, '/root/after-cp1', Buffer.from('x'));
      await backend.restoreCheckpoint(a, 'cp1');
      await assert.rejects(backend.readFile(a, '/root/after-cp1'), /not found|no such|does not exist/i);
      assert.equal((await backend.get(a)).status, 'running');
    } finally {
      sub.dispose();
    }
  });

  test('host guard: its ACL on the cluster network refuses this machine from sandboxes on every member', async () => {
    const host = cluster.linkIpv4.split('/')[0];
    const server = net.createServer((sock) => sock.end('hello\n'));
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const port = (server.address() as net.AddressInfo).port;
    const guarded = createIncusBackend({
      serverId: 'cluster',
      socketPath: proxy.path,
      network: cluster.network,
      storagePool: cluster.pool,
      hostGuard: 'network',
    });
    guardOn = true;
    const reaches = async (name: string) =>
      (
        await backend.exec(name, [
          'timeout',
          '5',
          'bash',
          '-c',
          `exec 3<>/dev/tcp/${host}/${port} && head -1 <&3`,
        ])
      ).exitCode === 0;
    try {
      // a and c were just restarted by the test before (restore, start): their network comes up first.
      for (const name of [a, c])
        await until(`${name} reaches this machine before the guard`, 30_000, async () =>
          (await reaches(name)) ? true : undefined,
        );
      const state = await guarded.syncHostGuard(a, { mode: 'agent', allow: [] });
      assert.equal(state.mode, 'network');
      assert.equal(state.network, cluster.network);
      // One ACL on the cluster's network: every member applies it to its own bridge.
      assert.equal(await reaches(a), false, 'a (pxm2) is refused');
      assert.equal(await reaches(c), false, 'c (pxm3) is refused');
      await guardOff();
      assert.equal(await reaches(a), true, 'with the guard off a reaches this machine again');
    } finally {
      if (guardOn) await guardOff();
      guarded.dispose();
      server.close();
    }
  });

  test('provisioning and the egress policy on another member (pxm3): the fake internet on the cluster link', async () => {
    // "The internet" for the cluster's sandboxes: documentation addresses on this machine's side of the private
    // link, which the members route to (no NAT; nothing leaves this machine).
    const net = await startInternet(cluster.link, cluster.linkIpv4, undefined, CLUSTER_NET);
    internet = net;
    const at = (host: string, path = '/') => `http://${host}:${net.port}${path}`;
    try {
      net.names.set('mirror.test', [CLUSTER_NET.movedV4]);
      for (const path of ['/node/index.json', '/npm/@openai/codex']) net.route(path, '{}');
      net.route('/mise-install.sh', FAKE_MISE_INSTALLER);
      await useTestResolver(backend, c, CLUSTER_NET.dnsV4);
      const exec = backendExecutor(backend, c);
      const outcomes = await provision(exec, {
        userPublicKeys: [generateKeyPair('cluster-provision').publicOpenSsh],
        devtools: true,
        tools: [
          { name: 'node', version: 'lts' },
          { name: 'npm:@openai/codex', version: 'latest' },
        ],
        packages: [],
        sources: {
          miseInstallerUrl: at('mirror.test', '/mise-install.sh'),
          npmRegistry: at('mirror.test', '/npm'),
          nodeMirror: at('mirror.test', '/node'),
        },
        egress: buildPolicy('allowlist', ['allowed.test']),
        timeouts: { mise: 30_000, tools: 30_000 },
      });
      const ran = outcomes.filter((o) => !o.alreadyDone).map((o) => o.id);
      for (const id of ['egress', 'mise', 'tools', 'close-sources'] as const)
        assert.ok(ran.includes(id), `${id} ran: ${ran.join(', ')}`);
      assert.ok(
        net.requests.some((r) => r.startsWith(`${CLUSTER_NET.movedV4} /npm/@openai/codex`)),
        'the tools came from the mirror',
      );
      const status = await showEgress(exec);
      assert.equal(status.policy.mode, 'allowlist');
      assert.equal(status.enforced, true);
      assert.equal(status.provisioningSources, 0);
      assert.equal((await fetchFrom(exec, at('allowed.test'))).exitCode, 0, 'allowed.test answers');
      for (const host of ['denied.test', 'mirror.test'])
        assert.equal((await fetchFrom(exec, at(host))).exitCode, 7, `${host} is refused`);
      await allowEgress(exec, 'denied.test');
      assert.equal((await fetchFrom(exec, at('denied.test'))).exitCode, 0, 'allowed at once');
      await denyEgress(exec, 'denied.test');
      assert.equal((await fetchFrom(exec, at('denied.test'))).exitCode, 7, 'refused again at once');
    } finally {
      await net.close();
      internet = undefined;
    }
  });

  test('a member whose daemon stops: its sandbox shown away, commands say why, the rest work, events resume', async () => {
    // Incus sends no event when a member stops answering: the backend's member watch (one call every 10 s while
    // its event stream is connected) says so, and the tree reloads on it, without a manual refresh.
    const seen: { at: number; change: BackendChange }[] = [];
    const watch = backend.onDidChange((change) => seen.push({ at: Date.now(), change }));
    const readsBefore = proxy.requests.length;
    stopped = 'pxm3';
    await stopMember(cluster, 'pxm3');
    const stoppedAt = Date.now();
    const offlineAt = await until('Incus counts pxm3 offline', 40_000, async () =>
      (await memberStatus(cluster, 'pxm3')) !== 'Online' ? Date.now() : undefined,
    );
    const said = await until('a change said for the away member', 15_000, async () =>
      seen.find((s) => s.at >= stoppedAt && s.change.kind === 'sandbox' && !s.change.name),
    );
    watch.dispose();
    const watchReads = proxy.requests
      .slice(readsBefore)
      .filter((r) => r.startsWith('GET /1.0/cluster/members')).length;
    const secs = (Date.now() - stoppedAt) / 1000;
    assert.ok(
      watchReads <= Math.ceil(secs / 10) + 1,
      `${watchReads} member reads in ${secs.toFixed(0)} s: one per 10 s, no storm`,
    );
    assert.ok(
      said.at - offlineAt < 12_000,
      `said ${((said.at - offlineAt) / 1000).toFixed(1)} s after Incus counted it offline`,
    );
    const away = await listed(c);
    assert.ok(away.memberAway, 'the reload after the change shows the clone away');
    assert.equal(away.location, 'pxm3');
    assert.match(away.memberAway!, /pxm3/);
    assert.notEqual(away.status, 'error', 'an away member is not an error of the sandbox');
    // The other members' sandboxes keep working.
    assert.equal((await listed(a)).memberAway, undefined);
    assert.equal((await backend.exec(a, ['true'])).exitCode, 0);
    // Commands on the away sandbox say why (after Incus marks the member offline: within its 11 s threshold).
    const err = await until('a command on the away sandbox refused with the reason', 30_000, async () => {
      try {
        await backend.exec(c, ['true']);
        return undefined;
      } catch (e) {
        return e instanceof MemberUnavailableError ? e : undefined;
      }
    });
    assert.equal(err.member, 'pxm3');
    // Once the cluster knows the member is away, a command says so at once (no waiting for it first).
    const t0 = Date.now();
    await assert.rejects(backend.exec(c, ['true']), MemberUnavailableError);
    assert.ok(Date.now() - t0 < 5_000, `refused after ${Date.now() - t0} ms`);
    assert.match(err.message, /Sandbox ".*-c" cannot be reached: cluster member pxm3 is offline/);

    const changes: BackendChange[] = [];
    const sub = backend.onDidChange((ch) => changes.push(ch));
    try {
      await startMembers(cluster);
      stopped = undefined;
      const back = await until('the clone back', 40_000, async () => {
        const s = await listed(c);
        return !s.memberAway && s.status === 'running' ? s : undefined;
      });
      assert.equal(back.location, 'pxm3');
      await backend.stop(c, { force: true });
      await until('events from pxm3 again', 15_000, async () =>
        changes.some((ch) => ch.name === c) ? true : undefined,
      );
    } finally {
      sub.dispose();
    }
  });

  test('evacuation moves a sandbox to another member and restore brings it back', async () => {
    // Local storage: Incus stops instances on evacuation unless told to migrate them.
    await clusterIncus(cluster, 'config', 'set', `px-${a}`, 'cluster.evacuate=migrate');
    evacuated = 'pxm2';
    await clusterIncus(cluster, 'cluster', 'evacuate', 'pxm2', '--force');
    const moved = await until('a moved off pxm2', 60_000, async () => {
      const s = await listed(a);
      return s.location !== 'pxm2' && s.status === 'running' ? s : undefined;
    });
    assert.ok(moved.location && ['pxm1', 'pxm3'].includes(moved.location));
    const ip = (await withIp(a)).ipv4!;
    assert.equal(memberOfAddress(ip), moved.location, 'a new address from its new member');
    assert.equal(await sshReady(ip), `px-${a}`);
    await clusterIncus(cluster, 'cluster', 'restore', 'pxm2', '--force');
    evacuated = undefined;
    await until('a back on pxm2', 60_000, async () => {
      const s = await listed(a);
      return s.location === 'pxm2' && s.status === 'running' ? s : undefined;
    });
  });

  test("over HTTPS, the event stream's member going down: it reconnects to another member, events still arrive", async () => {
    // Trusted like `incus config trust add-certificate`; every member presents the cluster's certificate.
    const admin = new IncusRestClient({ socketPath: cluster.socket });
    const { certPath, keyPath } = makeSelfSignedCert(dir, `px-${prefix}-client`);
    const x = new X509Certificate(readFileSync(certPath));
    await admin.call('POST', '/1.0/certificates', {
      body: {
        type: 'client',
        name: `px-${prefix}`,
        certificate: x.raw.toString('base64'),
        restricted: false,
      },
    });
    trusted = x.fingerprint256.replace(/:/g, '').toLowerCase();
    const server = await admin.call<{ environment: { certificate: string } }>('GET', '/1.0');
    admin.close();
    writeFileSync(join(dir, 'cluster.crt'), server.metadata.environment.certificate);
    const remote = createIncusBackend({
      serverId: 'cluster-https',
      url: `https://${cluster.httpsAddress}`, // pxm1
      clientCert: certPath,
      clientKey: keyPath,
      serverCert: join(dir, 'cluster.crt'),
    });
    const changes: BackendChange[] = [];
    const sub = remote.onDidChange((ch) => changes.push(ch));
    try {
      assert.ok((await remote.list()).some((s) => s.name === a));
      await until('the event stream connected', 15_000, async () =>
        changes.some((ch) => ch.kind === 'connection') ? true : undefined,
      );
      changes.length = 0;
      stopped = 'pxm1';
      await stopMember(cluster, 'pxm1');
      await until('the event stream connected to another member', 20_000, async () =>
        changes.some((ch) => ch.kind === 'connection') ? true : undefined,
      );
      // A change made on pxm2 (a lives there) reaches the stream, and the tree's reload works without pxm1.
      await until('a stopped through pxm2', 30_000, async () => {
        await run('incus', ['stop', '-f', `px-${a}`], {
          env: { ...process.env, INCUS_DIR: cluster.memberDirs.pxm2 },
        });
        return true;
      });
      await until('the stop event of a, from pxm2', 15_000, async () =>
        changes.some((ch) => ch.name === a) ? true : undefined,
      );
      const row = (await remote.list()).find((s) => s.name === a);
      assert.equal(row?.status, 'stopped');
      await startMembers(cluster);
      stopped = undefined;
    } finally {
      sub.dispose();
      remote.dispose();
    }
  });
});
