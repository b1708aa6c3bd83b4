// The local sandbox cache: what is written is read back the same (dates included); a corrupt or foreign file is
// ignored with one reason; the store shows cached rows as stale until the server's first answer, never shows a
// sandbox that answer lacks, and writes each new list back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Emitter } from '../../src/core/disposable';
import type { Sandbox } from '../../src/core/sandbox';
import { parseCache, SandboxCacheFile, serializeCache, CorruptCacheError } from '../../src/core/sandboxCache';
import { SandboxStore } from '../../src/vscode/store';
import type { ServerRegistry } from '../../src/vscode/servers';
import type { Log } from '../../src/vscode/log';
import type { Backend } from '../../src/core/backend';

function sandbox(name: string, extra: Partial<Sandbox> = {}): Sandbox {
  return {
    name,
    instanceName: `px-${name}`,
    status: 'running',
    ipv4: '10.0.0.2',
    createdAt: new Date('2026-01-02T03:04:05Z'),
    labels: { 'user.pixels.egress': 'agent' },
    checkpoints: [
      { sandbox: name, label: 'ready', sizeBytes: 4096, createdAt: new Date('2026-01-03T00:00:00Z') },
    ],
    ...extra,
  };
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'px-cache-'));
}

test('a cache survives serialise + parse, dates included', () => {
  const content = new Map([
    [
      'nas',
      {
        savedAt: 1234,
        sandboxes: [sandbox('a'), { ...sandbox('b', { status: 'stopped' }), ipv4: undefined }],
      },
    ],
  ]);
  const back = parseCache(serializeCache(content));
  delete content.get('nas')!.sandboxes[1].ipv4; // JSON has no undefined: the key is simply absent
  assert.deepEqual(back, content);
  assert.ok(back.get('nas')!.sandboxes[0].checkpoints![0].createdAt instanceof Date);
});

test('corrupt files are refused with a reason that says what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['{"version":1,"servers":', /not JSON/],
    ['[]', /no "servers" object/],
    ['{"version":99,"servers":{}}', /version 99, expected 1/],
    [
      '{"version":1,"servers":{"nas":{"savedAt":1,"sandboxes":[{"name":"a"}]}}}',
      /servers\.nas\.sandboxes\[0\] is not a sandbox/,
    ],
    [
      '{"version":1,"servers":{"nas":{"savedAt":1,"sandboxes":[{"name":"a","instanceName":"px-a","status":"exploded"}]}}}',
      /status is not a sandbox status/,
    ],
    [
      '{"version":1,"servers":{"nas":{"savedAt":1,"sandboxes":[{"name":"a","instanceName":"px-a","status":"running","checkpoints":[{"sandbox":"a","label":"x","createdAt":"soon"}]}]}}}',
      /checkpoints\[0\]\.createdAt is not a time/,
    ],
  ];
  for (const [text, reason] of cases)
    assert.throws(
      () => parseCache(text),
      (e: unknown) => e instanceof CorruptCacheError && reason.test((e as Error).message),
    );
});

test('the file: missing is empty and silent, corrupt is ignored with one log line, saves are whole and private', async () => {
  const dir = tempDir();
  try {
    const reasons: string[] = [];
    const missing = new SandboxCacheFile(join(dir, 'none', 'cache.json'), (r) => reasons.push(r));
    assert.equal((await missing.load()).size, 0);
    assert.equal(reasons.length, 0, reasons.join('\n'));
    await missing.save('nas', [sandbox('a')], ['nas']);
    const path = join(dir, 'none', 'cache.json');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const again = new SandboxCacheFile(path, (r) => reasons.push(r));
    assert.deepEqual((await again.load()).get('nas')?.sandboxes, [sandbox('a')]);

    writeFileSync(path, '{"version":1,"servers":{"nas":');
    const corrupt = new SandboxCacheFile(path, (r) => reasons.push(r));
    assert.equal((await corrupt.load()).size, 0);
    assert.equal(reasons.length, 1);
    assert.match(reasons[0], /ignoring the sandbox cache .*cache\.json: not JSON/);
    // A later save replaces the corrupt file; servers no longer configured are dropped.
    await corrupt.save('nas', [sandbox('b')], ['nas']);
    await corrupt.save('other', [], ['other']);
    assert.deepEqual([...parseCache(readFileSync(path, 'utf8')).keys()], ['other']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A store over one server whose backend answers with `answers` in turn (a list, or an Error to throw). */
function storeFixture(
  cache: SandboxCacheFile,
  answers: (Sandbox[] | Error)[],
  configured: { ids: string[] } = { ids: ['nas'] },
) {
  const gate: { release?: () => void } = {};
  const backend = {
    list: async () => {
      await new Promise<void>((r) => (gate.release = r));
      const next = answers.shift();
      if (!next || next instanceof Error) throw next ?? new Error('no more answers');
      return next;
    },
  } as unknown as Backend;
  const registry = {
    servers: () => configured.ids.map((id) => ({ id })),
    backend: async () => backend,
    onDidChangeServers: new Emitter<void>().event,
  } as unknown as ServerRegistry;
  const log = { debug: () => undefined, warn: () => undefined } as unknown as Log;
  const store = new SandboxStore(registry, log, cache);
  const answer = async () => {
    while (!gate.release) await new Promise((r) => setTimeout(r, 1));
    const release = gate.release;
    gate.release = undefined;
    release();
  };
  return { store, answer };
}

test('the store shows the cached list as stale until the first answer, which replaces it for good', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'cache.json');
    await new SandboxCacheFile(path, () => undefined).save(
      'nas',
      [sandbox('gone'), sandbox('kept')],
      ['nas'],
    );
    const cache = new SandboxCacheFile(path, () => undefined);
    const { store, answer } = storeFixture(cache, [[sandbox('kept'), sandbox('new')]]);
    await store.cacheReady();
    assert.equal(store.isStale('nas'), true);
    assert.equal(store.canShowNow('nas'), true);
    assert.deepEqual(
      store.sandboxes('nas').map((s) => s.name),
      ['gone', 'kept'],
    );
    const changes: (string | undefined)[] = [];
    store.onDidChange((id) => changes.push(id));
    const loading = store.load('nas');
    assert.deepEqual(
      store.sandboxes('nas').map((s) => s.name),
      ['gone', 'kept'],
      'still the cache while loading',
    );
    await answer();
    await loading;
    assert.equal(store.isStale('nas'), false);
    assert.deepEqual(
      store.sandboxes('nas').map((s) => s.name),
      ['kept', 'new'],
      'the server said "gone" is gone',
    );
    assert.deepEqual(changes, ['nas']);
    await new Promise((r) => setTimeout(r, 20)); // the background write
    assert.deepEqual(
      parseCache(readFileSync(path, 'utf8'))
        .get('nas')
        ?.sandboxes.map((s) => s.name),
      ['kept', 'new'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an error as first answer also ends the cached rows (the tree shows the error, not old sandboxes)', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'cache.json');
    await new SandboxCacheFile(path, () => undefined).save('nas', [sandbox('a')], ['nas']);
    const { store, answer } = storeFixture(new SandboxCacheFile(path, () => undefined), [
      new Error('refused'),
    ]);
    await store.cacheReady();
    const loading = store.load('nas');
    await answer();
    await loading;
    assert.equal(store.isStale('nas'), false);
    assert.equal(store.state('nas').status, 'error');
    assert.deepEqual(store.sandboxes('nas'), []);
    // The cache keeps the last good list for the next start.
    assert.deepEqual(
      parseCache(readFileSync(path, 'utf8'))
        .get('nas')
        ?.sandboxes.map((s) => s.name),
      ['a'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a server removed and added again shows its last known list until it answers again', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'cache.json');
    const configured = { ids: ['nas'] };
    const cache = new SandboxCacheFile(path, () => undefined);
    const { store, answer } = storeFixture(cache, [[sandbox('a')], [sandbox('b')]], configured);
    await store.cacheReady();
    assert.equal(store.isStale('nas'), false, 'nothing cached yet');
    let loading = store.load('nas');
    await answer();
    await loading;
    configured.ids = [];
    store.prune();
    configured.ids = ['nas'];
    store.prune();
    assert.equal(store.isStale('nas'), true);
    assert.deepEqual(
      store.sandboxes('nas').map((s) => s.name),
      ['a'],
    );
    loading = store.load('nas');
    await answer();
    await loading;
    assert.equal(store.isStale('nas'), false);
    assert.deepEqual(
      store.sandboxes('nas').map((s) => s.name),
      ['b'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
