// The pieces of joining an Incus server with a trust token that need no server: decoding a pasted token (every
// way it can be wrong gets its own sentence), the client certificate made in-process (openssl and Node read it
// back as a TLS client certificate), and the identity files (0700 folder, 0600 files, nothing left on failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeTrustToken } from '../../src/core/incus-trust-token';
import { makeClientCertificate } from '../../src/core/client-certificate';
import { isInside, saveClientIdentity } from '../../src/backends/incus/client-identity';
import { ValidationError } from '../../src/core/errors';
import { redact } from '../../src/core/log';

const FP = 'd418a0f52dc1e6d975864f29cd4afe5d07e2e0452d00253314a459d9f95754d7';
const fields = {
  client_name: 'laptop',
  fingerprint: FP,
  addresses: ['10.0.0.5:8443', '[fd00::5]:8443'],
  secret: '16b8a01436a3ea92ae0cf4e2a95fe7135a7be82f293db4b560614e0ca79f25d9',
  expires_at: '0001-01-01T00:00:00Z',
};
const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64');

test('a token as `incus config trust add` prints it decodes; wrapped over lines too; its secret is redacted', () => {
  const text = encode(fields);
  const wrapped = text.match(/.{1,60}/g)!.join('\n  ');
  const token = decodeTrustToken(`  ${wrapped}\n`);
  assert.equal(token.text, text);
  assert.equal(token.clientName, 'laptop');
  assert.equal(token.fingerprint, FP);
  assert.deepEqual(token.addresses, fields.addresses);
  assert.equal(token.expiresAt, undefined, "Go's zero time is no expiry");
  assert.equal(redact(`sent ${text} with ${fields.secret}`).includes(fields.secret), false);
  assert.equal(redact(`sent ${text}`).includes(text), false);
});

test('garbled, partial, wrong-kind and expired tokens are refused, each with its reason', () => {
  const cases: [string, RegExp][] = [
    ['', /Paste the trust token/],
    ['https is not a token!', /not an Incus trust token.*characters or a length/],
    [encode(fields).slice(0, 41), /not an Incus trust token/],
    [Buffer.from('hello world!').toString('base64'), /not an Incus trust token/],
    [encode([1, 2]), /not an Incus trust token/],
    [encode({ server_name: 'm2', fingerprint: FP, addresses: ['a:1'], secret: 's' }), /cluster join token/],
    [encode({ ...fields, secret: '' }), /It has no secret/],
    [encode({ ...fields, addresses: [] }), /It has no addresses/],
    [encode({ ...fields, fingerprint: 'abc' }), /fingerprint is not a SHA-256/],
    [
      encode({ ...fields, expires_at: '2020-01-01T00:00:00Z' }),
      /expired at 2020-01-01T00:00:00.000Z.*trust add/,
    ],
  ];
  for (const [input, reason] of cases)
    assert.throws(
      () => decodeTrustToken(input),
      (err: unknown) => err instanceof ValidationError && reason.test(err.message),
      input,
    );
  const future = decodeTrustToken(encode({ ...fields, expires_at: '2999-01-01T00:00:00Z' }));
  assert.equal(future.expiresAt?.getUTCFullYear(), 2999);
});

test('the client certificate: P-384, self-signed, for TLS client auth, valid now; openssl agrees', () => {
  const now = new Date();
  const c = makeClientCertificate({ commonName: 'pixels-vscode me@box', now });
  const x = new X509Certificate(c.cert);
  assert.equal(x.fingerprint256.replace(/:/g, '').toLowerCase(), c.fingerprint);
  assert.match(x.subject, /CN=pixels-vscode me@box/);
  assert.equal(x.subject, x.issuer);
  assert.ok(x.verify(x.publicKey));
  assert.ok(x.checkPrivateKey(createPrivateKey(c.key)));
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']); // extended key usage: clientAuth
  assert.equal(x.ca, false);
  assert.ok(new Date(x.validFrom) <= now && new Date(x.validTo).getUTCFullYear() >= now.getUTCFullYear() + 9);
  const dir = mkdtempSync(join(tmpdir(), 'px-cc-'));
  try {
    writeFileSync(join(dir, 'c.pem'), c.cert);
    const out = execFileSync(
      'openssl',
      ['verify', '-CAfile', join(dir, 'c.pem'), '-purpose', 'sslclient', join(dir, 'c.pem')],
      { encoding: 'utf8' },
    );
    assert.match(out, /: OK/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Two certificates never share a key or a serial.
  const other = new X509Certificate(makeClientCertificate({ commonName: 'x' }).cert);
  assert.notEqual(other.serialNumber, x.serialNumber);
  // A validity running past 2049 is encoded as GeneralizedTime and still parses.
  const long = new X509Certificate(makeClientCertificate({ commonName: 'x', days: 40 * 366 }).cert);
  assert.ok(new Date(long.validTo).getUTCFullYear() >= 2060);
});

test('identity files: folder 0700, files 0600; a failed write leaves nothing; isInside', async () => {
  const root = mkdtempSync(join(tmpdir(), 'px-ident-'));
  try {
    const c = makeClientCertificate({ commonName: 'x' });
    const stored = await saveClientIdentity(root, 'lab/../x', c, c.cert);
    assert.equal(stored.dir, join(root, 'lab_.._x'), 'the id cannot leave the root');
    assert.equal(statSync(stored.dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(stored.dir).sort(), ['client.crt', 'client.key', 'server.crt']);
    for (const f of readdirSync(stored.dir)) assert.equal(statSync(join(stored.dir, f)).mode & 0o777, 0o600);
    assert.ok(isInside(root, stored.clientKey));
    assert.ok(!isInside(root, '/etc/passwd'));
    assert.ok(!isInside(root, root));
    // The root is a file: the write fails and leaves nothing behind.
    const file = join(root, 'blocker');
    writeFileSync(file, '');
    await assert.rejects(saveClientIdentity(file, 'y', c, c.cert));
    assert.ok(!existsSync(join(file, 'y')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
