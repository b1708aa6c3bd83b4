// A stock NAS puts a sandbox on its automatic, NAT'd bridge: out of a laptop's reach. The lab models that with a
// bridge this machine's TCP clients cannot reach (test/lab/up.sh) and an sshd standing in for the NAS that can
// (test/lab/nas.ts). Through that jump host, every way the product reaches a sandbox works: readiness, exec
// (Run Command), a shell (Terminal), full provisioning, and OpenSSH with the generated config (Remote-SSH).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTrueNASBackend } from '../../../src/backends/truenas/index';
import type { Backend } from '../../../src/core/backend';
import { ConnectionError, NotAuthenticatedError, SecurityError } from '../../../src/core/errors';
import { buildPolicy, provision, sshExecutor } from '../../../src/guest/index';
import {
  connect,
  fingerprint,
  generateHostKey,
  generateKeyPair,
  isJumpHostFailure,
  KnownHosts,
  prepareSandboxAccess,
  SshConfigWriter,
  SshPool,
  waitForSsh,
  type ShellExit,
  type SshTarget,
} from '../../../src/ssh/index';
import { networkErrorCode } from '../../../src/ssh/connect';
import { requireLab, type Lab } from '../../lab/lab';
import { startNasSshd, type NasSshd } from '../../lab/nas';
import { createIncusEngine } from '../../sim/engines/incus';
import { startSimulator, type SimServer } from '../../sim/index';
import { testPrefix } from './helpers';

const API_KEY = '1-' + 'j'.repeat(64);

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// TrueNAS 26 keeps the automatic bridge (truenasbr0) and has no exec API: the same paths, with SSH access written
// into the rootfs before the first start.
for (const version of ['25.10', '26.0.0-BETA.3'] as const)
  describe(
    `sandboxes on the NAS automatic bridge (TrueNAS ${version}), reached through the NAS as SSH jump host`,
    { timeout: 300_000 },
    () => {
      const name = `${testPrefix()}-jmp`;
      const hostKey = generateHostKey();
      let lab: Lab;
      let sim: SimServer;
      let backend: Backend;
      let nas: NasSshd;
      let dir: string;
      let ip: string;
      let direct: SshTarget;
      let viaNas: SshTarget;
      const pool = new SshPool();

      before(async () => {
        lab = await requireLab();
        nas = await startNasSshd(lab);
        dir = await fs.mkdtemp(join(tmpdir(), 'pixels-jump-'));
        const engine = await createIncusEngine({ lab });
        sim = await startSimulator({ version, apiKey: API_KEY, engine, jobDurationMs: 10 });
        backend = createTrueNASBackend(
          { serverId: 'nas', host: '127.0.0.1', port: sim.port, username: 'truenas_admin', secure: false },
          API_KEY,
        );
        // virt.global bridge left automatic, as on a stock NAS: the sandbox lands on the NAT'd bridge.
        await backend.create({ name, image: 'debian/12' });
        await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.alloc(0), { mode: 0o600 });
        await prepareSandboxAccess(backend, name, {
          userPublicKey: nas.userKey.publicOpenSsh,
          hostKey,
          pixelUser: false,
        });
        // 25.x starts a new sandbox (it boots again with the keys); 26 creates it stopped.
        if ((await backend.get(name)).status === 'running') await backend.restart(name);
        else await backend.start(name);
        const deadline = Date.now() + 60_000;
        while (!ip && Date.now() < deadline) {
          ip = (await backend.get(name)).ipv4 ?? '';
          if (!ip) await new Promise((r) => setTimeout(r, 300));
        }
        assert.ok(ip, 'the sandbox got no IPv4');
        direct = {
          host: ip,
          username: 'root',
          privateKey: nas.userKey.privateOpenSsh,
          hostKey: hostKey.publicOpenSsh,
        };
        viaNas = { ...direct, label: `sandbox ${name}`, jump: nas.jump };
      });

      after(async () => {
        pool.dispose();
        backend?.dispose();
        await sim?.close(); // removes the engine's containers and project
        await nas?.sshd.stop();
        if (dir) await fs.rm(dir, { recursive: true, force: true });
      });

      test('the sandbox is on the automatic bridge and a direct connection fails at once', async () => {
        assert.match(ip, new RegExp(`^${lab.natBridgeIpv4.split('.').slice(0, 3).join('\\.')}\\.`));
        const started = Date.now();
        const err = await connect(direct, { readyTimeoutMs: 10_000 }).then(
          () => assert.fail('reached a sandbox on the automatic bridge directly'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof ConnectionError, String(err));
        assert.equal(networkErrorCode(err), 'EHOSTUNREACH');
        assert.ok(Date.now() - started < 5_000);
      });

      test('through the jump host: readiness, Run Command (exec) and Terminal (shell), one pooled hop', async () => {
        await waitForSsh(viaNas, { timeoutMs: 60_000, pool });
        const hostname = await pool.exec(viaNas, 'hostname');
        assert.equal(hostname.stdout.toString().trim(), `px-${name}`);
        const results = await Promise.all([1, 2, 3].map((i) => pool.exec(viaNas, `echo ${i}`)));
        assert.deepEqual(
          results.map((r) => r.stdout.toString().trim()),
          ['1', '2', '3'],
        );
        assert.equal(pool.jumpHostConnections, 1);
        const shell = await pool.shell(viaNas, { cols: 80, rows: 24 });
        let out = '';
        shell.onData((chunk) => (out += chunk.toString()));
        const exited = new Promise<ShellExit>((resolve) => shell.onExit(resolve));
        shell.write('echo "shell on $(hostname)"; exit 3\n');
        const exit = await exited;
        assert.match(out, new RegExp(`shell on px-${name}`));
        assert.equal(exit.exitCode, 3);
      });

      test('full provisioning through the jump host', async () => {
        const outcomes = await provision(sshExecutor(pool, viaNas), {
          userPublicKeys: [nas.userKey.publicOpenSsh],
          hostPublicKey: hostKey.publicOpenSsh,
          devtools: false,
          packages: [],
          egress: buildPolicy('unrestricted', []),
        });
        assert.ok(
          outcomes.every((o) => o.state === 'done'),
          JSON.stringify(outcomes.filter((o) => o.state !== 'done')),
        );
      });

      test('OpenSSH with the generated config (ProxyJump + pinned jump key) runs a command; ssh -G agrees', async () => {
        const keyFile = join(dir, 'id_ed25519');
        await fs.writeFile(keyFile, nas.userKey.privateOpenSsh, { mode: 0o600 });
        const knownHostsFile = join(dir, 'known_hosts');
        const known = new KnownHosts(knownHostsFile);
        await known.set(['px-jump.nas'], nas.sshd.hostKeyPub);
        await known.set([`px-${name}.nas`, ip], hostKey.publicOpenSsh);
        const configPath = join(dir, 'config');
        const writer = new SshConfigWriter({ configPath, hostsPath: join(dir, 'pixels', 'config') });
        const jumpEntry = await writer.upsertHost({
          alias: 'px-jump.nas',
          hostName: nas.sshd.host,
          port: nas.sshd.port,
          user: nas.user,
          identityFile: keyFile,
          knownHostsFile,
          hostKeyAlias: 'px-jump.nas',
        });
        const sandboxEntry = await writer.upsertHost({
          alias: `px-${name}.nas`,
          hostName: ip,
          user: 'root',
          identityFile: keyFile,
          knownHostsFile,
          proxyJump: 'px-jump.nas',
        });
        assert.deepEqual([...jumpEntry.warnings, ...sandboxEntry.warnings], []);
        const g = await run('ssh', ['-G', '-F', configPath, `px-${name}.nas`]);
        assert.match(g.stdout, /^proxyjump px-jump\.nas$/m);
        assert.match(g.stdout, new RegExp(`^hostname ${ip.replace(/\./g, '\\.')}$`, 'm'));
        const ssh = await run('ssh', ['-F', configPath, '-o', 'BatchMode=yes', `px-${name}.nas`, 'hostname']);
        assert.equal(ssh.code, 0, ssh.stderr);
        assert.equal(ssh.stdout.trim(), `px-${name}`);
        // The same alias without the hop cannot get there.
        const blocked = await run('ssh', [
          '-F',
          configPath,
          '-o',
          'BatchMode=yes',
          '-o',
          'ProxyJump=none',
          `px-${name}.nas`,
          'true',
        ]);
        assert.notEqual(blocked.code, 0);
      });

      test('a jump host presenting another key: SecurityError with both fingerprints, before any login', async () => {
        const other = generateKeyPair('not-the-nas');
        const wrong = { ...viaNas, jump: { ...nas.jump, hostKey: other.publicOpenSsh } };
        const fresh = new SshPool();
        try {
          const err = await fresh.exec(wrong, 'true').then(
            () => assert.fail('connected through a jump host with the wrong key'),
            (e: unknown) => e,
          );
          assert.ok(err instanceof SecurityError, String(err));
          assert.ok(isJumpHostFailure(err));
          assert.ok(err.message.includes(fingerprint(other.publicOpenSsh)), err.message);
          assert.ok(err.message.includes(fingerprint(nas.sshd.hostKeyPub)), err.message);
          assert.match(err.message, /jump host|NAS jump host/);
          // Readiness gives up at once instead of polling until its deadline.
          const started = Date.now();
          await assert.rejects(waitForSsh(wrong, { timeoutMs: 30_000, pool: fresh }), SecurityError);
          assert.ok(Date.now() - started < 5_000);
        } finally {
          fresh.dispose();
        }
      });

      test('a wrong jump user or an unknown key is refused with what to check on the NAS', async () => {
        const asRoot = { ...viaNas, jump: { ...nas.jump, username: 'root' } };
        const err = await connect(asRoot).then(
          () => assert.fail('logged in to the NAS as root'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof NotAuthenticatedError, String(err));
        assert.match(err.message, /truenas_admin/);
        const stranger = generateKeyPair('stranger');
        await assert.rejects(
          connect({ ...viaNas, jump: { ...nas.jump, privateKey: stranger.privateOpenSsh } }),
          NotAuthenticatedError,
        );
      });
    },
  );
