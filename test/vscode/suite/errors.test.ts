// Error paths leave nothing half-made and tell the user why in one sentence.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { startSimulator, type SimServer } from '../../sim/index';
import { API_KEY, pixelsApi, setServers, showView, simServer, waitFor } from './helpers';

suite('error paths', () => {
  let sim: SimServer;

  suiteSetup(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY });
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    await sim.close();
  });

  async function instances(): Promise<string[]> {
    return (await sim.engine.listInstances()).map((i) => i.name);
  }

  test('no server configured: the "Add Server…" welcome state', async () => {
    const api = await pixelsApi();
    await setServers([]);
    assert.deepEqual(await api.treeChildren(), []);
    assert.equal(api.viewState(), 'noServers');
  });

  test('invalid name: refused before reaching the server', async () => {
    const api = await pixelsApi();
    await api.setApiKey('sim', API_KEY);
    await setServers([simServer(sim.port)]);
    const calls = sim.callCount('virt.instance.create');
    const result = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'sim',
      name: 'Bad Name!',
      provision: false,
      egress: 'unrestricted',
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /letters, digits and hyphens/);
    assert.equal(sim.callCount('virt.instance.create'), calls);
    assert.deepEqual(await instances(), []);
  });

  test('a job that fails on the server: its reason is shown and no sandbox is left', async () => {
    const api = await pixelsApi();
    await api.setApiKey('sim', API_KEY);
    await setServers([simServer(sim.port)]);
    sim.faults.failNextJob('Image ubuntu/99.99 not found');
    const result = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'sim',
      name: 'doomed',
      provision: false,
      egress: 'unrestricted',
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /not found/i);
    assert.deepEqual(await instances(), []);
    sim.faults.reset();
  });

  test('a restricted egress mode that cannot be put in (no exec API, no SSH keys) is refused before anything is created', async () => {
    const api = await pixelsApi();
    await setServers([simServer(sim.port)]);
    const result = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'sim',
      name: 'locked',
      provision: false,
      egress: 'agent',
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /egress rules go in over SSH, which provisioning sets up/);
    assert.deepEqual(await instances(), []);
  });

  test('bad API key: "unreachable" state with the reason, nothing created', async () => {
    const api = await pixelsApi();
    await api.setApiKey('bad', '1-' + 'b'.repeat(64));
    await setServers([simServer(sim.port, 'bad')]);
    await vscode.commands.executeCommand('pixels.refresh');
    assert.deepEqual(await api.treeChildren(), []);
    assert.equal(api.viewState(), 'unreachable');
    assert.match(api.viewReason() ?? '', /Simulator: .*(key|auth|credential)/i);
    const result = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'bad',
      name: 'nope',
      provision: false,
      egress: 'unrestricted',
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /key|auth|credential/i);
    assert.deepEqual(await instances(), []);
  });

  test('server down: "unreachable" with Retry, then recovers when it is back', async () => {
    const api = await pixelsApi();
    const down = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
    const port = down.port;
    await down.close();
    await api.setApiKey('down', API_KEY);
    await setServers([simServer(port, 'down')]);
    await vscode.commands.executeCommand('pixels.refresh');
    assert.deepEqual(await api.treeChildren(), []);
    assert.equal(api.viewState(), 'unreachable');
    const result = await vscode.commands.executeCommand('pixels.start', { server: 'down', name: 'web' });
    assert.equal(result, undefined);
    assert.ok(api.lastError()?.message, 'a reason is shown');

    const back = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true, port });
    try {
      await waitFor(
        'the server to be listed again',
        async () => {
          await vscode.commands.executeCommand('pixels.refresh');
          const roots = await api.treeChildren();
          return roots.length > 0 || undefined;
        },
        30_000,
      );
      assert.equal(api.viewState(), 'ok');
    } finally {
      await setServers([]);
      await back.close();
    }
  });

  test('one of two servers down: both listed, the down one marked with its reason and a retry row', async () => {
    const api = await pixelsApi();
    await api.setApiKey('sim', API_KEY);
    await api.setApiKey('gone', API_KEY);
    const gone = await startSimulator({ version: '25.10', apiKey: API_KEY });
    const port = gone.port;
    await gone.close();
    await setServers([simServer(sim.port), { ...simServer(port, 'gone'), label: 'Gone' }]);
    await vscode.commands.executeCommand('pixels.refresh');
    const roots = await api.treeChildren();
    assert.equal(roots.length, 2);
    assert.equal(api.viewState(), 'ok');
    const down = roots.find((n) => n.type === 'server' && n.serverId === 'gone')!;
    const item = api.treeItem(down);
    assert.equal(item.contextValue, 'server+error');
    assert.equal(item.description, 'unreachable');
    assert.equal(item.color, 'charts.red');
    const [info] = await api.treeChildren(down);
    assert.equal(info.type, 'info');
    assert.ok(api.treeItem(info).label.length > 0);
  });

  test('no API key stored: a clear message naming Add Server', async () => {
    const api = await pixelsApi();
    await setServers([simServer(sim.port, 'nokey')]);
    await vscode.commands.executeCommand('pixels.refresh');
    assert.deepEqual(await api.treeChildren(), []);
    assert.equal(api.viewState(), 'unreachable');
    assert.match(api.viewReason() ?? '', /No API key is stored.*Add Server/);
  });
});
