// File appends and long commands on real containers: an append creates a missing file (like `>>`, with the
// given mode and owner) on stopped and running sandboxes, concurrent appends lose nothing, an append into a
// directory that does not exist fails without making it; exec waits for commands longer than Incus' server-side
// wait slice, and a caller's timeout stops the command promptly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { CancelledError, NotFoundError, TimeoutError } from '../../../src/core/errors';
import { generateHostKey, generateKeyPair, prepareSandboxAccess } from '../../../src/ssh/index';
import type { Lab } from '../../lab/lab';
import { labBackend, removeTestInstances, testPrefix } from './helpers';

describe('incus files (append) and exec (long commands)', { timeout: 240_000 }, () => {
  const prefix = testPrefix();
  const name = `${prefix}-f`;
  const inst = `px-${name}`;
  let lab: Lab;
  let backend: IncusBackend;
  let client: IncusRestClient;

  /** Mode, owner and content straight from the file API (works on stopped instances). */
  async function stat(path: string): Promise<{ mode: string; uid: string; gid: string; body: string }> {
    const res = await client.raw('GET', `/1.0/instances/${inst}/files`, { query: { path } });
    assert.equal(res.status, 200, `${path}: HTTP ${res.status} ${res.body.toString()}`);
    return {
      mode: String(res.headers['x-incus-mode']),
      uid: String(res.headers['x-incus-uid']),
      gid: String(res.headers['x-incus-gid']),
      body: res.body.toString('utf8'),
    };
  }

  async function exists(path: string): Promise<boolean> {
    const res = await client.raw('GET', `/1.0/instances/${inst}/files`, { query: { path } });
    return res.status === 200;
  }

  before(async () => {
    ({ lab, backend } = await labBackend());
    client = new IncusRestClient({ socketPath: lab.socket });
    await backend.create({ name, image: lab.image });
  });

  after(async () => {
    backend?.dispose();
    client?.close();
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('stopped: append creates a missing file with the given mode and owner, then appends', async () => {
    assert.equal(await exists('/root/.ssh/authorized_keys'), false, 'the image has no authorized_keys');
    await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.from('key-one\n'), {
      append: true,
      mode: 0o600,
      uid: 0,
      gid: 0,
    });
    await backend.writeFile(name, '/root/.ssh/authorized_keys', Buffer.from('key-two\n'), {
      append: true,
      mode: 0o644,
    });
    const keys = await stat('/root/.ssh/authorized_keys');
    assert.equal(keys.body, 'key-one\nkey-two\n');
    assert.equal(keys.mode, '0600', 'an append to an existing file keeps its mode, like >>');
    await backend.writeFile(name, '/tmp/owned', Buffer.from('x'), {
      append: true,
      mode: 0o640,
      uid: 1000,
      gid: 1001,
    });
    assert.deepEqual(
      { ...(await stat('/tmp/owned')), body: undefined },
      { mode: '0640', uid: '1000', gid: '1001', body: undefined },
    );
  });

  test('concurrent appends to a missing file: every piece arrives', async () => {
    const lines = Array.from({ length: 6 }, (_, i) => `line-${i}\n`);
    await Promise.all(
      lines.map((l) => backend.writeFile(name, '/root/many', Buffer.from(l), { append: true, mode: 0o600 })),
    );
    const got = (await stat('/root/many')).body;
    assert.deepEqual(got.split('\n').filter(Boolean).sort(), lines.map((l) => l.trim()).sort(), got);
  });

  test('append into a directory that does not exist: not found, and nothing is made', async () => {
    await assert.rejects(
      backend.writeFile(name, '/no-such-dir/instance/file', Buffer.from('x'), { append: true }),
      (err: unknown) =>
        err instanceof NotFoundError && /\/no-such-dir\/instance does not exist/.test(err.message),
    );
    await assert.rejects(
      backend.writeFile(`${prefix}-never-made`, '/root/x', Buffer.from('x'), { append: true }),
      (err: unknown) =>
        err instanceof NotFoundError && /Sandbox ".*-never-made" does not exist/.test(err.message),
    );
    assert.equal(await exists('/no-such-dir'), false, 'no directory was left behind');
  });

  test('SSH access on a fresh image needs no pre-made authorized_keys; no pixel user -> not found, nothing made', async () => {
    const fresh = `${prefix}-g`;
    await backend.create({ name: fresh, image: lab.image });
    const user = generateKeyPair('user@test');
    const hostKey = generateHostKey('px-host');
    // What the editor does for an image without the `pixel` user: pixel's key fails "not found", root's goes in.
    await assert.rejects(
      prepareSandboxAccess(backend, fresh, { userPublicKey: user.publicOpenSsh, hostKey, pixelUser: true }),
      NotFoundError,
    );
    const res = await client.raw('GET', `/1.0/instances/px-${fresh}/files`, {
      query: { path: '/home/pixel' },
    });
    assert.equal(res.status, 404, 'no /home/pixel was made for a user that does not exist');
    await prepareSandboxAccess(backend, fresh, {
      userPublicKey: user.publicOpenSsh,
      hostKey,
      pixelUser: false,
    });
    const keys = await client.raw('GET', `/1.0/instances/px-${fresh}/files`, {
      query: { path: '/root/.ssh/authorized_keys' },
    });
    assert.equal(keys.status, 200);
    assert.equal(keys.headers['x-incus-mode'], '0600');
    const lines = keys.body.toString().split('\n').filter(Boolean);
    assert.ok(lines.length >= 1 && lines.every((l) => l === user.publicOpenSsh), keys.body.toString());
    await backend.destroy(fresh);
  });

  test('running: append creates a missing file; exec sees it', async () => {
    await backend.start(name);
    await backend.writeFile(name, '/root/running-new', Buffer.from('hello\n'), {
      append: true,
      mode: 0o600,
      uid: 0,
      gid: 0,
    });
    await backend.writeFile(name, '/root/running-new', Buffer.from('again\n'), { append: true });
    const r = await backend.exec(name, [
      'sh',
      '-c',
      'stat -c "%a %u" /root/running-new && cat /root/running-new',
    ]);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), '600 0\nhello\nagain\n');
  });

  test(
    'exec of a command that runs ~35 s (longer than the server-side wait slice)',
    { timeout: 90_000 },
    async () => {
      const started = Date.now();
      const r = await backend.exec(name, ['sh', '-c', 'sleep 35; echo done; exit 3'], { timeoutMs: 80_000 });
      const seconds = (Date.now() - started) / 1000;
      assert.equal(r.stdout.toString(), 'done\n');
      assert.equal(r.exitCode, 3);
      assert.ok(seconds >= 35 && seconds < 60, `took ${seconds} s`);
    },
  );

  test(
    "exec: the caller's timeout stops the command promptly with a timeout error",
    { timeout: 60_000 },
    async () => {
      const started = Date.now();
      await assert.rejects(
        backend.exec(name, ['sleep', '300'], { timeoutMs: 3000 }),
        (err: unknown) => err instanceof TimeoutError && /3 s/.test(err.message),
      );
      const seconds = (Date.now() - started) / 1000;
      assert.ok(seconds < 15, `the timeout took ${seconds} s`);
      const ps = await backend.exec(name, ['sh', '-c', 'pgrep -a -x sleep || true']);
      assert.equal(ps.stdout.toString().trim(), '', 'the timed-out command is no longer running');
      // A caller's abort stops it the same way, and says "cancelled".
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 1000);
      await assert.rejects(
        backend.exec(name, ['sleep', '301'], { signal: abort.signal }),
        (err: unknown) => err instanceof CancelledError,
      );
      const left = await backend.exec(name, ['sh', '-c', 'pgrep -a -x sleep || true']);
      assert.equal(left.stdout.toString().trim(), '', 'the aborted command is no longer running');
    },
  );
});
