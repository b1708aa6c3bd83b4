// The refresh policy without VS Code: server events are debounced into one load, nothing loads while the view is
// hidden (changes seen meanwhile load once when it shows), the backup poll runs only while visible, and a manual
// refresh is immediate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Emitter } from '../../src/core/disposable';
import type { Backend, BackendChange } from '../../src/core/backend';
import { EVENT_DEBOUNCE_MS, RefreshController } from '../../src/vscode/refresh';
import type { ServerRegistry } from '../../src/vscode/servers';
import type { SandboxStore } from '../../src/vscode/store';
import type { Log } from '../../src/vscode/log';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fixture(refreshIntervalSeconds = 3600) {
  const created = new Emitter<Backend>();
  const serversChanged = new Emitter<void>();
  const changes = new Emitter<BackendChange>();
  const loads: (string | undefined)[] = [];
  const registry = {
    onDidCreateBackend: created.event,
    onDidChangeServers: serversChanged.event,
    servers: () => [{ id: 'a' }],
    settings: { refreshIntervalSeconds },
  } as unknown as ServerRegistry;
  const store = {
    load: async (id?: string) => {
      loads.push(id);
    },
    prune: () => undefined,
  } as unknown as SandboxStore;
  const log = { trace: () => undefined } as unknown as Log;
  const visibility = new Emitter<{ visible: boolean }>();
  const view = { visible: false, onDidChangeVisibility: visibility.event };
  const controller = new RefreshController(registry, store, log);
  controller.attach(view as never);
  created.fire({ serverId: 'a', onDidChange: changes.event } as unknown as Backend);
  const show = (visible: boolean) => {
    view.visible = visible;
    visibility.fire({ visible });
  };
  return { controller, changes, loads, show };
}

test('a burst of server events becomes one load after the debounce', async () => {
  const f = fixture();
  f.show(true);
  for (let i = 0; i < 20; i++) f.changes.fire({ kind: 'sandbox', name: 'x' });
  await sleep(EVENT_DEBOUNCE_MS / 2);
  assert.deepEqual(f.loads, []);
  await sleep(EVENT_DEBOUNCE_MS);
  assert.deepEqual(f.loads, ['a']);
  f.controller.dispose();
});

test('nothing loads while hidden; one load when shown again', async () => {
  const f = fixture();
  for (let i = 0; i < 5; i++) f.changes.fire({ kind: 'checkpoint', name: 'x' });
  await sleep(EVENT_DEBOUNCE_MS + 100);
  assert.deepEqual(f.loads, []);
  f.show(true);
  assert.deepEqual(f.loads, ['a']);
  f.show(false);
  f.show(true);
  assert.deepEqual(f.loads, ['a'], 'no reload without a change');
  f.controller.dispose();
});

test('the backup poll runs only while visible; manual refresh is immediate', async () => {
  const f = fixture(0.2); // 200 ms
  await sleep(450);
  assert.deepEqual(f.loads, [], 'no poll while hidden');
  f.show(true);
  await sleep(450);
  assert.ok(f.loads.length >= 2, `polled ${f.loads.length} times`);
  f.show(false);
  const seen = f.loads.length;
  await sleep(450);
  assert.equal(f.loads.length, seen, 'poll stopped when hidden');
  await f.controller.refreshNow('a');
  assert.equal(f.loads.length, seen + 1);
  f.controller.dispose();
});
