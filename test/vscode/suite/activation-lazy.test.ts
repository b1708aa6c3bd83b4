// Runs first (file order): activation must not load the backends or ssh2, nor open a socket, before the view is
// shown; showing the view connects to the configured server. Logs the activation time.
import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { startSimulator, type SimServer } from '../../sim/index';
import { API_KEY, EXTENSION_ID, pixelsApi, setServers, showView, simServer, waitFor } from './helpers';

suite('activation is lazy', () => {
  let sim: SimServer;

  suiteSetup(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
    await setServers([simServer(sim.port)]);
  });

  suiteTeardown(async () => {
    await setServers([]);
    await sim.close();
  });

  test('activate() loads no backend and no ssh2, and opens no socket', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext);
    const wasActive = ext.isActive;
    const started = performance.now();
    const api = await pixelsApi();
    const ms = performance.now() - started;
    console.log(
      wasActive
        ? `activation: already active (activate() itself took ${api.activationMs.toFixed(1)} ms)`
        : `activation: ${ms.toFixed(1)} ms including module load; activate() body ${api.activationMs.toFixed(1)} ms`,
    );
    assert.deepEqual(api.loadedLayers(), [], 'no lazy layer loaded at activation');
    const ssh2 = Object.keys(require.cache).filter((k) => /[\\/]node_modules[\\/]ssh2[\\/]/.test(k));
    assert.deepEqual(ssh2, [], 'ssh2 is not in require.cache');
    await api.setApiKey('sim', API_KEY);
    assert.equal(sim.connections(), 0, 'no WebSocket to the server before the view is shown');
    assert.equal(sim.callCount(), 0);
  });

  test('showing the view connects once and lists the seeded sandboxes', async () => {
    const api = await pixelsApi();
    await showView();
    await waitFor('the view to be visible', () => api.viewVisible() || undefined);
    const roots = await waitFor('server row', async () => {
      const r = await api.treeChildren();
      return r.length ? r : undefined;
    });
    assert.equal(sim.connections(), 1, 'one connection, reused');
    assert.deepEqual(api.loadedLayers(), ['truenas'], 'the TrueNAS backend loaded, ssh2 still not');
    const sandboxes = await api.treeChildren(roots[0]);
    const names = sandboxes.flatMap((n) => (n.type === 'sandbox' ? [n.sandbox.name] : []));
    assert.deepEqual(names.sort(), ['agent', 'old', 'web']);
    assert.equal(api.viewState(), 'ok');
  });
});
