// exec over the pooled ssh2 connection against a real OpenSSH server on loopback.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Server as Ssh2Server } from 'ssh2';
import { CancelledError, ConnectionError, PixelsError, TimeoutError } from '../../src/core/errors';
import { connect, type SshTarget } from '../../src/ssh/connect';
import { generateKeyPair } from '../../src/ssh/keys';
import { SshPool } from '../../src/ssh/pool';
import { quoteCommand } from '../../src/ssh/quote';
import { startSshdFixture, type SshdFixture } from '../lab/sshd';

/**
 * A loopback TCP hop in front of sshd that hands the server's bytes to the client in bursts: it holds them
 * until the server has been quiet for `quietMs`, then writes them at once. A bridge or VM network does the
 * same by chance; here it happens every time, so the exec reply, the output, the exit status and the close of
 * a fast command reach ssh2 in one read.
 */
async function startBatchingHop(
  port: number,
  quietMs = 15,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let held: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      if (held.length > 0) client.write(Buffer.concat(held));
      held = [];
    };
    upstream.on('data', (chunk: Buffer) => {
      held.push(chunk);
      clearTimeout(timer);
      timer = setTimeout(flush, quietMs);
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const end = () => {
      clearTimeout(timer);
      flush();
      client.end();
      upstream.destroy();
    };
    upstream.on('close', end).on('error', () => {});
    client.on('close', () => upstream.destroy()).on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const EDGE_CASES = [
  'plain',
  'with space',
  '  leading and trailing  ',
  "single'quote",
  "''",
  'double"quote',
  '$HOME',
  '${PATH}',
  '$(id)',
  '`id`',
  'back\\slash',
  'new\nline',
  'tab\there',
  '*',
  '~',
  '!bang',
  '#hash',
  ';&|<>()',
  'héllo wörld ✓ 日本',
  '',
  '-n',
  '%s',
];

describe('ssh exec (real sshd)', () => {
  let fx: SshdFixture;
  let pool: SshPool;
  before(async () => {
    fx = await startSshdFixture();
    pool = new SshPool();
  });
  after(async () => {
    pool.dispose();
    await fx.sshd.stop();
  });

  it('round-trips every awkward argument exactly (argv is quoted, not space-joined)', async () => {
    const expected = EDGE_CASES.map((a) => a + '\n').join('');
    const direct = await pool.exec(fx.target, ['printf', '%s\n', ...EDGE_CASES]);
    assert.equal(direct.exitCode, 0, direct.stderr.toString());
    assert.equal(direct.stdout.toString('utf8'), expected);
    // Through a login shell the command is quoted twice; it must still arrive intact.
    const login = await pool.exec(fx.target, ['printf', '%s\n', ...EDGE_CASES], { loginShell: true });
    assert.equal(login.exitCode, 0, login.stderr.toString());
    assert.equal(login.stdout.toString('utf8'), expected);
    // A caller-built string is sent as is.
    const str = await pool.exec(fx.target, quoteCommand(['printf', '[%s]', '']));
    assert.equal(str.stdout.toString(), '[]');
  });

  it('reports exit codes and signals', async () => {
    for (const code of [0, 1, 42]) {
      const result = await pool.exec(fx.target, ['sh', '-c', `exit ${code}`]);
      assert.equal(result.exitCode, code);
      assert.equal(result.signal, undefined);
    }
    const killed = await pool.exec(fx.target, 'kill -9 $$');
    assert.equal(killed.exitCode, null);
    assert.equal(killed.signal, 'SIGKILL');
  });

  it('gets the exit status of fast commands that finish within the exec reply', async () => {
    // `true` can exit before our listeners exist; its status must still be reported, every time.
    for (let i = 0; i < 300; i++) {
      const result = await pool.exec(fx.target, i % 2 ? 'true' : 'exit 7');
      assert.equal(result.exitCode, i % 2 ? 0 : 7, `run ${i}`);
    }
  });

  it('streams 20+ MiB of output and keeps only the tail in the result', async () => {
    const count = 2_900_000;
    let expected = '';
    for (let i = 1; i <= count; i++) expected += i + '\n';
    const expectedBuf = Buffer.from(expected);
    assert.ok(expectedBuf.length > 20 * 1024 * 1024);
    const hash = createHash('sha256');
    let streamed = 0;
    let chunks = 0;
    const result = await pool.exec(fx.target, ['seq', '1', String(count)], {
      maxBufferBytes: 1024 * 1024,
      onStdout: (chunk) => {
        hash.update(chunk);
        streamed += chunk.length;
        chunks++;
      },
    });
    assert.equal(result.exitCode, 0);
    assert.equal(streamed, expectedBuf.length);
    assert.ok(chunks > 10, 'output arrives in many chunks, not at the end');
    assert.equal(hash.digest('hex'), createHash('sha256').update(expectedBuf).digest('hex'));
    assert.equal(result.stdoutTruncated, true);
    assert.equal(result.stdout.length, 1024 * 1024);
    assert.ok(result.stdout.equals(expectedBuf.subarray(expectedBuf.length - 1024 * 1024)));
  });

  it('sends stdin only when given, and streams stderr separately', async () => {
    const input = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7919) & 0xff;
    const echoed = await pool.exec(fx.target, 'cat', { stdin: input });
    assert.ok(echoed.stdout.equals(input));
    const text = await pool.exec(fx.target, ['wc', '-c'], { stdin: 'héllo' });
    assert.equal(text.stdout.toString().trim(), String(Buffer.byteLength('héllo')));
    // Without stdin the command sees EOF at once instead of hanging on ours.
    const none = await pool.exec(fx.target, 'cat; echo done', { timeoutMs: 5000 });
    assert.equal(none.stdout.toString(), 'done\n');
    const errs: Buffer[] = [];
    const mixed = await pool.exec(fx.target, 'echo out; echo err >&2', { onStderr: (c) => errs.push(c) });
    assert.equal(mixed.stdout.toString(), 'out\n');
    assert.equal(mixed.stderr.toString(), 'err\n');
    assert.equal(Buffer.concat(errs).toString(), 'err\n');
  });

  it('runs many commands at once on one warm connection', async () => {
    const accepted = () => (fx.sshd.log().match(/Accepted publickey/g) ?? []).length;
    await pool.exec(fx.target, 'true');
    const before = accepted();
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) => pool.exec(fx.target, `sleep 0.2; echo ${i}`)),
    );
    results.forEach((r, i) => assert.equal(r.stdout.toString(), `${i}\n`));
    // A burst of short commands: sshd frees finished sessions lazily, the pool must absorb that.
    const burst = await Promise.all(
      Array.from({ length: 60 }, (_, i) => pool.exec(fx.target, ['echo', String(i)])),
    );
    burst.forEach((r, i) => assert.equal(r.stdout.toString(), `${i}\n`));
    assert.equal(pool.size, 1);
    assert.equal(accepted(), before, 'no new logins: everything ran on the existing connection');
  });

  it('times out and cancels commands with typed errors', async () => {
    const started = Date.now();
    await assert.rejects(pool.exec(fx.target, 'sleep 30', { timeoutMs: 300 }), TimeoutError);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(pool.exec(fx.target, 'sleep 30', { signal: controller.signal }), CancelledError);
    assert.ok(Date.now() - started < 5000);
    // A throwing output callback ends the command with that error instead of crashing the process.
    await assert.rejects(
      pool.exec(fx.target, 'echo x; sleep 30', {
        onStdout: () => {
          throw new Error('consumer broke');
        },
      }),
      /consumer broke/,
    );
    // The connection is still fine afterwards.
    assert.equal((await pool.exec(fx.target, 'echo ok')).stdout.toString(), 'ok\n');
  });

  it('fails a command in flight when the server drops the connection, then reconnects transparently', async () => {
    await pool.exec(fx.target, 'true');
    const inFlight = pool.exec(fx.target, 'sleep 30');
    await new Promise((r) => setTimeout(r, 300));
    fx.sshd.dropConnections();
    await assert.rejects(inFlight, (err: unknown) => {
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match((err as Error).message, /lost|closed/);
      return true;
    });
    const again = await pool.exec(fx.target, 'echo back');
    assert.equal(again.stdout.toString(), 'back\n');
    // A drop while idle: the next call reconnects without an error.
    fx.sshd.dropConnections();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await pool.exec(fx.target, 'echo again')).stdout.toString(), 'again\n');
  });

  it('notices a server that hangs without closing (keepalive) and fails the command in flight', async () => {
    const kaPool = new SshPool({ keepaliveIntervalMs: 200, keepaliveCountMax: 2 });
    try {
      await kaPool.exec(fx.target, 'true');
      const inFlight = kaPool.exec(fx.target, 'sleep 30');
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      fx.sshd.signalConnections('SIGSTOP');
      await assert.rejects(inFlight, ConnectionError);
      assert.ok(Date.now() - started < 5000, `noticed after ${Date.now() - started} ms`);
      assert.equal(kaPool.size, 0, 'the dead connection left the pool');
    } finally {
      fx.sshd.dropConnections();
      kaPool.dispose();
    }
    assert.equal((await pool.exec(fx.target, 'echo fresh')).stdout.toString(), 'fresh\n');
  });

  it('closes idle connections and reopens on the next call', async () => {
    const idlePool = new SshPool({ idleTimeoutMs: 300 });
    try {
      await idlePool.exec(fx.target, 'true');
      assert.equal(idlePool.size, 1);
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(idlePool.size, 0, 'idle connection was closed');
      // Busy connections are not closed: a command longer than the idle timeout finishes normally.
      const long = await idlePool.exec(fx.target, 'sleep 0.6; echo survived');
      assert.equal(long.stdout.toString(), 'survived\n');
    } finally {
      idlePool.dispose();
    }
  });
});

describe('ssh exec: fast commands on fresh connections (real sshd)', () => {
  let fx: SshdFixture;
  let hop: { port: number; close(): Promise<void> };
  let batched: SshTarget;
  before(async () => {
    fx = await startSshdFixture();
    hop = await startBatchingHop(fx.sshd.port);
    batched = { ...fx.target, port: hop.port };
  });
  after(async () => {
    await hop?.close();
    await fx?.sshd.stop();
  });

  it('the hop really delivers the exec reply and the exit status in the same tick (the race is exercised)', async () => {
    const client = await connect(batched);
    try {
      for (const command of ['true', 'exit 7']) {
        const sameTick = await new Promise<boolean>((resolve, reject) => {
          client.exec(command, (err, channel) => {
            if (err) return reject(err);
            let handedOver = true;
            queueMicrotask(() => (handedOver = false));
            channel.on('exit', () => resolve(handedOver));
            channel.resume();
            channel.end();
          });
        });
        assert.ok(sameTick, `${command}: 'exit' came in a later read, so this hop proves nothing`);
      }
    } finally {
      client.end();
    }
  });

  it('reports output and exit status of a very fast command on a new connection, every time', async () => {
    const cases: Array<{ command: string; code: number; out: string; stdin?: string; loginShell?: boolean }> =
      [
        { command: 'true', code: 0, out: '' },
        { command: 'exit 7', code: 7, out: '' },
        { command: 'echo x', code: 0, out: 'x\n' },
        { command: 'id -u', code: 0, out: `${process.getuid?.() ?? 0}\n` },
        { command: 'exit 7', code: 7, out: '', stdin: 'not read' },
        { command: 'head -c 3', code: 0, out: 'abc', stdin: 'abcdef' },
        // The test user's login shell prints nothing (empty HOME, no profile output).
        { command: 'true', code: 0, out: '', loginShell: true },
      ];
    for (let round = 0; round < 6; round++) {
      for (const [i, c] of cases.entries()) {
        const pool = new SshPool(); // a new pool: a new connection and a first login each time
        try {
          const result = await pool.exec(batched, c.command, {
            ...(c.stdin !== undefined ? { stdin: c.stdin } : {}),
            ...(c.loginShell ? { loginShell: true } : {}),
            timeoutMs: 10_000,
          });
          const what = `round ${round}, case ${i} (${c.command})`;
          assert.equal(result.exitCode, c.code, what);
          assert.equal(result.stdout.toString(), c.out, what);
          assert.equal(result.stderr.toString(), '', what);
        } finally {
          pool.dispose();
        }
      }
    }
  });

  it('keeps that right for a burst of fast commands on one new connection', async () => {
    const pool = new SshPool();
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => pool.exec(batched, i % 2 ? `echo ${i}` : `exit ${i}`)),
      );
      results.forEach((r, i) => {
        assert.equal(r.exitCode, i % 2 ? 0 : i, `command ${i}`);
        assert.equal(r.stdout.toString(), i % 2 ? `${i}\n` : '', `command ${i}`);
      });
      assert.equal(pool.size, 1);
    } finally {
      pool.dispose();
    }
  });

  it('runs fast commands on many new connections straight to sshd', async () => {
    for (let i = 0; i < 40; i++) {
      const pool = new SshPool();
      try {
        const result = await pool.exec(fx.target, i % 2 ? 'echo x' : 'exit 7', { loginShell: i % 4 < 2 });
        assert.equal(result.exitCode, i % 2 ? 0 : 7, `run ${i}`);
        assert.equal(result.stdout.toString(), i % 2 ? 'x\n' : '', `run ${i}`);
      } finally {
        pool.dispose();
      }
    }
  });

  it('does not start a command whose signal was aborted before the call', async () => {
    const pool = new SshPool();
    const marker = join(fx.sshd.dir, 'must-not-exist');
    try {
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(
        pool.exec(fx.target, ['touch', marker], { signal: controller.signal }),
        CancelledError,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(existsSync(marker), false, 'the cancelled command ran');
      assert.equal((await pool.exec(fx.target, 'echo ok')).stdout.toString(), 'ok\n');
    } finally {
      pool.dispose();
    }
  });
});

describe('ssh exec: a channel closed without an exit status', () => {
  // OpenSSH always sends one, so this server is ssh2's own (a real SSH server on a loopback socket): it
  // answers `no-status` with output and a close but no exit status, and `drop` by cutting the connection.
  const hostKey = generateKeyPair('status-test-host');
  const userKey = generateKeyPair('status-test-user');
  let server: Ssh2Server;
  let target: SshTarget;
  before(async () => {
    server = new Ssh2Server({ hostKeys: [hostKey.privateOpenSsh] }, (client) => {
      client.on('error', () => {});
      client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject()));
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          if (info.command === 'drop') {
            stream.write('partial');
            setTimeout(() => client.end(), 50);
            return;
          }
          stream.write('x');
          if (info.command !== 'no-status') stream.exit(3);
          stream.end();
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    target = {
      host: '127.0.0.1',
      port: typeof address === 'object' && address ? address.port : 0,
      username: 'someone',
      privateKey: userKey.privateOpenSsh,
      hostKey: hostKey.publicOpenSsh,
      label: 'status server',
    };
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('is not reported as a lost connection when the server closed it; a dropped connection is', async () => {
    const pool = new SshPool();
    try {
      const ok = await pool.exec(target, 'with-status');
      assert.equal(ok.exitCode, 3);
      assert.equal(ok.stdout.toString(), 'x');
      await assert.rejects(pool.exec(target, 'no-status'), (err: unknown) => {
        assert.ok(err instanceof PixelsError && !(err instanceof ConnectionError), String(err));
        assert.equal(err.kind, 'server');
        assert.doesNotMatch(err.message, /lost/);
        assert.match(err.message, /status server ended without reporting an exit status/);
        return true;
      });
      // The connection is still there and usable.
      assert.equal(pool.size, 1);
      assert.equal((await pool.exec(target, 'with-status')).exitCode, 3);
      await assert.rejects(pool.exec(target, 'drop'), (err: unknown) => {
        assert.ok(err instanceof ConnectionError, String(err));
        assert.match(err.message, /connection to status server was lost/);
        return true;
      });
    } finally {
      pool.dispose();
    }
  });
});
