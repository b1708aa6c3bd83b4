// Add Server against a NAS with a self-signed certificate (the simulator over TLS), in the real extension host:
// the certificate is judged before any key is sent, pinned in settings on "Trust", the key goes to SecretStorage;
// a changed certificate is refused with both fingerprints and only "Trust New Certificate…" with an explicit yes
// re-pins it. Modal dialogs are refused in this mode, so the trust answer is passed as an argument (the expected
// fingerprint: trusted only if the server presents exactly that certificate).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { startSimulator, type SimServer } from '../../sim/index';
import { makeSelfSignedCert, type TestCert } from '../../lab/tls';
import { API_KEY, pixelsApi, setServers, showView, waitFor } from './helpers';

suite('add server (self-signed NAS)', () => {
  let dir: string;
  let certA: TestCert;
  let certB: TestCert;
  let sim: SimServer;

  const servers = () =>
    vscode.workspace.getConfiguration('pixels').inspect<Record<string, unknown>[]>('servers')?.globalValue ??
    [];

  suiteSetup(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pixels-addsrv-'));
    certA = makeSelfSignedCert(dir, 'a', { cn: 'truenas.local' });
    certB = makeSelfSignedCert(dir, 'b', { cn: 'truenas.local' });
    sim = await startSimulator({
      version: '25.10',
      apiKey: API_KEY,
      seed: true,
      username: 'truenas_admin',
      tls: { key: certA.key, cert: certA.cert },
    });
    await setServers([]);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('addresses are refused with a specific reason before anything is contacted', async () => {
    const api = await pixelsApi();
    for (const [address, reason] of [
      ['nas.lan:99999', /Port 99999 is out of range/],
      ['http://192.168.1.10', /Plain http:\/\/ would send the API key without TLS/],
      ['999.1.1.1', /not a valid IPv4 address/],
    ] as const) {
      const result = await vscode.commands.executeCommand('pixels.addServer', {
        kind: 'truenas',
        address,
        apiKey: API_KEY,
        trust: true,
      });
      assert.equal(result, undefined);
      assert.match(api.lastError()?.message ?? '', reason);
    }
    assert.deepEqual(servers(), []);
  });

  test('not trusting the certificate saves nothing and sends no key', async () => {
    const api = await pixelsApi();
    const before = sim.callCount('auth.login_ex');
    const result = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'truenas',
      address: `https://127.0.0.1:${sim.port}`,
      apiKey: API_KEY,
      trust: false,
    });
    assert.equal(result, undefined);
    const message = api.lastError()?.message ?? '';
    assert.match(message, /You did not trust the certificate of 127\.0\.0\.1:\d+/);
    assert.ok(message.includes(certA.fingerprint), message);
    assert.equal(sim.callCount('auth.login_ex'), before, 'no key was sent');
    assert.deepEqual(servers(), []);
  });

  test('Trust pins the certificate in settings; the key is in SecretStorage only; the tree lists the NAS', async () => {
    const api = await pixelsApi();
    const id = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'truenas',
      id: 'nas',
      address: `https://127.0.0.1:${sim.port}/ui/dashboard`,
      apiKey: API_KEY,
      trust: certA.fingerprint, // what the person compared with the NAS's UI
    });
    assert.equal(id, 'nas', api.lastError()?.message);
    const saved = servers();
    assert.equal(saved.length, 1);
    assert.equal(saved[0].tlsFingerprint, certA.fingerprint);
    assert.equal(saved[0].username, 'truenas_admin', 'the 25.04+ default user');
    assert.equal(saved[0].secure, true);
    assert.ok(!JSON.stringify(saved).includes(API_KEY.slice(2, 20)), 'the key is not in settings');
    assert.equal(await api.hasApiKey('nas'), true);
    const roots = await api.treeChildren();
    assert.equal(roots.length, 1, api.viewReason());
    assert.equal((await api.treeChildren(roots[0])).length, 3);
  });

  test('a changed certificate is refused with both fingerprints; Trust New Certificate… re-pins only on yes', async () => {
    const api = await pixelsApi();
    const port = sim.port;
    await sim.close();
    sim = await startSimulator({
      version: '25.10',
      apiKey: API_KEY,
      seed: true,
      username: 'truenas_admin',
      port,
      tls: { key: certB.key, cert: certB.cert },
    });
    await vscode.commands.executeCommand('pixels.refresh');
    const reason = await waitFor('the view to say the server is refused', () =>
      api.viewState() === 'unreachable' ? api.viewReason() : undefined,
    );
    assert.ok(reason.includes(certA.fingerprint), `pinned fingerprint in: ${reason}`);
    assert.ok(reason.includes(certB.fingerprint), `new fingerprint in: ${reason}`);
    assert.equal(sim.callCount(), 0, 'the changed server got no call, so no key');

    // "No" (or a different certificate than the one the person checked) leaves the pin as it was.
    assert.equal(
      await vscode.commands.executeCommand('pixels.trustNewCertificate', { server: 'nas', trust: false }),
      false,
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.trustNewCertificate', {
        server: 'nas',
        trust: certA.fingerprint,
      }),
      false,
    );
    assert.equal(servers()[0].tlsFingerprint, certA.fingerprint);
    assert.equal(sim.callCount(), 0);

    // From the refused connection's button (which passes the host), with an explicit yes.
    assert.equal(
      await vscode.commands.executeCommand('pixels.trustNewCertificate', {
        host: '127.0.0.1',
        trust: certB.fingerprint,
      }),
      true,
      api.lastError()?.message,
    );
    assert.equal(servers()[0].tlsFingerprint, certB.fingerprint);
    await vscode.commands.executeCommand('pixels.refresh');
    const roots = await waitFor('the tree to list the NAS again', async () => {
      const r = await api.treeChildren();
      return r.length === 1 && api.viewState() !== 'unreachable' ? r : undefined;
    });
    assert.equal((await api.treeChildren(roots[0])).length, 3);
    assert.ok(sim.callCount('auth.login_ex') >= 1);
  });

  test('a key of another user names the owner; nothing is saved', async () => {
    const api = await pixelsApi();
    const result = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'truenas',
      id: 'other',
      address: `127.0.0.1:${sim.port}`,
      username: 'root',
      apiKey: API_KEY,
      trust: certB.fingerprint,
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /belongs to user "truenas_admin", not "root"/);
    assert.deepEqual(
      servers().map((s) => s.id),
      ['nas'],
    );
    assert.equal(await api.hasApiKey('other'), false);
  });
});
