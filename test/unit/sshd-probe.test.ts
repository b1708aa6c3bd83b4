// sshdAnswers against real loopback sockets: it ends on the first SSH banner, keeps trying while nothing listens,
// and says what it saw when it gives up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { CancelledError, ConnectionError } from '../../src/core/errors';
import { networkErrorCode } from '../../src/ssh/connect';
import { sshdAnswers } from '../../src/ssh/sshd-probe';

function listen(onConnection: (s: Socket) => void, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    );
  });
}

const close = (server: Server) => new Promise<void>((r) => server.close(() => r()));

async function freePort(): Promise<number> {
  const { server, port } = await listen(() => undefined);
  await close(server);
  return port;
}

test('resolves as soon as an sshd that starts late sends its banner, and closes every attempt', async () => {
  const port = await freePort();
  const sockets: Socket[] = [];
  let server: Server | undefined;
  const started = Date.now();
  setTimeout(() => {
    void listen((s) => {
      sockets.push(s);
      s.write('SSH-2.0-OpenSSH_9.2p1 Debian\r\n');
    }, port).then((l) => (server = l.server));
  }, 300);
  try {
    await sshdAnswers('127.0.0.1', { port, timeoutMs: 5000, staggerMs: 50 });
    const took = Date.now() - started;
    assert.ok(took >= 300 && took < 1500, `took ${took} ms`);
    // The probe's own connections are gone once it has its answer.
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(sockets.length >= 1);
    assert.ok(
      sockets.every((s) => s.destroyed || s.readableEnded),
      'every probe connection was closed',
    );
  } finally {
    if (server) await close(server);
  }
});

test('nothing listening: a ConnectionError carrying ECONNREFUSED', async () => {
  const port = await freePort();
  await assert.rejects(sshdAnswers('127.0.0.1', { port, timeoutMs: 300 }), (err: unknown) => {
    assert.ok(err instanceof ConnectionError);
    assert.equal(networkErrorCode(err), 'ECONNREFUSED');
    return true;
  });
});

test('a server that accepts and says nothing: ETIMEDOUT; one that speaks something else: not SSH', async () => {
  const silent = await listen(() => undefined);
  const web = await listen((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  try {
    await assert.rejects(
      sshdAnswers('127.0.0.1', { port: silent.port, timeoutMs: 300, staggerMs: 50 }),
      (err: unknown) => err instanceof ConnectionError && networkErrorCode(err) === 'ETIMEDOUT',
    );
    await assert.rejects(
      sshdAnswers('127.0.0.1', { port: web.port, timeoutMs: 300 }),
      (err: unknown) => err instanceof ConnectionError && /answers, but not with SSH/.test(err.message),
    );
  } finally {
    await Promise.all([close(silent.server), close(web.server)]);
  }
});

test('a server that accepts and never speaks does not collect sockets', async () => {
  const held: Socket[] = [];
  const silent = await listen((s) => held.push(s));
  try {
    await assert.rejects(sshdAnswers('127.0.0.1', { port: silent.port, timeoutMs: 600, staggerMs: 5 }));
    assert.ok(held.length <= 20, `${held.length} connections`);
  } finally {
    for (const s of held) s.destroy();
    await close(silent.server);
  }
});

test('stops when cancelled', async () => {
  const port = await freePort();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(
    sshdAnswers('127.0.0.1', { port, timeoutMs: 10_000, signal: controller.signal }),
    CancelledError,
  );
});
