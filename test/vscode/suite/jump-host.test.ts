// Set Up Jump Host… in the extension host, with answers passed as arguments (modal dialogs are refused here):
// the jump host's key is fetched and pinned only when the caller's fingerprint matches, the login is checked
// against a real sshd, and the setting is saved; Add Server runs the same step at its end. Failures say what
// to fix (wrong key fingerprint, login refused, nothing listening) and save nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { fingerprint, generateKeyPair } from '../../../src/ssh/keys';
import { startSshd, type Sshd } from '../../lab/sshd';
import { startSimulator, type SimServer } from '../../sim/index';
import { API_KEY, pixelsApi, setServers, showView } from './helpers';

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
      username: 'admin',
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
