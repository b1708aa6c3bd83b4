import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecurityError, UnsupportedError } from '../../src/core/errors';
import { assertTransportAllowed } from '../../src/backends/truenas/tls';
import { formatFingerprint, normalizeFingerprint } from '../../src/core/certificate';
import { isLoopbackHost } from '../../src/core/server-address';
import { apiFamily, parseVersion } from '../../src/backends/truenas/version';
import { isReadMethod } from '../../src/backends/truenas/client';
import { preview } from '../../src/backends/truenas/connection';
import { registerSecret } from '../../src/core/log';

const HEX = 'ab'.repeat(32);

test('fingerprints are normalised from colon, space, lower-case and sha256: forms', () => {
  assert.equal(normalizeFingerprint(HEX), 'AB'.repeat(32));
  assert.equal(normalizeFingerprint(HEX.match(/../g)!.join(':')), 'AB'.repeat(32));
  assert.equal(normalizeFingerprint(`SHA256:${HEX}`), 'AB'.repeat(32));
  assert.equal(normalizeFingerprint(` ${HEX.toUpperCase()} `), 'AB'.repeat(32));
  assert.equal(formatFingerprint(HEX), Array(32).fill('AB').join(':'));
  assert.throws(() => normalizeFingerprint('ab:cd'), SecurityError);
  assert.throws(() => normalizeFingerprint('zz'.repeat(32)), /64 hex digits/);
});

test('loopback detection', () => {
  for (const h of [
    '127.0.0.1',
    '127.1.2.3',
    'localhost',
    'LOCALHOST',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
    'x.localhost',
  ])
    assert.ok(isLoopbackHost(h), h);
  for (const h of [
    '10.0.0.1',
    '192.168.1.10',
    'nas.local',
    '128.0.0.1',
    '::2',
    '::ffff:10.0.0.1',
    'localhost.example.com',
    '1.127.0.0',
  ])
    assert.ok(!isLoopbackHost(h), h);
});

test('an API key is refused over ws:// to a non-loopback host, allowed over wss:// or to loopback', () => {
  assert.throws(
    () => assertTransportAllowed('nas.local', false),
    (e: Error) => {
      assert.ok(e instanceof SecurityError);
      return /Refusing to send the API key to nas\.local over plain ws:\/\//.test(e.message);
    },
  );
  assert.doesNotThrow(() => assertTransportAllowed('nas.local', true));
  assert.doesNotThrow(() => assertTransportAllowed('127.0.0.1', false));
  assert.doesNotThrow(() => assertTransportAllowed('::1', false));
});

test('system.version strings → API family', () => {
  const a = parseVersion('TrueNAS-25.04.2.6');
  assert.deepEqual([a.major, a.minor, a.display], [25, 4, '25.04.2.6']);
  assert.equal(apiFamily(a), 'virt-25.04');
  assert.equal(apiFamily(parseVersion('25.10.1')), 'virt-25.10');
  assert.equal(apiFamily(parseVersion('TrueNAS-SCALE-25.10.0')), 'virt-25.10');
  assert.equal(apiFamily(parseVersion('25.04.0')), 'virt-25.04');
  // 26 speaks container.* (three components; early nightlies were 26.04), so does every later major.
  assert.equal(apiFamily(parseVersion('TrueNAS-26.0.0-BETA.3')), 'container-26');
  assert.equal(apiFamily(parseVersion('TrueNAS-26.0.0-RC.1')), 'container-26');
  assert.equal(apiFamily(parseVersion('TrueNAS-26.04.0-MASTER-20250601')), 'container-26');
  assert.equal(apiFamily(parseVersion('27.0.0-BETA.1')), 'container-26');
  assert.equal(parseVersion('TrueNAS-26.0.0-BETA.3').display, '26.0.0-BETA.3');
  assert.throws(() => apiFamily(parseVersion('TrueNAS-SCALE-24.10.2.4')), /needs TrueNAS 25\.04 or later/);
  assert.throws(() => parseVersion('garbage'), UnsupportedError);
});

test('only reads are treated as idempotent', () => {
  for (const m of [
    'virt.instance.query',
    'zfs.snapshot.query',
    'pool.snapshot.query',
    'virt.global.config',
    'system.version',
    'core.get_jobs',
    'virt.instance.get_instance',
  ])
    assert.ok(isReadMethod(m), m);
  for (const m of [
    'virt.instance.create',
    'virt.instance.delete',
    'zfs.snapshot.create',
    'pool.snapshot.rollback',
    'filesystem.file_receive',
    'core.job_abort',
  ])
    assert.ok(!isReadMethod(m), m);
});

test('TLS peer judgement: CA-verified + right host passes; wrong host, unverified or wrong pin are refused with the fingerprint', async () => {
  const { judgePeer } = await import('../../src/backends/truenas/tls');
  const fp = Array(32).fill('C0').join(':');
  const cert = { subject: { CN: 'nas.example' }, subjectaltname: 'DNS:nas.example', fingerprint256: fp };
  const peer = (authorized: boolean, authorizationError?: string) =>
    ({
      authorized,
      authorizationError,
      getPeerCertificate: () => cert,
    }) as unknown as import('node:tls').TLSSocket;
  const ok = judgePeer(peer(true), 'nas.example', undefined);
  assert.deepEqual(ok, { ok: true, fingerprint: 'C0'.repeat(32), how: 'ca' });
  const wrongHost = judgePeer(peer(true), 'other.example', undefined);
  assert.ok(!wrongHost.ok && wrongHost.error.message.includes(fp));
  const selfSigned = judgePeer(peer(false, 'DEPTH_ZERO_SELF_SIGNED_CERT'), 'nas.example', undefined);
  assert.ok(
    !selfSigned.ok &&
      /DEPTH_ZERO_SELF_SIGNED_CERT/.test(selfSigned.error.message) &&
      selfSigned.error.message.includes(fp),
  );
  const pinned = judgePeer(peer(false), '10.0.0.2', 'c0'.repeat(32));
  assert.deepEqual(pinned, { ok: true, fingerprint: 'C0'.repeat(32), how: 'pin' });
  const badPin = judgePeer(peer(true), 'nas.example', 'c1'.repeat(32));
  assert.ok(!badPin.ok && /does not match the pinned fingerprint/.test(badPin.error.message));
});

test('the trace preview of a big frame is its redacted head: a secret that starts before the cut is never shown', () => {
  const secret = `1-${'s'.repeat(64)}`;
  registerSecret(secret);
  const frame = `{"jsonrpc":"2.0","result":"${'x'.repeat(250)}${secret}${'y'.repeat(5_000_000)}","id":"7"}`;
  const shown = preview(frame, 300);
  assert.equal(shown.length, 300);
  assert.ok(!shown.includes('ssssssss'), shown);
  assert.match(shown, /«redacted»/);
  assert.match(preview('{"api_key":"abc"}', 300), /"api_key":"«redacted»"/);
});
