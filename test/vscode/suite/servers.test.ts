// Servers: Add Server… checks the address and key before saving (the key goes to SecretStorage, never to
// settings); Remove Server; a server from PIXELS_* variables with a settings override; importing its API key.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { createTrueNASBackend } from '../../../src/backends/truenas/index';
import { startSimulator, type SimServer } from '../../sim/index';
import { API_KEY, pixelsApi, setServers, showView } from './helpers';

suite('servers', () => {
  let sim: SimServer;

  suiteSetup(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
    await setServers([]);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    for (const k of ['PIXELS_TRUENAS_HOST', 'PIXELS_TRUENAS_API_KEY', 'PIXELS_TRUENAS_USERNAME'])
      delete process.env[k];
    await sim.close();
  });

  const servers = () =>
    vscode.workspace.getConfiguration('pixels').inspect<Record<string, unknown>[]>('servers')?.globalValue ??
    [];

  test('the pixels TOML file is read: a broken line is reported with file, line and key; the rest still loads', async () => {
    const api = await pixelsApi();
    const dir = mkdtempSync(join(tmpdir(), 'pixels-xdg-'));
    mkdirSync(join(dir, 'pixels'));
    const file = join(dir, 'pixels', 'config.toml');
    writeFileSync(
      file,
      ['[truenas]', 'host = "127.0.0.1"', 'port = = 1', 'username = "truenas_admin"', ''].join('\n'),
    );
    process.env.XDG_CONFIG_HOME = dir;
    try {
      await setServers([{ id: 'pixels-truenas', kind: 'truenas', port: sim.port, secure: false }]);
      assert.deepEqual(
        api.configProblems().map((p) => p.replace(/: .*$/, '')),
        [`${file}:3 (port)`],
      );
      // no stored key: PIXELS_DEMO_API_KEY is used, as the host is a loopback address
      process.env.PIXELS_DEMO_API_KEY = API_KEY;
      await vscode.commands.executeCommand('pixels.refresh');
      const roots = await api.treeChildren();
      assert.equal(roots.length, 1, api.viewReason());
      assert.equal(api.treeItem(roots[0]).label, '127.0.0.1 (pixels config)');
      assert.equal(
        (await api.treeChildren(roots[0])).length,
        3,
        'listed with username "truenas_admin" from line 4',
      );
    } finally {
      delete process.env.XDG_CONFIG_HOME;
      delete process.env.PIXELS_DEMO_API_KEY;
      await setServers([]);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(api.configProblems(), []);
  });

  test('Add Server… with a wrong key saves nothing', async () => {
    const api = await pixelsApi();
    const result = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'truenas',
      id: 'wrong',
      label: 'Wrong key',
      host: '127.0.0.1',
      port: sim.port,
      secure: false,
      username: 'truenas_admin',
      apiKey: '1-' + 'f'.repeat(64),
    });
    assert.equal(result, undefined);
    assert.equal(api.lastError()?.action, 'Add server');
    console.log(`wrong key: "${api.lastError()?.message}"`);
    assert.deepEqual(servers(), []);
  });

  test('Add Server… probes, saves the server without its key, and the tree shows it; Remove Server forgets it', async () => {
    const api = await pixelsApi();
    const id = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'truenas',
      id: 'added',
      label: 'Added',
      host: '127.0.0.1',
      port: sim.port,
      secure: false,
      username: 'truenas_admin',
      apiKey: API_KEY,
    });
    assert.equal(id, 'added', api.lastError()?.message);
    const saved = servers();
    assert.equal(saved.length, 1);
    assert.equal(saved[0].id, 'added');
    assert.ok(!JSON.stringify(saved).includes(API_KEY.slice(2)), 'the key is not in settings');
    const roots = await api.treeChildren();
    assert.equal(roots.length, 1);
    assert.equal((await api.treeChildren(roots[0])).length, 3);

    assert.equal(await vscode.commands.executeCommand('pixels.removeServer', { server: 'added' }), true);
    assert.deepEqual(servers(), []);
    assert.deepEqual(await api.treeChildren(), []);
    assert.equal(api.viewState(), 'noServers');
  });

  test('Add Server… connects to a TrueNAS 26 server (container.*) and the tree lists its sandboxes', async () => {
    const api = await pixelsApi();
    const nas26 = await startSimulator({ version: '26.0.0-BETA.3', apiKey: API_KEY, jobDurationMs: 10 });
    const direct = createTrueNASBackend(
      { serverId: 'direct26', host: '127.0.0.1', port: nas26.port, username: 'truenas_admin', secure: false },
      API_KEY,
    );
    try {
      await direct.create({ name: 'on26', image: 'debian/12', start: false });
      const id = await vscode.commands.executeCommand('pixels.addServer', {
        kind: 'truenas',
        id: 'nas26',
        label: 'NAS 26',
        host: '127.0.0.1',
        port: nas26.port,
        secure: false,
        username: 'truenas_admin',
        apiKey: API_KEY,
      });
      assert.equal(id, 'nas26', api.lastError()?.message);
      const roots = await api.treeChildren();
      assert.equal(roots.length, 1);
      const rows = await api.treeChildren(roots[0]);
      assert.deepEqual(
        rows.map((r) => api.treeItem(r).label),
        ['on26'],
      );
      assert.match(String(api.treeItem(rows[0]).description), /stopped/);
      assert.equal(nas26.callCount('virt.instance.query'), 0);
      assert.equal(await vscode.commands.executeCommand('pixels.removeServer', { server: 'nas26' }), true);
    } finally {
      direct.dispose();
      await setServers([]);
      await nas26.close();
    }
  });

  test('a server from PIXELS_* variables, overridden in settings, uses the env key; the key can be imported', async () => {
    const api = await pixelsApi();
    process.env.PIXELS_TRUENAS_HOST = '127.0.0.1';
    process.env.PIXELS_TRUENAS_USERNAME = 'truenas_admin';
    process.env.PIXELS_TRUENAS_API_KEY = API_KEY;
    // the CLI server is wss:// by default; the simulator speaks ws:// on loopback, so override that field only
    await setServers([{ id: 'pixels-truenas', kind: 'truenas', port: sim.port, secure: false }]);
    let roots = await api.treeChildren();
    assert.equal(roots.length, 1, api.viewReason());
    assert.equal(api.treeItem(roots[0]).label, '127.0.0.1 (pixels config)');
    assert.equal(await vscode.commands.executeCommand('pixels.importApiKeys'), 1);

    // without the variable's key, the imported one is used
    delete process.env.PIXELS_TRUENAS_API_KEY;
    await setServers([
      { id: 'pixels-truenas', kind: 'truenas', port: sim.port, secure: false, label: 'From env' },
    ]);
    await vscode.commands.executeCommand('pixels.refresh');
    roots = await api.treeChildren();
    assert.equal(roots.length, 1, api.viewReason());
    assert.equal(api.treeItem(roots[0]).label, 'From env');
  });
});
