// What a person types as a TrueNAS address: host, host:port, IPv6, https/wss URLs, the web UI's URL, http only
// for loopback; everything else is refused with one specific sentence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressUrl, isLoopbackHost, parseServerAddress } from '../../src/core/server-address';

function ok(input: string) {
  const r = parseServerAddress(input);
  assert.ok(r.ok, `${input}: ${r.ok ? '' : r.problem}`);
  return r.address;
}

function problem(input: string): string {
  const r = parseServerAddress(input);
  assert.ok(!r.ok, `${input} should be refused, got ${JSON.stringify(r)}`);
  return r.problem;
}

test('host names and IP addresses, with and without a port, are wss:// by default', () => {
  assert.deepEqual(ok('truenas.local'), { host: 'truenas.local', port: undefined, secure: true });
  assert.deepEqual(ok('  NAS.lan:8443 '), { host: 'nas.lan', port: 8443, secure: true });
  assert.deepEqual(ok('192.168.1.10'), { host: '192.168.1.10', port: undefined, secure: true });
  assert.deepEqual(ok('[fd00::2]:443'), { host: 'fd00::2', port: 443, secure: true });
  assert.deepEqual(ok('fd00::2'), { host: 'fd00::2', port: undefined, secure: true });
  assert.deepEqual(ok('nas.'), { host: 'nas.', port: undefined, secure: true });
});

test('https://, wss://…/api/current and a pasted web UI URL are understood', () => {
  assert.deepEqual(ok('https://nas.lan'), { host: 'nas.lan', port: undefined, secure: true });
  assert.deepEqual(ok('https://nas.lan:8443/'), { host: 'nas.lan', port: 8443, secure: true });
  assert.deepEqual(ok('wss://nas.lan/api/current'), { host: 'nas.lan', port: undefined, secure: true });
  assert.deepEqual(ok('WSS://10.0.0.5:444/api/current'), { host: '10.0.0.5', port: 444, secure: true });
  assert.deepEqual(ok('https://nas.lan/ui/dashboard'), { host: 'nas.lan', port: undefined, secure: true });
  assert.deepEqual(ok('https://[fd00::2]/ui/signin?next=x#top'), {
    host: 'fd00::2',
    port: undefined,
    secure: true,
  });
});

test('plain http:// and ws:// only for loopback; otherwise the reason (key revocation) is given', () => {
  assert.deepEqual(ok('http://127.0.0.1:8090'), { host: '127.0.0.1', port: 8090, secure: false });
  assert.deepEqual(ok('ws://localhost:8090/api/current'), { host: 'localhost', port: 8090, secure: false });
  assert.deepEqual(ok('http://[::1]:81'), { host: '::1', port: 81, secure: false });
  const why = problem('http://nas.lan');
  assert.match(why, /Plain http:\/\/ would send the API key without TLS/);
  assert.match(why, /TrueNAS revokes a key/);
  assert.match(why, /Use https:\/\/nas\.lan instead/);
  assert.match(problem('ws://192.168.1.10:80'), /Plain ws:\/\//);
});

test('ports: missing, not a number, 0 and above 65535 are refused with the reason', () => {
  assert.match(problem('nas.lan:99999'), /Port 99999 is out of range: ports are 1 to 65535/);
  assert.match(problem('nas.lan:0'), /Port 0 is out of range/);
  assert.match(problem('nas.lan:'), /The port is missing after ":"/);
  assert.match(problem('nas.lan:https'), /The port must be a number from 1 to 65535, not "https"/);
  assert.match(problem('https://nas.lan:65536/'), /Port 65536 is out of range/);
  assert.equal(ok('nas.lan:65535').port, 65535);
  assert.equal(ok('nas.lan:1').port, 1);
});

test('bad hosts get a specific sentence', () => {
  assert.match(problem(''), /Enter the NAS host name or IP address/);
  assert.match(problem('999.1.1.1'), /"999\.1\.1\.1" is not a valid IPv4 address/);
  assert.match(problem('10.0.0'), /not a valid IPv4 address/);
  assert.match(problem('nas_1.lan'), /"_" cannot be part of a host name/);
  assert.match(problem('nas..lan'), /empty part between dots/);
  assert.match(problem('-nas.lan'), /cannot start or end with a hyphen/);
  assert.match(problem(`${'a'.repeat(64)}.lan`), /too long for a part of a host name/);
  assert.match(problem('[fd00::2'), /closing "\]"/);
  assert.match(problem('[nothex::zz]:443'), /not a valid IPv6 address/);
  assert.match(problem('fd00::2:443x'), /Put an IPv6 address in brackets/);
  assert.match(problem('https://:443'), /The host is missing/);
});

test('URLs: other schemes, paths, credentials and one-slash typos are refused', () => {
  assert.match(problem('ftp://nas.lan'), /"ftp:\/\/" is not a TrueNAS address/);
  assert.match(problem('https://nas.lan/api/v2.0/system'), /remove "\/api\/v2\.0\/system"/);
  assert.match(problem('https://nas.lan/foo'), /Only the address is needed/);
  assert.match(problem('https://root@nas.lan'), /Leave the user name out of the address/);
  assert.match(problem('https:/nas.lan'), /two slashes/);
  assert.match(problem('nas.lan/api/current'), /Enter just the host/);
});

test('addressUrl is what the client connects to', () => {
  assert.equal(addressUrl(ok('nas.lan')), 'wss://nas.lan/api/current');
  assert.equal(addressUrl(ok('[fd00::2]:8443')), 'wss://[fd00::2]:8443/api/current');
  assert.equal(addressUrl(ok('http://127.0.0.1:8090')), 'ws://127.0.0.1:8090/api/current');
});

test('loopback detection', () => {
  for (const h of ['localhost', 'a.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1'])
    assert.ok(isLoopbackHost(h), h);
  for (const h of ['10.0.0.1', 'nas.lan', '::2', '::ffff:10.0.0.1', '128.0.0.1'])
    assert.ok(!isLoopbackHost(h), h);
});
