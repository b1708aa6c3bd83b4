// Add Server with an Incus trust token, in the real extension host against the lab's HTTPS Incus: a token made
// with `incus config trust add` joins the server (client certificate made and kept 0600 in the extension's
// storage, paths only in settings, the tree lists the server); a spent, garbled or wrong-fingerprint token saves
// nothing anywhere; Remove Server deletes the files and the trust entry on the server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import * as vscode from 'vscode';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { requireLab, type Lab } from '../../lab/lab';
import { pixelsApi, setServers, showView, waitFor } from './helpers';

function makeToken(name: string): string {
  const out = execFileSync('incus', ['config', 'trust', 'add', name], { encoding: 'utf8' });
  return out.trim().split('\n').pop()!.trim();
}

suite('add server (Incus trust token)', function () {
  this.timeout(120_000);
  const prefix = `px-tok${Math.random().toString(16).slice(2, 8)}`;
  let lab: Lab;
  let admin: IncusRestClient;

  const servers = () =>
    vscode.workspace.getConfiguration('pixels').inspect<Record<string, unknown>[]>('servers')?.globalValue ??
    [];
  const trustEntries = async () =>
    (
      await admin.call<{ name: string; fingerprint: string }[]>('GET', '/1.0/certificates', {
        query: { recursion: '1' },
      })
    ).metadata.filter((c) => c.name.startsWith(prefix));

  suiteSetup(async () => {
    lab = await requireLab();
    admin = new IncusRestClient({ socketPath: lab.socket });
    await setServers([]);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    if (admin) {
      for (const c of await trustEntries().catch(() => []))
        await admin.call('DELETE', `/1.0/certificates/${c.fingerprint}`).catch(() => undefined);
      for (const name of ['spent', 'forged'].map((n) => `${prefix}-${n}`))
        try {
          execFileSync('incus', ['config', 'trust', 'revoke-token', name], { stdio: 'pipe' });
        } catch {
          // redeemed already
        }
      admin.close();
    }
  });

  setup(() => setServers([]));

  test('a garbled token and a cluster join token are refused in words; nothing is saved', async () => {
    const api = await pixelsApi();
    for (const [token, reason] of [
      ['not a token at all', /not an Incus trust token/],
      [Buffer.from('{"server_name":"m2","secret":"x"}').toString('base64'), /cluster join token/],
      [makeToken(`${prefix}-spent`).slice(0, 40), /not an Incus trust token/],
    ] as const) {
      const result = await vscode.commands.executeCommand('pixels.addServer', {
        kind: 'incus',
        trustToken: token,
      });
      assert.equal(result, undefined);
      assert.match(api.lastError()?.message ?? '', reason);
    }
    assert.deepEqual(servers(), []);
  });

  test('a token joins the server: key 0600 in private storage, paths in settings, the tree lists it; Remove undoes it', async () => {
    const api = await pixelsApi();
    const token = makeToken(`${prefix}-a`);
    const id = (await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'incus',
      trustToken: token,
      label: 'Lab over a token',
    })) as string | undefined;
    assert.ok(id, api.lastError()?.message);
    const [entry] = servers();
    assert.equal(entry?.url, `https://${lab.httpsAddress}`);
    const keyPath = entry?.clientKey as string;
    assert.match(keyPath, /incus-clients/);
    assert.equal(statSync(keyPath).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(keyPath)).mode & 0o777, 0o700);
    assert.match(readFileSync(keyPath, 'utf8'), /PRIVATE KEY/);
    const settingsText = JSON.stringify(servers());
    assert.doesNotMatch(settingsText, /PRIVATE KEY|BEGIN CERTIFICATE/, 'settings hold paths, not PEM');
    assert.ok(!settingsText.includes(token), 'the token is not kept');
    const entries = await trustEntries();
    assert.deepEqual(
      entries.map((e) => e.name),
      [`${prefix}-a`],
    );

    // The server answers the tree's list with the stored identity: the view shows its rows, or "no sandboxes yet"
    // (other suites' sandboxes come and go), never "unreachable".
    await vscode.commands.executeCommand('pixels.refresh', { server: id });
    const state = await waitFor('the list of the joined server', () => {
      const s = api.viewState();
      return s === 'ok' || s === 'empty' || s === 'unreachable' ? s : undefined;
    });
    assert.notEqual(state, 'unreachable', api.viewReason());

    // The same token again: spent, nothing saved.
    const again = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'incus',
      trustToken: token,
    });
    assert.equal(again, undefined);
    assert.match(api.lastError()?.message ?? '', /used already/);
    assert.equal(servers().length, 1);
    assert.equal((await trustEntries()).length, 1);

    // Remove Server: the files and the trust entry go.
    assert.equal(await vscode.commands.executeCommand('pixels.removeServer', { server: id }), true);
    assert.deepEqual(servers(), []);
    assert.equal(existsSync(dirname(keyPath)), false);
    assert.deepEqual(await trustEntries(), []);
  });

  test('a token from another server (fingerprint mismatch) sends nothing and saves nothing', async () => {
    const api = await pixelsApi();
    const token = makeToken(`${prefix}-forged`);
    const fields = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...fields, fingerprint: 'cd'.repeat(32) })).toString(
      'base64',
    );
    const result = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'incus',
      trustToken: forged,
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /presented certificate SHA-256 .* Nothing was sent/);
    assert.deepEqual(servers(), []);
    assert.deepEqual(await trustEntries(), []);
  });
});
