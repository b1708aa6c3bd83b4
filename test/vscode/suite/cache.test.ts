// Instant start: the tree's last known sandboxes are kept in the extension's global storage; a server added (again)
// shows them at once, marked cached, before it answers, and its first answer replaces them (a sandbox gone on
// the server meanwhile is not shown once it has answered).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startSimulator, type SimServer } from '../../sim/index';
import { API_KEY, pixelsApi, setServers, showView, simServer, waitFor } from './helpers';
import type { PixelsNode } from '../../../src/vscode/tree';

suite('sandbox cache', () => {
  let sim: SimServer;

  suiteSetup(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
  });

  suiteTeardown(async () => {
    await setServers([]);
    await sim.close();
  });

  test('rows from the cache show before the server answers, marked cached; the answer replaces them', async () => {
    const api = await pixelsApi();
    await api.setApiKey('cached', API_KEY);
    await setServers([simServer(sim.port, 'cached')]);
    await showView();
    const serverRow = async () => (await api.treeChildren()).find((n) => n.serverId === 'cached');
    const rows = async (): Promise<PixelsNode[]> => {
      const server = await serverRow();
      return server ? api.treeChildren(server) : [];
    };
    await waitFor('the three sandboxes', async () => ((await rows()).length === 3 ? true : undefined));
    // The file is written in the background after the rows show, and an earlier suite's file may already be
    // there: wait for this server's entry, not for any file.
    const saved = await waitFor('the cache file with this server', () => {
      try {
        const file = JSON.parse(readFileSync(api.sandboxCacheFile(), 'utf8')) as {
          servers: Record<string, { sandboxes: { name: string }[] }>;
        };
        return file.servers.cached ? file : undefined;
      } catch {
        return undefined;
      }
    });
    assert.deepEqual(
      saved.servers.cached?.sandboxes.map((s) => s.name),
      ['agent', 'old', 'web'],
    );

    // The server goes away and comes back slow; meanwhile px-old was deleted on it.
    await setServers([]);
    await sim.engine.deleteInstance('px-old');
    sim.faults.delayReplies(1500);
    try {
      await setServers([simServer(sim.port, 'cached')]);
      const server = await waitFor('the server row', serverRow, 1000);
      const cached = await api.treeChildren(server);
      assert.deepEqual(
        cached.map((n) => (n.type === 'sandbox' ? n.sandbox.name : n.type)),
        ['agent', 'old', 'web'],
      );
      assert.match(api.treeItem(server).description ?? '', /3 sandboxes \(cached\)/);
      for (const row of cached) assert.match(api.treeItem(row).description ?? '', /^\(cached\)/);
      // The checkpoints came with the cached list: expanding needs no server either.
      const web = cached.find((n) => n.type === 'sandbox' && n.sandbox.name === 'web')!;
      assert.equal((await api.treeChildren(web)).filter((n) => n.type === 'checkpoint').length, 2);

      const fresh = await waitFor(
        'the first answer',
        async () => {
          const s = await serverRow();
          if (!s || /cached/.test(api.treeItem(s).description ?? '')) return undefined;
          return api.treeChildren(s);
        },
        30_000,
      );
      assert.deepEqual(
        fresh.map((n) => (n.type === 'sandbox' ? n.sandbox.name : n.type)),
        ['agent', 'web'],
        'px-old is gone once the server has answered',
      );
      for (const row of fresh) assert.doesNotMatch(api.treeItem(row).description ?? '', /cached/);
    } finally {
      sim.faults.delayReplies(0);
    }
  });
});
