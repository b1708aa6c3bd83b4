// waitForSsh against a real sshd: succeeds once the pinned key answers and login works; on expiry a
// TimeoutError says what was seen last.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CancelledError, TimeoutError } from '../../src/core/errors';
import type { SshTarget } from '../../src/ssh/connect';
import { generateHostKey, generateKeyPair } from '../../src/ssh/keys';
import { SshPool } from '../../src/ssh/pool';
import { waitForSsh } from '../../src/ssh/ready';
import { startSshdFixture, type SshdFixture } from '../lab/sshd';

async function unusedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe('waitForSsh (real sshd)', () => {
  let fx: SshdFixture;
  before(async () => {
    fx = await startSshdFixture();
  });
  after(async () => {
    await fx.sshd.stop();
  });

  it('resolves when sshd answers with the pinned key and login works', async () => {
    await waitForSsh(fx.target, { timeoutMs: 10_000 });
  });

  it('keeps the proven connection warm in a pool', async () => {
    const pool = new SshPool();
    try {
      await waitForSsh(fx.target, { timeoutMs: 10_000, pool });
      assert.equal(pool.size, 1);
      assert.equal((await pool.exec(fx.target, 'echo warm')).stdout.toString(), 'warm\n');
    } finally {
      pool.dispose();
    }
  });

  it('waits for the address and the server to appear', async () => {
    const hostKey = generateHostKey();
    const userKey = generateKeyPair();
    let late: Awaited<ReturnType<typeof startSshdFixture>> | undefined;
    let calls = 0;
    const source = async (): Promise<SshTarget | undefined> => {
      calls++;
      if (!late) return undefined; // "no IP yet"
      return { ...late.target, privateKey: userKey.privateOpenSsh };
    };
    setTimeout(async () => {
      late = await startSshdFixture({ hostKey, authorizedKeys: [userKey.publicOpenSsh] });
    }, 700);
    try {
      await waitForSsh(source, { timeoutMs: 15_000, intervalMs: 100 });
      assert.ok(calls > 2, 'polled while there was no address');
    } finally {
      await new Promise((r) => setTimeout(r, 50));
      await late?.sshd.stop();
    }
  });

  it('names what it saw last on expiry', async () => {
    await assert.rejects(
      waitForSsh(async () => undefined, { timeoutMs: 400, intervalMs: 50, label: 'sandbox dev' }),
      (err: unknown) => {
        assert.ok(err instanceof TimeoutError);
        assert.match(err.message, /sandbox dev.*last seen: no IP address yet/);
        return true;
      },
    );
    const closed = { ...fx.target, port: await unusedPort() };
    await assert.rejects(
      waitForSsh(closed, { timeoutMs: 600, intervalMs: 50 }),
      /last seen: connection refused/,
    );
    const wrongKey = { ...fx.target, hostKey: generateHostKey().publicOpenSsh };
    await assert.rejects(
      waitForSsh(wrongKey, { timeoutMs: 600, intervalMs: 50 }),
      /last seen: Host key mismatch.*expected SHA256:.*got SHA256:/,
    );
    const wrongUser = { ...fx.target, privateKey: generateKeyPair().privateOpenSsh };
    await assert.rejects(
      waitForSsh(wrongUser, { timeoutMs: 600, intervalMs: 50 }),
      /last seen: .*login was refused/,
    );
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(
      waitForSsh(async () => undefined, { timeoutMs: 10_000, intervalMs: 50, signal: controller.signal }),
      CancelledError,
    );
  });
});
