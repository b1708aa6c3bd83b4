// Bad input against the real lab: each case gets a clear, specific error and leaves nothing behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { promisify } from 'node:util';
import { createIncusBackend } from '../../../src/backends/incus/index';
import type { IncusBackend } from '../../../src/backends/incus/index';
import {
  AlreadyExistsError,
  CancelledError,
  ConnectionError,
  NotAuthorizedError,
  NotFoundError,
  TimeoutError,
  ValidationError,
} from '../../../src/core/errors';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import type { Lab } from '../../lab/lab';
import { labBackend, leftovers, removeTestInstances, testPrefix } from './helpers';

const run = promisify(execFile);

describe('incus backend: bad input gets clear errors', { timeout: 120_000 }, () => {
  const prefix = testPrefix();
  let lab: Lab;
  let backend: IncusBackend;

  before(async () => {
    ({ lab, backend } = await labBackend());
  });
  after(async () => {
    backend?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
  });

  test('names Incus would reject are refused before any call', async () => {
    const cases: [string, RegExp][] = [
      ['under_score', /letters, digits and hyphens/],
      ['has space', /letters, digits and hyphens/],
      ['1abc', /cannot start with a digit/],
      [`${prefix}-`, /cannot end with a hyphen/],
      ['x'.repeat(61), /at most 60 characters/],
      ['', /cannot be empty/],
    ];
    for (const [name, message] of cases) {
      await assert.rejects(backend.create({ name, image: lab.image }), (err: unknown) => {
        assert.ok(err instanceof ValidationError, `${name}: ${String(err)}`);
        assert.match(err.message, message);
        return true;
      });
    }
    await assert.rejects(backend.clone({ sandbox: 'ok', checkpoint: 'bad/label' }, 'ok2'), ValidationError);
  });

  test('memory below the minimum and a bad cpu count', async () => {
    await assert.rejects(
      backend.create({ name: `${prefix}-mem`, image: lab.image, memoryMiB: 64 }),
      (err: unknown) => err instanceof ValidationError && /at least 128 MiB/.test(err.message),
    );
    await assert.rejects(
      backend.create({ name: `${prefix}-cpu`, image: lab.image, cpu: '0' }),
      (err: unknown) => err instanceof ValidationError && /whole number of cores/.test(err.message),
    );
    assert.deepEqual(await leftovers(lab, prefix), []);
  });

  test('an image that does not exist', async () => {
    for (const image of ['no-such-image-alias', 'deadbeefdeadbeef']) {
      await assert.rejects(backend.create({ name: `${prefix}-img`, image }), (err: unknown) => {
        assert.ok(err instanceof NotFoundError, String(err));
        assert.equal(
          err.message,
          `Image "${image}" does not exist on lab: no image alias or fingerprint matches it.`,
        );
        return true;
      });
    }
    assert.deepEqual(await leftovers(lab, prefix), [], 'nothing half-made');
  });

  test('a cluster member that does not exist', async () => {
    await assert.rejects(
      backend.create({ name: `${prefix}-tgt`, image: lab.image, target: 'no-such-member', start: false }),
      (err: unknown) => err instanceof NotFoundError && /no-such-member/.test(err.message),
    );
    assert.deepEqual(await leftovers(lab, prefix), [], 'nothing half-made');
  });

  test('sandboxes and checkpoints that do not exist; a name that is taken', async () => {
    await assert.rejects(backend.start(`${prefix}-none`), (err: unknown) => {
      return (
        err instanceof NotFoundError && err.message === `Sandbox "${prefix}-none" does not exist on lab.`
      );
    });
    await assert.rejects(backend.get(`${prefix}-none`), NotFoundError);
    await assert.rejects(backend.destroy(`${prefix}-none`), NotFoundError);
    await assert.rejects(backend.writeFile(`${prefix}-none`, '/x', Buffer.from('x')), NotFoundError);
    await backend.create({ name: `${prefix}-x`, image: lab.image, start: false });
    await assert.rejects(
      backend.create({ name: `${prefix}-x`, image: lab.image, start: false }),
      (err: unknown) => err instanceof AlreadyExistsError && /already exists/.test(err.message),
    );
    await assert.rejects(
      backend.restoreCheckpoint(`${prefix}-x`, 'never-made'),
      (err: unknown) => err instanceof NotFoundError && /has no checkpoint "never-made"/.test(err.message),
    );
    await assert.rejects(
      backend.clone({ sandbox: `${prefix}-x`, checkpoint: 'never-made' }, `${prefix}-y`),
      NotFoundError,
    );
    await assert.rejects(
      backend.writeFile(`${prefix}-x`, 'relative/path', Buffer.from('x')),
      ValidationError,
    );
    await backend.destroy(`${prefix}-x`);
    assert.deepEqual(await leftovers(lab, prefix), []);
  });

  test('a sandbox that ignores shutdown: stop times out clearly, force stops it', async () => {
    // Its init ignores the halt signal, so a clean shutdown can never finish.
    const name = `${prefix}-hang`;
    const admin = new IncusRestClient({ socketPath: lab.socket });
    try {
      const op = await admin.call<{ id: string }>('POST', '/1.0/instances', {
        body: {
          name: `px-${name}`,
          source: { type: 'image', alias: lab.image },
          config: { 'raw.lxc': 'lxc.signal.halt=SIGUSR2' },
          devices: { root: { type: 'disk', path: '/', pool: lab.poolBtrfs } },
          start: true,
        },
      });
      await admin.call('GET', `/1.0/operations/${op.metadata.id}/wait`, { query: { timeout: '60' } });
    } finally {
      admin.close();
    }
    await assert.rejects(backend.stop(name, { timeoutSec: 2 }), (err: unknown) => {
      assert.ok(err instanceof TimeoutError, String(err));
      assert.equal(err.message, `Sandbox "${name}" did not shut down within 2 s.`);
      return true;
    });
    assert.equal((await backend.get(name)).status, 'running');
    await backend.stop(name, { timeoutSec: 2, force: true });
    assert.equal((await backend.get(name)).status, 'stopped');
    await backend.destroy(name);
  });

  test('cancelling a create reports progress, then leaves nothing behind', async () => {
    let cancelled = 0;
    // 0 = aborted before the create call is sent; the others land somewhere in create/start (or after it).
    for (const delayMs of [0, 5, 40, 120]) {
      const abort = new AbortController();
      const steps: string[] = [];
      const name = `${prefix}-cancel${delayMs}`;
      const started = backend.create(
        { name, image: lab.image },
        { signal: abort.signal, onProgress: (p) => steps.push(p.description ?? '') },
      );
      setTimeout(() => abort.abort(), delayMs);
      try {
        await started;
        // Finished before the abort landed: a complete sandbox, nothing half-made either.
        assert.equal((await backend.get(name)).status, 'running');
        await backend.destroy(name);
      } catch (err) {
        assert.ok(err instanceof CancelledError, String(err));
        cancelled++;
      }
      assert.ok(steps.length > 0, 'progress was reported');
      assert.deepEqual(await leftovers(lab, name), [], `nothing left after an abort at ${delayMs} ms`);
    }
    assert.ok(cancelled >= 1, 'at least the immediate abort cancelled the create');
  });

  test('a socket path that does not exist', async () => {
    const b = createIncusBackend({ serverId: 'nowhere', socketPath: '/run/no-such-dir/incus.socket' });
    try {
      await assert.rejects(b.list(), (err: unknown) => {
        assert.ok(err instanceof ConnectionError, String(err));
        assert.equal(
          err.message,
          'There is no Incus unix socket /run/no-such-dir/incus.socket: is incusd running on this machine?',
        );
        return true;
      });
    } finally {
      b.dispose();
    }
  });

  test('a socket without permission (the real socket, as an unprivileged user)', async () => {
    let got = { name: '', kind: '', message: '' };
    // Root may open any socket, so the check runs in a child process as "nobody" (not in incus-admin). nobody
    // may not be able to read this checkout (a clone under a 0700 home): the probe and the production code it
    // uses are bundled into one file in a fresh temp folder nobody can read, and run from there.
    const dir = mkdtempSync(join(tmpdir(), 'pixels-socket-probe-'));
    try {
      const probe = join(dir, 'socket-probe.cjs');
      await build({
        entryPoints: [fileURLToPath(new URL('./socket-probe.ts', import.meta.url))],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        outfile: probe,
        // As in esbuild.mjs: ssh2's optional native parts stay out (it falls back to pure JS).
        external: ['cpu-features', '*.node'],
        logLevel: 'silent',
      });
      chmodSync(dir, 0o755);
      chmodSync(probe, 0o644);
      const { stdout } = await run(process.execPath, [probe, lab.socket], {
        uid: 65534,
        gid: 65534,
        cwd: dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
        timeout: 60_000,
      });
      got = JSON.parse(stdout.trim().split('\n').pop()!) as typeof got;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(got.name, NotAuthorizedError.name);
    assert.equal(got.kind, 'not-authorized');
    assert.match(
      got.message,
      /^Permission denied on the Incus unix socket \/var\/lib\/incus\/unix\.socket: .*incus-admin/,
    );
  });
});
