// Joining the lab's Incus over HTTPS with a trust token made by `incus config trust add`, as a remote user would:
// a client certificate made in-process, the server certificate checked against the token's fingerprint before
// anything is sent, the token redeemed, then a list with the stored identity. Spent, wrong-fingerprint and
// unreachable tokens are refused with nothing left on the server (no trust entry) or on disk.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIncusBackend } from '../../../src/backends/incus/index';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import { decodeTrustToken } from '../../../src/core/incus-trust-token';
import {
  forgetTrust,
  redeemTrustToken,
  TrustTokenRefusedError,
} from '../../../src/backends/incus/trust-token';
import { saveClientIdentity } from '../../../src/backends/incus/client-identity';
import { makeClientCertificate } from '../../../src/core/client-certificate';
import { ConnectionError, SecurityError } from '../../../src/core/errors';
import { requireLab, type Lab } from '../../lab/lab';
import { testPrefix } from './helpers';

/** `incus config trust add <name>` on the host: its last line is the token. */
function makeToken(name: string): string {
  const out = execFileSync('incus', ['config', 'trust', 'add', name], { encoding: 'utf8' });
  return out.trim().split('\n').pop()!.trim();
}

/** The same token with other fields (a token "made by another server", or listing other addresses). */
function reencode(token: string, change: Record<string, unknown>): string {
  const fields = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...fields, ...change })).toString('base64');
}

describe('incus trust token against the lab over HTTPS', { timeout: 120_000 }, () => {
  const prefix = testPrefix();
  let lab: Lab;
  let admin: IncusRestClient;
  let dir: string;

  async function trustEntries(): Promise<{ name: string; fingerprint: string }[]> {
    const r = await admin.call<{ name: string; fingerprint: string }[]>('GET', '/1.0/certificates', {
      query: { recursion: '1' },
    });
    return r.metadata
      .filter((c) => c.name.startsWith(`px-${prefix}`))
      .map((c) => ({ name: c.name, fingerprint: c.fingerprint }));
  }

  before(async () => {
    lab = await requireLab();
    assert.ok(lab.httpsAddress, 'the lab serves HTTPS (INCUS_HTTPS_ADDRESS in lab.env)');
    admin = new IncusRestClient({ socketPath: lab.socket });
    dir = mkdtempSync(join(tmpdir(), 'px-trust-token-'));
  });

  after(async () => {
    if (admin) {
      for (const entry of await trustEntries().catch(() => []))
        await admin.call('DELETE', `/1.0/certificates/${entry.fingerprint}`).catch(() => undefined);
      // Tokens a failed test left unredeemed.
      const ops = await admin
        .call<{ id: string; class: string; metadata?: { request?: { name?: string } } }[]>(
          'GET',
          '/1.0/operations',
          { query: { recursion: '1' } },
        )
        .catch(() => undefined);
      const all = ops ? Object.values(ops.metadata as unknown as Record<string, unknown[]>).flat() : [];
      for (const op of all as { id: string; class: string; metadata?: { request?: { name?: string } } }[])
        if (op.class === 'token' && op.metadata?.request?.name?.startsWith(`px-${prefix}`))
          await admin.call('DELETE', `/1.0/operations/${op.id}`).catch(() => undefined);
      admin.close();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('redeem a fresh token, keep the identity 0600, list with it; then it is spent', async () => {
    const token = decodeTrustToken(makeToken(`px-${prefix}-a`));
    assert.deepEqual(token.addresses, [lab.httpsAddress]);
    const client = makeClientCertificate({ commonName: `px-${prefix}@test` });
    const redeemed = await redeemTrustToken({ token, client });
    assert.equal(redeemed.url, `https://${lab.httpsAddress}`);
    assert.match(redeemed.version, /^Incus 6\./);
    const entries = await trustEntries();
    assert.deepEqual(entries, [{ name: `px-${prefix}-a`, fingerprint: client.fingerprint }]);

    const stored = await saveClientIdentity(join(dir, 'identities'), 'lab', client, redeemed.serverCert);
    assert.equal(statSync(stored.dir).mode & 0o777, 0o700);
    for (const f of readdirSync(stored.dir))
      assert.equal(statSync(join(stored.dir, f)).mode & 0o777, 0o600, f);
    const backend = createIncusBackend({ serverId: 'lab-token', url: redeemed.url, ...stored });
    try {
      assert.ok(Array.isArray(await backend.list()));
    } finally {
      backend.dispose();
    }

    // The same token again, from another client: refused as spent, and that client is not trusted.
    const second = makeClientCertificate({ commonName: `px-${prefix}@again` });
    await assert.rejects(
      redeemTrustToken({ token, client: second }),
      (err: unknown) =>
        err instanceof TrustTokenRefusedError &&
        /used already/.test(err.message) &&
        /trust add/.test(err.message),
    );
    assert.deepEqual(
      (await trustEntries()).map((e) => e.fingerprint),
      [client.fingerprint],
    );

    // The client removes its own trust entry (what Remove Server does).
    assert.equal(await forgetTrust({ url: redeemed.url, ...stored }, client.fingerprint), true);
    assert.deepEqual(await trustEntries(), []);
  });

  test('a token whose fingerprint is not the server certificate: refused before sending; the token stays good', async () => {
    const text = makeToken(`px-${prefix}-b`);
    const forged = reencode(text, { fingerprint: 'ab'.repeat(32) });
    const client = makeClientCertificate({ commonName: `px-${prefix}@b` });
    await assert.rejects(
      redeemTrustToken({ token: decodeTrustToken(forged), client }),
      (err: unknown) =>
        err instanceof SecurityError &&
        err.message.includes('AB:AB:AB') &&
        /Nothing was sent/.test(err.message),
    );
    assert.deepEqual(await trustEntries(), []);
    // Nothing reached the server: the real token (same secret) still works.
    const redeemed = await redeemTrustToken({ token: decodeTrustToken(text), client });
    assert.equal((await trustEntries()).length, 1);
    const stored = await saveClientIdentity(join(dir, 'identities'), 'lab-b', client, redeemed.serverCert);
    assert.equal(await forgetTrust({ url: redeemed.url, ...stored }, client.fingerprint), true);
  });

  test('unreachable addresses are named; the next address in the token, or one given, is used', async () => {
    const text = makeToken(`px-${prefix}-c`);
    const client = makeClientCertificate({ commonName: `px-${prefix}@c` });
    const nowhere = decodeTrustToken(reencode(text, { addresses: ['127.0.0.1:1'] }));
    await assert.rejects(
      redeemTrustToken({ token: nowhere, client }),
      (err: unknown) =>
        err instanceof ConnectionError &&
        err.message.includes('https://127.0.0.1:1 (connection refused') &&
        /another address/.test(err.message),
    );
    assert.deepEqual(await trustEntries(), []);
    // The address the person gives instead.
    const redeemed = await redeemTrustToken({ token: nowhere, client, address: lab.httpsAddress });
    assert.equal(redeemed.url, `https://${lab.httpsAddress}`);
    const stored = await saveClientIdentity(join(dir, 'identities'), 'lab-c', client, redeemed.serverCert);
    assert.equal(await forgetTrust({ url: redeemed.url, ...stored }, client.fingerprint), true);

    // A token listing a dead address first: the live one after it is used.
    const text2 = makeToken(`px-${prefix}-d`);
    const both = decodeTrustToken(reencode(text2, { addresses: ['127.0.0.1:1', lab.httpsAddress] }));
    const client2 = makeClientCertificate({ commonName: `px-${prefix}@d` });
    const again = await redeemTrustToken({ token: both, client: client2 });
    assert.equal(again.url, `https://${lab.httpsAddress}`);
    const stored2 = await saveClientIdentity(join(dir, 'identities'), 'lab-d', client2, again.serverCert);
    assert.equal(await forgetTrust({ url: again.url, ...stored2 }, client2.fingerprint), true);
    assert.deepEqual(await trustEntries(), []);
  });
});
