// The host guard's address arithmetic and ACL rules (src/core/ip, src/backends/incus/host-guard), and its
// setting's validation. What the rules do on a real host is in test/integration/guest/host-guard.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { guardRules, privateExceptions } from '../../src/backends/incus/host-guard';
import { loadConfig } from '../../src/core/config';
import { AddressProblem, parseRange, privateRanges, rangeText, subtractRanges } from '../../src/core/ip';

test('ranges: parse, print back as an address, a prefix or a start-end range', () => {
  assert.equal(rangeText(parseRange('10.0.0.0/8')), '10.0.0.0/8');
  assert.equal(rangeText(parseRange('192.168.1.7')), '192.168.1.7');
  assert.equal(rangeText(parseRange('fd00::5')), 'fd00::5');
  assert.equal(rangeText(parseRange('fe80::/10')), 'fe80::/10');
  // Host bits are ignored: the range is the whole prefix.
  assert.equal(rangeText(parseRange('10.1.2.3/16')), '10.1.0.0/16');
  const odd = { family: 4 as const, start: parseRange('10.0.0.1').start, end: parseRange('10.0.0.6').start };
  assert.equal(rangeText(odd), '10.0.0.1-10.0.0.6');
  for (const bad of ['10.0.0', '10.0.0.256', '1.2.3.4/33', 'fd00::/129', 'a::b::c', '1.2.3.4/8/9', 'x'])
    assert.throws(() => parseRange(bad), AddressProblem, bad);
});

test('subtraction: a hole in the middle, at the edges, across pieces; the other family untouched', () => {
  const ten = [parseRange('10.0.0.0/8'), parseRange('fc00::/7')];
  assert.deepEqual(subtractRanges(ten, [parseRange('10.77.0.1')]).map(rangeText), [
    '10.0.0.0-10.77.0.0',
    '10.77.0.2-10.255.255.255',
    'fc00::/7',
  ]);
  assert.deepEqual(subtractRanges(ten, [parseRange('10.0.0.0/9')]).map(rangeText), [
    '10.128.0.0/9',
    'fc00::/7',
  ]);
  assert.deepEqual(subtractRanges(ten, [parseRange('10.0.0.0/8'), parseRange('fd00::/8')]).map(rangeText), [
    'fc00::/8',
  ]);
  // Overlapping input ranges are merged first; removing something outside changes nothing.
  assert.deepEqual(
    subtractRanges([parseRange('10.0.0.0/9'), parseRange('10.0.0.0/8')], [parseRange('8.8.8.8')]).map(
      rangeText,
    ),
    ['10.0.0.0/8'],
  );
});

test('exceptions: only address entries that reach into a private range; domains and public ones are not', () => {
  const got = privateExceptions([
    'api.anthropic.com',
    '203.0.113.10',
    '192.168.1.5',
    '10.20.0.0/16',
    '2001:db8::1',
    'fd42:7078:6c61::1',
    '0.0.0.0/1', // public and private: the private part is an exception too
  ]).map(rangeText);
  assert.deepEqual(got, ['192.168.1.5', '10.20.0.0/16', 'fd42:7078:6c61::1', '0.0.0.0/1']);
});

test('rules: one reject per family, the exceptions cut out (Incus applies rejects before allows)', () => {
  const none = guardRules([]);
  assert.deepEqual(
    none.map((r) => [r.action, r.destination]),
    [
      ['reject', '10.0.0.0/8,169.254.0.0/16,172.16.0.0/12,192.168.0.0/16'],
      ['reject', 'fc00::/7,fe80::/10'],
    ],
  );
  assert.ok(none.every((r) => r.state === 'enabled' && r.description?.startsWith('pixels:')));
  const some = guardRules(privateExceptions(['192.168.1.5', 'fd00::/8']));
  assert.equal(
    some[0].destination,
    '10.0.0.0/8,169.254.0.0/16,172.16.0.0/12,192.168.0.0-192.168.1.4,192.168.1.6-192.168.255.255',
  );
  assert.equal(some[1].destination, 'fc00::/8,fe80::/10');
  // Every private address is allowed: nothing left to reject in IPv6, so no empty rule.
  assert.deepEqual(
    guardRules(privateExceptions(['fc00::/7', 'fe80::/10'])).map((r) => r.description),
    ['pixels: private IPv4 ranges'],
  );
  assert.equal(privateRanges().length, 6);
});

test('setting: hostGuard is "off" or "network", on Incus servers only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'px-guard-'));
  try {
    const { config, problems } = loadConfig({
      configFile: join(dir, 'none.toml'),
      env: {},
      home: dir,
      settings: {
        servers: [
          { id: 'lab', kind: 'incus', hostGuard: 'network' },
          { id: 'nic', kind: 'incus', hostGuard: 'nic' },
          { id: 'nas', kind: 'truenas', host: 'nas.lan', hostGuard: 'network' },
          { id: 'nas2', kind: 'truenas', host: 'nas.lan', hostGuard: 'off' },
        ],
      },
    });
    assert.deepEqual(
      config.servers.map((s) => [s.id, s.hostGuard]),
      [
        ['lab', 'network'],
        ['nas2', 'off'],
      ],
    );
    assert.deepEqual(
      problems.map((p) => p.message),
      [
        'Server "nic" has hostGuard "nic"; use "off" or "network".',
        'Server "nas": hostGuard is an Incus setting; TrueNAS offers no host-side egress layer.',
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
