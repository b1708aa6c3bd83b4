// API keys in SecretStorage: one entry per server id, redacted from logs once seen, and a keyring that fails is
// reported as exactly that (not as a missing key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redact } from '../../src/core/log';
import { ApiKeyStore, KeyringUnavailableError } from '../../src/vscode/secrets';

type Listener = (e: { key: string }) => void;

function memoryStorage(fail = false) {
  const data = new Map<string, string>();
  const listeners: Listener[] = [];
  const boom = () => Promise.reject(new Error('Cannot autolaunch D-Bus without X11 $DISPLAY'));
  return {
    data,
    get: (key: string) => (fail ? boom() : Promise.resolve(data.get(key))),
    store: (key: string, value: string) => {
      if (fail) return boom();
      data.set(key, value);
      for (const l of listeners) l({ key });
      return Promise.resolve();
    },
    delete: (key: string) => {
      if (fail) return boom();
      data.delete(key);
      for (const l of listeners) l({ key });
      return Promise.resolve();
    },
    onDidChange: (l: Listener) => {
      listeners.push(l);
      return { dispose: () => undefined };
    },
  };
}

test('one key per server id; reading it registers it for redaction', async () => {
  const storage = memoryStorage();
  const keys = new ApiKeyStore(storage as never);
  const changed: string[] = [];
  keys.onDidChange((id) => changed.push(id));
  const key = '7-' + 'k'.repeat(64);
  await keys.store('nas', key);
  assert.equal(await keys.get('nas'), key);
  assert.equal(await keys.get('other'), undefined);
  assert.deepEqual([...storage.data.keys()], ['pixels.apiKey.nas']);
  assert.equal(redact(`login with ${key} failed`), 'login with «redacted» failed');
  await keys.delete('nas');
  assert.equal(await keys.get('nas'), undefined);
  assert.deepEqual(changed, ['nas', 'nas']);
});

test('an unavailable OS keyring is said plainly', async () => {
  const keys = new ApiKeyStore(memoryStorage(true) as never);
  await assert.rejects(keys.get('nas'), (err: unknown) => {
    assert.ok(err instanceof KeyringUnavailableError);
    assert.match(err.message, /OS keyring is unavailable/);
    assert.match(err.message, /D-Bus/);
    return true;
  });
  await assert.rejects(keys.store('nas', 'x'.repeat(20)), KeyringUnavailableError);
});

test('environment values in a logged frame are redacted, the rest of the frame stays', () => {
  const frame = JSON.stringify({
    method: 'virt.instance.create',
    params: [{ name: 'px-a', environment: { TOKEN: 'v}al"ue', OTHER: 'x' }, autostart: true }],
  });
  const out = redact(frame);
  assert.ok(!out.includes('v}al') && !out.includes('TOKEN'), out);
  assert.match(out, /"environment":\{«redacted»\},"autostart":true/);
});
