// Set Up Jump Host… in the extension host, with answers passed as arguments (modal dialogs are refused here):
// the jump host's key is fetched and pinned only when the caller's fingerprint matches, the login is checked
// against a real sshd, and the setting is saved; Add Server runs the same step at its end. Failures say what
// to fix (wrong key fingerprint, login refused, nothing listening) and save nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { fingerprint, generateKeyPair } from '../../../src/ssh/keys';
import { requireLab, type Lab } from '../../lab/lab';
import { startNasSshd, type NasSshd } from '../../lab/nas';
import { startSshd, type Sshd } from '../../lab/sshd';
import { createIncusEngine } from '../../sim/engines/incus';
import { startSimulator, type SimServer } from '../../sim/index';
import {
  API_KEY,
  pixelsApi,
  sandboxRows,
  setServers,
  showView,
  simServer,
  terminalRoundTrip,
  waitFor,
} from './helpers';

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
}

suite('jump host', function () {
  this.timeout(120_000);
  let sim: SimServer;
  let sshd: Sshd;
  let dir: string;
  const userKey = generateKeyPair('pixels-jump-ext-test');
  const pixels = () => vscode.workspace.getConfiguration('pixels');
  const servers = () => pixels().inspect<Record<string, unknown>[]>('servers')?.globalValue ?? [];
  const knownHosts = () => readFileSync(join(dir, 'ssh', 'known_hosts'), 'utf8');

  suiteSetup(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pixels-jump-ext-'));
    writeFileSync(join(dir, 'id_ed25519'), userKey.privateOpenSsh, { mode: 0o600 });
    process.env.PIXELS_SSH_DIR = join(dir, 'ssh');
    await pixels().update('ssh.identityFile', join(dir, 'id_ed25519'), vscode.ConfigurationTarget.Global);
    sshd = await startSshd({ authorizedKeys: [userKey.publicOpenSsh] });
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY });
    await setServers([]);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    await pixels().update('ssh.identityFile', undefined, vscode.ConfigurationTarget.Global);
    delete process.env.PIXELS_SSH_DIR;
    await sim?.close();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('Add Server ends with the jump host: key pinned on a matching fingerprint, login checked, setting saved', async () => {
    const api = await pixelsApi();
    const id = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'truenas',
      id: 'nas',
      label: 'NAS',
      host: '127.0.0.1',
      port: sim.port,
      secure: false,
      username: 'truenas_admin',
      apiKey: API_KEY,
      jumpHost: { port: sshd.port, user: sshd.user, trust: fingerprint(sshd.hostKeyPub) },
    });
    assert.equal(id, 'nas', api.lastError()?.message);
    const saved = servers().find((s) => s.id === 'nas');
    // The host is the server's own (the default), so only port and user are written.
    assert.deepEqual(saved?.jumpHost, { port: sshd.port, user: sshd.user });
    const [, type, key] = /^px-jump\.nas (\S+) (\S+)$/m.exec(knownHosts()) ?? [];
    assert.equal(`${type} ${key}`, sshd.hostKeyPub.split(' ').slice(0, 2).join(' '));
  });

  test('a fingerprint other than the one presented: SecurityError with both, nothing pinned or saved', async () => {
    const api = await pixelsApi();
    await setServers([{ id: 'nas', kind: 'truenas', host: '127.0.0.1', port: sim.port, secure: false }]);
    const before = knownHosts();
    const other = fingerprint(generateKeyPair('other').publicOpenSsh);
    const result = await vscode.commands.executeCommand('pixels.setupJumpHost', {
      server: 'nas',
      host: '127.0.0.1',
      port: sshd.port,
      user: sshd.user,
      trust: other,
    });
    assert.equal(result, undefined);
    const message = api.lastError()?.message ?? '';
    assert.ok(message.includes(other) && message.includes(fingerprint(sshd.hostKeyPub)), message);
    assert.equal(knownHosts(), before);
    assert.equal(servers().find((s) => s.id === 'nas')?.jumpHost, undefined);
  });

  test('a login the jump host refuses, and a host with no SSH service, say what to check; nothing saved', async () => {
    const api = await pixelsApi();
    const refused = await vscode.commands.executeCommand('pixels.setupJumpHost', {
      server: 'nas',
      host: '127.0.0.1',
      port: sshd.port,
      user: 'nobody',
      trust: fingerprint(sshd.hostKeyPub),
    });
    assert.equal(refused, undefined);
    assert.match(api.lastError()?.message ?? '', /authentication as nobody failed.*truenas_admin/s);
    const off = await vscode.commands.executeCommand('pixels.setupJumpHost', {
      server: 'nas',
      host: '127.0.0.1',
      port: await closedPort(),
      user: sshd.user,
      trust: fingerprint(sshd.hostKeyPub),
    });
    assert.equal(off, undefined);
    assert.match(api.lastError()?.message ?? '', /ECONNREFUSED.*SSH service running/s);
    assert.equal(servers().find((s) => s.id === 'nas')?.jumpHost, undefined);
  });

  test('trust: false changes nothing; the right fingerprint sets it up', async () => {
    const no = await vscode.commands.executeCommand('pixels.setupJumpHost', {
      server: 'nas',
      port: sshd.port,
      user: sshd.user,
      trust: false,
    });
    assert.equal(no, undefined);
    assert.equal(servers().find((s) => s.id === 'nas')?.jumpHost, undefined);
    const yes = (await vscode.commands.executeCommand('pixels.setupJumpHost', {
      server: 'nas',
      port: sshd.port,
      user: sshd.user,
      trust: fingerprint(sshd.hostKeyPub),
    })) as { host: string; fingerprint: string } | undefined;
    assert.equal(yes?.host, '127.0.0.1');
    assert.equal(yes?.fingerprint, fingerprint(sshd.hostKeyPub));
    assert.deepEqual(servers().find((s) => s.id === 'nas')?.jumpHost, { port: sshd.port, user: sshd.user });
  });
});

// The whole editor path against real containers: a TrueNAS (simulator on the Incus lab) whose virt bridge is the
// stock automatic one, so the sandbox is out of this machine's reach except through the NAS stand-in's sshd.
suite('jump host: a sandbox on the NAS automatic bridge (real Incus lab)', function () {
  this.timeout(300_000);
  let lab: Lab;
  let sim: SimServer;
  let nas: NasSshd;
  let dir: string;
  const name = `j${randomBytes(3).toString('hex')}-nat`;
  const alias = `px-${name}.labnas`;
  const pixels = () => vscode.workspace.getConfiguration('pixels');
  const g = vscode.ConfigurationTarget.Global;

  suiteSetup(async () => {
    lab = await requireLab();
    nas = await startNasSshd(lab);
    dir = mkdtempSync(join(tmpdir(), 'pixels-jump-lab-'));
    // One key for the NAS user and the sandbox, as a user's Pixels key is.
    writeFileSync(join(dir, 'id_ed25519'), nas.userKey.privateOpenSsh, { mode: 0o600 });
    writeFileSync(join(dir, 'user-config'), '# my own settings\nHost *\n  ServerAliveInterval 30\n');
    process.env.PIXELS_SSH_DIR = join(dir, 'ssh');
    process.env.PIXELS_SSH_USER = 'root'; // the lab image has no pixel user
    await pixels().update('ssh.identityFile', join(dir, 'id_ed25519'), g);
    await pixels().update('ssh.configFile', join(dir, 'user-config'), g);
    sim = await startSimulator({
      version: '25.10',
      apiKey: API_KEY,
      engine: await createIncusEngine({ lab }),
      jobDurationMs: 10,
    });
    await setServers([{ ...simServer(sim.port, 'labnas'), label: 'Lab NAS' }]);
    await (await pixelsApi()).setApiKey('labnas', API_KEY);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    await pixels().update('ssh.identityFile', undefined, g);
    await pixels().update('ssh.configFile', undefined, g);
    delete process.env.PIXELS_SSH_DIR;
    delete process.env.PIXELS_SSH_USER;
    await sim?.close(); // removes the engine's containers and project
    await nas?.sshd.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('set up the jump host, create and set up SSH: the sandbox is on the automatic bridge', async () => {
    const api = await pixelsApi();
    const jump = await vscode.commands.executeCommand('pixels.setupJumpHost', {
      server: 'labnas',
      port: nas.sshd.port,
      user: nas.user,
      trust: fingerprint(nas.sshd.hostKeyPub),
    });
    assert.ok(jump, api.lastError()?.message);
    const created = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'labnas',
      name,
      image: 'debian/12',
      egress: 'unrestricted',
      provision: false,
    });
    assert.ok(created, api.lastError()?.message);
    const ok = await vscode.commands.executeCommand('pixels.setupSsh', {
      server: 'labnas',
      name,
      confirm: true,
    });
    assert.equal(ok, true, api.lastError()?.message);
    const row = await waitFor('an address', async () => {
      const r = (await sandboxRows(api, 'labnas')).get(name);
      return r?.type === 'sandbox' && r.sandbox.ipv4 ? r.sandbox : undefined;
    });
    assert.match(row.ipv4!, new RegExp(`^${lab.natBridgeIpv4.split('.').slice(0, 3).join('\\.')}\\.`));
  });

  test('Run Command and Open Terminal go through the jump host', async () => {
    const api = await pixelsApi();
    const code = await vscode.commands.executeCommand('pixels.runCommand', {
      server: 'labnas',
      name,
      command: `test "$(hostname)" = px-${name}`,
      showLogs: false,
    });
    assert.equal(code, 0, api.lastError()?.message);
    assert.equal(await terminalRoundTrip('labnas', name, 'exit 7'), 7);
  });

  test('Open in Sandbox writes ProxyJump to the pinned jump entry; OpenSSH with the user config gets in', async () => {
    const api = await pixelsApi();
    const calls: unknown[][] = [];
    const spy = vscode.commands.registerCommand('vscode.openFolder', (...args: unknown[]) => {
      calls.push(args);
    });
    try {
      const uri = await vscode.commands.executeCommand('pixels.openInSandbox', {
        server: 'labnas',
        name,
        requireRemoteSsh: false,
      });
      assert.equal(uri, `vscode-remote://ssh-remote+${alias}/home/root`, api.lastError()?.message);
    } finally {
      spy.dispose();
    }
    const hosts = readFileSync(join(dir, 'ssh', 'config'), 'utf8');
    assert.match(hosts, new RegExp(`Host ${alias.replace(/\./g, '\\.')}\\n[^]*?ProxyJump px-jump\\.labnas`));
    assert.match(hosts, /Host px-jump\.labnas\n[^]*?HostKeyAlias px-jump\.labnas/);
    const userConfig = join(dir, 'user-config');
    const g2 = spawnSync('ssh', ['-G', '-F', userConfig, alias], { encoding: 'utf8' });
    assert.match(g2.stdout, /^proxyjump px-jump\.labnas$/m);
    const ssh = spawnSync('ssh', ['-F', userConfig, '-o', 'BatchMode=yes', alias, 'hostname'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(ssh.status, 0, ssh.stderr);
    assert.equal(ssh.stdout.trim(), `px-${name}`);
  });
});
