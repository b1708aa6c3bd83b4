// `bench:` suites are benchmarks in the real extension host (`npm run bench:vscode`); a plain `npm run test:vscode`
// leaves them out. They print `<figure>: <value>` lines and assert only counts and ratios, never times.
// A simulator with 1,000 `px-` sandboxes × 20 checkpoints (+ 200 other instances): activation, view shown -> all
// server rows, expand -> checkpoint rows, heap after 50 refreshes, cached vs cold first rows, event -> tree, and API
// calls per minute with the view hidden and shown.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as vscode from 'vscode';
import { startSimulator, type SimServer } from '../../sim/index';
import { RawClient } from '../../sim/rawclient';
import { SandboxCacheFile } from '../../../src/core/sandboxCache';
import type { PixelsApi } from '../../../src/vscode/api';
import type { PixelsNode } from '../../../src/vscode/tree';
import { API_KEY, EXTENSION_ID, pixelsApi, setServers, showView, simServer, sleep, waitFor } from './helpers';

const SANDBOXES = 1000;
const CHECKPOINTS = 20;
/** Per reply, for the cold start: a remote NAS (TLS + login and each call cost a round trip or more). */
const REPLY_DELAY_MS = 40;

function figure(name: string, value: string): void {
  console.log(`${name}: ${value}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function heapMiB(): number {
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

async function serverNode(api: PixelsApi, id: string): Promise<PixelsNode | undefined> {
  return (await api.treeChildren()).find((n) => n.type === 'server' && n.serverId === id);
}

async function sandboxRows(api: PixelsApi, id: string): Promise<PixelsNode[]> {
  const server = await serverNode(api, id);
  return server ? (await api.treeChildren(server)).filter((n) => n.type === 'sandbox') : [];
}

/** Time from `started` until `id` shows at least `count` sandbox rows (polled every 5 ms, 2 min at most). */
async function timeToRows(api: PixelsApi, id: string, count: number, started: number): Promise<number> {
  while ((await sandboxRows(api, id)).length < count) {
    if (performance.now() - started > 120_000) throw new Error(`no ${count} rows of ${id} after 2 min`);
    await sleep(5);
  }
  return performance.now() - started;
}

/**
 * Sets the servers and resolves with the moment the extension is told (the settings change event): from there on
 * the time to first rows is the extension's, not the settings write's.
 */
async function configure(servers: ReturnType<typeof simServer>[]): Promise<number> {
  let told = 0;
  const sub = vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('pixels.servers') && !told) told = performance.now();
  });
  const started = performance.now();
  await vscode.workspace
    .getConfiguration('pixels')
    .update('servers', servers, vscode.ConfigurationTarget.Global);
  sub.dispose();
  return told || started;
}

suite('bench: tree at scale', function () {
  this.timeout(600_000);
  let sim: SimServer;
  let small: SimServer;

  suiteSetup(async () => {
    setFlagsFromString('--expose-gc');
    sim = await startSimulator({
      version: '25.10',
      apiKey: API_KEY,
      seedScale: { sandboxes: SANDBOXES, checkpoints: CHECKPOINTS, others: 200 },
    });
    small = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
  });

  suiteTeardown(async () => {
    sim.faults.delayReplies(0);
    await setServers([]);
    await vscode.workspace
      .getConfiguration('pixels')
      .update('refreshIntervalSeconds', undefined, vscode.ConfigurationTarget.Global);
    await sim.close();
    await small.close();
  });

  test('activation: time in activate(), no backend loaded (so no socket)', async () => {
    const api = await pixelsApi();
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    assert.equal(ext.isActive, true);
    figure('activation', `${api.activationMs.toFixed(1)} ms`);
    assert.deepEqual(api.loadedLayers(), [], 'activation loaded a backend');
  });

  test('1,000 sandboxes: view shown -> rows, expand -> checkpoints, heap after 50 refreshes', async () => {
    const api = await pixelsApi();
    await api.setApiKey('scale', API_KEY);
    await setServers([simServer(sim.port, 'scale')]);
    const calls0 = sim.callCount();
    const shown = performance.now();
    await showView();
    const rowsMs = await timeToRows(api, 'scale', SANDBOXES, shown);
    const rows = await sandboxRows(api, 'scale');
    assert.equal(rows.length, SANDBOXES, 'the 200 instances without px- are not shown');
    // 1,000 sandboxes open would be 21,000 rows: they start collapsed.
    assert.equal(api.treeItem(rows[0]!).collapsible, vscode.TreeItemCollapsibleState.Collapsed);
    const listCalls = sim.callCount() - calls0;
    console.log(`view shown -> ${SANDBOXES} sandbox rows with ${listCalls} API calls (connect included)`);
    figure('view shown to 1,000 sandbox rows', `${Math.round(rowsMs)} ms`);

    const callsBeforeExpand = sim.callCount();
    const expandTimes: number[] = [];
    for (const row of rows.slice(0, 20)) {
      const t = performance.now();
      const children = await api.treeChildren(row);
      expandTimes.push(performance.now() - t);
      assert.equal(children.filter((n) => n.type === 'checkpoint').length, CHECKPOINTS);
    }
    assert.equal(sim.callCount() - callsBeforeExpand, 0, 'expanding a sandbox asks the server nothing');
    figure('expand to checkpoint rows', `${median(expandTimes).toFixed(2)} ms`);

    const refreshes = async () => {
      for (let i = 0; i < 50; i++) {
        await vscode.commands.executeCommand('pixels.refresh', { server: 'scale' });
        const server = await serverNode(api, 'scale');
        const again = await api.treeChildren(server!);
        assert.equal(again.length, SANDBOXES);
      }
      await sleep(200);
    };
    // A leak grows with every refresh; a first use (code compiled, caches filled) grows once. So: 50 to warm up,
    // then the figure is the growth over the next 50.
    const heap0 = heapMiB();
    await refreshes();
    const heapBefore = heapMiB();
    await refreshes();
    const growth = heapMiB() - heapBefore;
    console.log(
      `heap: first 50 refreshes +${(heapBefore - heap0).toFixed(1)} MiB, next 50 +${growth.toFixed(1)} MiB`,
    );
    figure('tree heap growth after 50 refreshes', `${growth.toFixed(1)} MiB`);
  });

  test('cached tree vs cold tree: time to first rows', async () => {
    const api = await pixelsApi();
    await showView();
    await waitFor('the cache has the big server', async () => {
      const cache = new SandboxCacheFile(api.sandboxCacheFile(), () => undefined);
      await cache.load();
      return cache.get('scale')?.sandboxes.length === SANDBOXES ? true : undefined;
    });
    sim.faults.delayReplies(REPLY_DELAY_MS);
    await setServers([]);

    // Cached: the server comes back (as on a start); reading the cache file is part of it, as on a real start.
    const t = performance.now();
    const file = new SandboxCacheFile(api.sandboxCacheFile(), () => undefined);
    await file.load();
    const read = performance.now() - t;
    const shown = await timeToRows(api, 'scale', 1, await configure([simServer(sim.port, 'scale')]));
    const server = await serverNode(api, 'scale');
    assert.match(api.treeItem(server!).description ?? '', /cached/, 'the first rows were the cached ones');
    const cached = read + shown;
    await waitFor(
      'the answer',
      async () => {
        const s = await serverNode(api, 'scale');
        return s && !/cached/.test(api.treeItem(s).description ?? '') ? true : undefined;
      },
      120_000,
    );
    await setServers([]);

    // Cold: a server the cache does not know, first rows = its first answer.
    await api.setApiKey('scale-cold', API_KEY);
    const cold = await timeToRows(api, 'scale-cold', 1, await configure([simServer(sim.port, 'scale-cold')]));
    sim.faults.delayReplies(0);
    await setServers([]);
    console.log(
      `first rows, replies delayed ${REPLY_DELAY_MS} ms: cold ${Math.round(cold)} ms, cached ${Math.round(cached)} ms (file read ${Math.round(read)} ms)`,
    );
    figure('cached tree vs cold tree', (cached / cold).toFixed(3));
  });

  test('events, not polling: event -> tree, API calls per minute hidden and shown', async () => {
    const api = await pixelsApi();
    await api.setApiKey('small', API_KEY);
    await setServers([simServer(sim.port, 'scale'), simServer(small.port, 'small')]);
    await showView();
    await timeToRows(api, 'scale', SANDBOXES, performance.now());
    await timeToRows(api, 'small', 3, performance.now());
    const interval = 60; // the default refreshIntervalSeconds
    const c = await RawClient.connect(sim.url);
    try {
      await c.call(
        'auth.login_ex',
        [{ mechanism: 'API_KEY_PLAIN', username: 'truenas_admin', api_key: API_KEY }],
        60_000,
      );
      const lags: number[] = [];
      for (let i = 0; i < 5; i++) {
        const name = `s${String(i).padStart(4, '0')}`;
        const t = performance.now();
        // The simulator runs in this same (busy) process: a generous answer time, it is not what is measured.
        const created = c.call(
          'pool.snapshot.create',
          [{ dataset: `tank/.ix-virt/containers/px-${name}`, name: `ev${i}` }],
          60_000,
        );
        await created;
        const createdMs = performance.now() - t;
        await waitFor(
          `checkpoint ev${i} in the tree`,
          async () => {
            const row = (await sandboxRows(api, 'scale')).find(
              (n) => n.type === 'sandbox' && n.sandbox.name === name,
            );
            const children = row ? await api.treeChildren(row) : [];
            return children.some((n) => n.type === 'checkpoint' && n.checkpoint.label === `ev${i}`)
              ? true
              : undefined;
          },
          30_000,
        );
        lags.push(performance.now() - t);
        console.log(
          `event ${i}: create answered after ${Math.round(createdMs)} ms, in the tree after ${Math.round(lags[i])} ms`,
        );
      }
      figure('event-to-tree p50', `${Math.round(median(lags))} ms`);
      figure('event-to-tree vs polling interval', (median(lags) / (interval * 1000)).toFixed(4));
    } finally {
      c.close();
    }

    // Calls per minute: the backup poll at its shortest (10 s), counted over one interval, scaled to a minute.
    await vscode.workspace
      .getConfiguration('pixels')
      .update('refreshIntervalSeconds', 10, vscode.ConfigurationTarget.Global);
    await sleep(500);
    // Counted over three poll intervals, then per minute.
    const perMinute = async (): Promise<[number, number]> => {
      const [big0, small0] = [sim.callCount(), small.callCount()];
      await sleep(30_000);
      return [(sim.callCount() - big0) * 2, (small.callCount() - small0) * 2];
    };
    const [shownBig, shownSmall] = await perMinute();
    await vscode.commands.executeCommand('workbench.view.explorer');
    await waitFor('the view hidden', () => (api.viewVisible() ? undefined : true));
    const [hiddenBig, hiddenSmall] = await perMinute();
    figure('API calls per minute, view hidden', String(hiddenBig + hiddenSmall));
    figure(
      'API calls per minute, view shown and idle',
      `${shownBig} (per server, 10 s backup poll: ${shownBig} with ${SANDBOXES} sandboxes, ${shownSmall} with 3)`,
    );
    assert.equal(hiddenBig + hiddenSmall, 0, 'a hidden view asks the servers nothing');
    assert.equal(shownBig, shownSmall, 'an idle shown view costs the same whatever the number of sandboxes');
    await showView();
  });
});
