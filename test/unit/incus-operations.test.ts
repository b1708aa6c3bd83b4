// Waiting on Incus operations, against a local unix-socket server that answers /wait the way incusd 6.0 does:
// a slice that runs out is an error envelope ("context deadline exceeded", HTTP 200), which must mean "wait
// another slice", never a failure; real failures still become typed errors; an abort cancels the operation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IncusEventStream } from '../../src/backends/incus/events';
import { Operations } from '../../src/backends/incus/operations';
import { IncusRestClient } from '../../src/backends/incus/rest-client';
import { CancelledError, NotFoundError, ServerError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/log';

type Answer = { status: number; body: unknown; delayMs?: number };

const sliceOver: Answer = {
  status: 200,
  body: { type: 'error', error_code: 500, error: 'context deadline exceeded', metadata: null },
};
const op = (status: string, code: number, extra: Record<string, unknown> = {}): Answer => ({
  status: 200,
  body: {
    type: 'sync',
    status: 'Success',
    status_code: 200,
    metadata: { id: 'op1', status, status_code: code, ...extra },
  },
});

describe('incus operation waits', () => {
  let dir: string;
  let server: http.Server;
  let client: IncusRestClient;
  let operations: Operations;
  let script: Answer[] = [];
  /** Answers to GET /1.0/operations/op1 (the state lookup after a "deadline exceeded"). */
  let states: Answer[] = [];
  const seen: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'px-incus-ops-'));
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const answer: Answer =
        req.method === 'DELETE'
          ? { status: 200, body: { type: 'sync', metadata: {} } }
          : req.url?.includes('/wait')
            ? (script.shift() ?? op('Success', 200))
            : (states.shift() ?? op('Running', 103));
      setTimeout(() => {
        res.writeHead(answer.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer.body));
      }, answer.delayMs ?? 0);
    });
    await new Promise<void>((r) => server.listen(join(dir, 's.sock'), r));
    client = new IncusRestClient({ socketPath: join(dir, 's.sock') });
    operations = new Operations(client, new IncusEventStream(client, silentLogger));
  });

  after(async () => {
    client.close();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('slices that run out (Incus 6 and LXD style) are waited through until the operation ends', async () => {
    seen.length = 0;
    script = [
      sliceOver,
      op('Running', 103),
      { ...sliceOver, delayMs: 1100 },
      op('Success', 200, { metadata: { return: 7 } }),
    ];
    states = [op('Running', 103), op('Running', 103)];
    const done = await operations.wait('op1');
    assert.deepEqual(done.metadata, { return: 7 });
    const waits = seen.filter((s) => s === 'GET /1.0/operations/op1/wait?timeout=25');
    assert.equal(waits.length, 4, seen.join(', '));
    const looks = seen.filter((s) => s === 'GET /1.0/operations/op1');
    assert.equal(looks.length, 2, `one state look per spent slice: ${seen.join(', ')}`);
    assert.equal(seen.length, 6, seen.join(', '));
  });

  test('a server that ends slices at once is not hammered (at most one wait a second)', async () => {
    seen.length = 0;
    script = [sliceOver, sliceOver, sliceOver];
    const started = Date.now();
    await operations.wait('op1');
    const seconds = (Date.now() - started) / 1000;
    assert.equal(seen.filter((s) => s.includes('/wait')).length, 4, seen.join(', '));
    assert.ok(seconds >= 2.9, `4 waits took only ${seconds} s`);
  });

  test('garbage instead of a wait reply is asked again (the operation goes on); garbage that persists is an error', async () => {
    const noEnvelope: Answer = { status: 200, body: 'garbage' };
    const noStatus: Answer = { status: 200, body: { type: 'sync', metadata: { id: 'op1' } } };
    seen.length = 0;
    script = [noEnvelope, noStatus, op('Success', 200, { metadata: { return: 3 } })];
    const done = await operations.wait('op1');
    assert.deepEqual(done.metadata, { return: 3 });
    assert.equal(seen.filter((s) => s.includes('/wait')).length, 3, seen.join(', '));
    script = [noStatus, noStatus, noStatus, noStatus];
    await assert.rejects(
      operations.wait('op1'),
      (e: unknown) =>
        e instanceof ServerError &&
        /GET \/1\.0\/operations\/op1\/wait with a reply Pixels cannot use/.test(e.message),
    );
  });

  test('real failures stay errors: a failed operation, an unknown operation, another wait error', async () => {
    script = [op('Failure', 400, { err: 'Command not found' })];
    await assert.rejects(
      operations.wait('op1'),
      (e: unknown) => e instanceof NotFoundError && /Command not found/.test(e.message),
    );
    script = [{ status: 404, body: { type: 'error', error_code: 404, error: 'Operation not found' } }];
    await assert.rejects(operations.wait('op1'), NotFoundError);
    script = [{ status: 500, body: { type: 'error', error_code: 500, error: 'database is locked' } }];
    await assert.rejects(
      operations.wait('op1'),
      (e: unknown) => e instanceof ServerError && /database is locked/i.test(e.message),
    );
  });

  test('an operation that itself failed on a deadline (a stop that timed out) is a failure, not a slice', async () => {
    const failed = 'Failed shutting down instance, status is "Running": context deadline exceeded';
    script = [{ status: 200, body: { type: 'error', error_code: 500, error: failed } }];
    states = [op('Failure', 400, { err: failed })];
    const started = Date.now();
    await assert.rejects(
      operations.wait('op1'),
      (e: unknown) => e instanceof ServerError && /Failed shutting down/.test(e.message),
    );
    assert.ok(Date.now() - started < 900, 'no second slice');
    // Already gone from the server: the wait's own error is the answer.
    script = [{ status: 200, body: { type: 'error', error_code: 500, error: failed } }];
    states = [{ status: 404, body: { type: 'error', error_code: 404, error: 'Operation not found' } }];
    await assert.rejects(
      operations.wait('op1'),
      (e: unknown) => e instanceof ServerError && /deadline exceeded/.test(e.message),
    );
  });

  test('an abort during a long wait cancels the operation and says so', async () => {
    seen.length = 0;
    script = [{ ...sliceOver, delayMs: 5000 }];
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const started = Date.now();
    await assert.rejects(operations.wait('op1', abort.signal), CancelledError);
    assert.ok(Date.now() - started < 3000);
    assert.ok(seen.includes('DELETE /1.0/operations/op1'), seen.join(', '));
  });
});
