// Certificate description (subject, issuer, validity, SHA-256) from real openssl-made certificates, and the
// handshake-only fetch against a local TLS server that records whether any application byte arrived.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  certificateLines,
  describeCertificate,
  endpointLabel,
  fetchServerCertificate,
  formatFingerprint,
  sameFingerprint,
} from '../../src/core/certificate';
import { ConnectionError } from '../../src/core/errors';
import { makeCaSignedCert, makeSelfSignedCert } from '../lab/tls';

const dir = mkdtempSync(join(tmpdir(), 'pixels-cert-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a self-signed certificate: subject, issuer "itself", names, validity and the openssl fingerprint', () => {
  const made = makeSelfSignedCert(dir, 'nas', {
    cn: 'truenas.local',
    san: 'DNS:truenas.local,IP:192.168.1.10',
  });
  const now = new Date();
  const d = describeCertificate(new X509Certificate(made.cert), now);
  assert.equal(d.subject, 'CN=truenas.local');
  assert.equal(d.issuer, 'CN=truenas.local');
  assert.equal(d.selfSigned, true);
  assert.equal(d.fingerprint, made.fingerprint);
  assert.match(d.subjectAltName, /DNS:truenas\.local, IP Address:192\.168\.1\.10/);
  assert.equal(d.validity, 'valid');
  assert.ok(
    d.validTo.getTime() - d.validFrom.getTime() >= 2 * 86_400_000 - 1000,
    'two days (openssl -days 2)',
  );
  const lines = certificateLines(d);
  assert.deepEqual(
    lines.map((l) => l.split(':')[0]),
    ['Subject', 'Issuer', 'Names', 'Valid', 'SHA-256'],
  );
  assert.equal(lines[1], 'Issuer: itself (self-signed)');
  assert.equal(lines[4], `SHA-256: ${made.fingerprint}`);
  assert.match(lines[3], /^Valid: \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d$/);
  // the same certificate seen later / earlier
  const later = describeCertificate(new X509Certificate(made.cert), new Date(now.getTime() + 3 * 86_400_000));
  assert.equal(later.validity, 'expired');
  assert.match(certificateLines(later)[3], / — EXPIRED$/);
  const earlier = describeCertificate(new X509Certificate(made.cert), new Date(now.getTime() - 86_400_000));
  assert.equal(earlier.validity, 'not-yet-valid');
});

test('a CA-issued certificate is not self-signed, and its issuer is the CA', () => {
  const ca = makeSelfSignedCert(dir, 'ca', { subject: '/CN=Home CA/O=Example' });
  const srv = makeCaSignedCert(dir, 'issued', ca, '/CN=nas.example/O=Example');
  const d = describeCertificate(new X509Certificate(srv.cert));
  assert.equal(d.subject, 'CN=nas.example, O=Example');
  assert.equal(d.issuer, 'CN=Home CA, O=Example');
  assert.equal(d.selfSigned, false);
  assert.equal(d.subjectAltName, '');
  assert.equal(certificateLines(d)[1], 'Issuer: CN=Home CA, O=Example');
  assert.equal(certificateLines(d).length, 4, 'no "Names" line without the extension');
});

test('fingerprints compare in any spelling', () => {
  const hex = 'ab'.repeat(32);
  assert.ok(sameFingerprint(hex, formatFingerprint(hex.toUpperCase())));
  assert.ok(!sameFingerprint(hex, 'ac'.repeat(32)));
  assert.equal(endpointLabel('fd00::2', 443, true), 'wss://[fd00::2]:443 (TLS)');
  assert.equal(endpointLabel('127.0.0.1', 8090, false), 'ws://127.0.0.1:8090 (plain, no TLS)');
});

test('fetchServerCertificate completes the handshake only: no application byte reaches the server', async () => {
  const made = makeSelfSignedCert(dir, 'srv', { cn: 'truenas.local' });
  let received = 0;
  let handshakes = 0;
  const server = tls.createServer({ key: made.key, cert: made.cert }, (socket) => {
    handshakes++;
    socket.on('data', (b) => (received += b.length));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const got = await fetchServerCertificate('127.0.0.1', port);
    assert.equal(got.certificate.fingerprint, made.fingerprint);
    assert.equal(got.caTrusted, false);
    assert.match(got.caProblem ?? '', /SELF_SIGNED|self[- ]signed/i);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(handshakes, 1);
    assert.equal(received, 0, 'nothing but the TLS handshake was sent');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('fetchServerCertificate: refused, and a plain (non-TLS) server, name host, port and transport', async () => {
  const plain = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const port = (plain.address() as net.AddressInfo).port;
  try {
    await assert.rejects(fetchServerCertificate('127.0.0.1', port), (e: Error) => {
      assert.ok(e instanceof ConnectionError, String(e));
      assert.match(e.message, new RegExp(`^Cannot connect to wss://127\\.0\\.0\\.1:${port} \\(TLS\\): `));
      assert.match(e.message, /does not speak TLS|wrong version|reset|closed|disconnected/);
      return true;
    });
  } finally {
    plain.close(); // its close callback waits for the half-closed socket; the port is free once it stops listening
  }
  await assert.rejects(fetchServerCertificate('127.0.0.1', port), (e: Error) => {
    assert.equal(
      e.message,
      `Cannot connect to wss://127.0.0.1:${port} (TLS): connection refused (nothing listens on that port).`,
    );
    return true;
  });
});
