// The pixels TOML keys a TrueNAS user brings along ([truenas] and [defaults] nic_type/parent/network/dns) and the
// per-server "nic" setting: each takes effect, or is reported with file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_TRUENAS_ID, loadConfig, type LoadOptions } from '../../src/core/config';

function withToml(text: string, fn: (file: string, home: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-config-nic-'));
  try {
    const file = join(dir, 'config.toml');
    writeFileSync(file, text);
    fn(file, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const load = (file: string, home: string, extra: Partial<LoadOptions> = {}) =>
  loadConfig({ configFile: file, home, env: {}, ...extra });

const PIXELS_TOML = [
  'backend = "truenas"',
  '[truenas]',
  'host = "nas.lan"',
  'port = 8443',
  'username = "truenas_admin"',
  'api_key = "7-secretsecret"',
  'insecure_skip_verify = true',
  '[defaults]',
  'nic_type = "macvlan"',
  'parent = "eno1"',
  'dns = ["192.168.1.1"]',
  '',
].join('\n');

test("a pixels user's [truenas] section becomes a server: host, port, username, api_key", () => {
  withToml(PIXELS_TOML, (file, home) => {
    const { config } = load(file, home);
    const s = config.servers.find((x) => x.id === CLI_TRUENAS_ID);
    assert.ok(s);
    assert.equal(s.host, 'nas.lan');
    assert.equal(s.port, 8443);
    assert.equal(s.username, 'truenas_admin');
    assert.equal(s.secure, true);
    assert.deepEqual(config.apiKeys, [{ serverId: CLI_TRUENAS_ID, apiKey: '7-secretsecret', source: file }]);
  });
});

test('insecure_skip_verify = true is reported at its line as not honoured; TLS stays verified', () => {
  withToml(PIXELS_TOML, (file, home) => {
    const { config, problems } = load(file, home);
    const p = problems.find((x) => x.key === 'truenas.insecure_skip_verify');
    assert.ok(p);
    assert.equal(p.source, file);
    assert.equal(p.line, 7);
    assert.match(p.message, /not honoured/);
    assert.match(p.message, /pinned SHA-256 fingerprint/);
    assert.equal(config.servers[0].secure, true);
    assert.equal(config.servers[0].tlsFingerprint, undefined);
  });
  const env = { PIXELS_TRUENAS_HOST: 'nas.lan', PIXELS_TRUENAS_INSECURE: 'true' };
  withToml('', (file, home) => {
    const { problems } = load(file, home, { env });
    assert.equal(problems[0].source, 'environment');
    assert.equal(problems[0].key, 'PIXELS_TRUENAS_INSECURE');
    assert.match(problems[0].message, /not honoured/);
  });
  withToml('[truenas]\nhost = "nas.lan"\ninsecure_skip_verify = false\n', (file, home) => {
    assert.deepEqual(load(file, home).problems, []);
  });
});

test('[defaults] nic_type/parent reach every server; nic_type is case-insensitive', () => {
  withToml(PIXELS_TOML, (file, home) => {
    const { config } = load(file, home);
    assert.deepEqual(config.defaults.nic, { nicType: 'MACVLAN', parent: 'eno1' });
    assert.deepEqual(config.servers[0].nic, { nicType: 'MACVLAN', parent: 'eno1' });
  });
  withToml('[truenas]\nhost = "n"\n[defaults]\nnic_type = "BRIDGED"\nparent = "br0"\n', (file, home) => {
    assert.deepEqual(load(file, home).config.servers[0].nic, { nicType: 'BRIDGED', parent: 'br0' });
  });
  withToml('[incus]\nsocket = "/s"\n[defaults]\nnetwork = "labnet"\n', (file, home) => {
    const { config, problems } = load(file, home);
    assert.deepEqual(problems, []);
    assert.deepEqual(config.servers[0].nic, { network: 'labnet' });
  });
});

test('[defaults] dns is reported at its line as unsupported', () => {
  withToml(PIXELS_TOML, (file, home) => {
    const p = load(file, home).problems.find((x) => x.key === 'defaults.dns');
    assert.ok(p);
    assert.equal(p.line, 11);
    assert.match(p.message, /not supported/);
  });
  withToml('[defaults]\ndns = []\n', (file, home) => assert.deepEqual(load(file, home).problems, []));
});

test('bad [defaults] NIC values are reported with their line and ignored', () => {
  withToml('[truenas]\nhost = "n"\n[defaults]\nnic_type = "vlan"\nparent = "eno1"\n', (file, home) => {
    const { config, problems } = load(file, home);
    assert.equal(problems[0].key, 'defaults.nic_type');
    assert.equal(problems[0].line, 4);
    assert.match(problems[0].message, /"macvlan" or "bridged"/);
    assert.equal(config.servers[0].nic, undefined);
  });
  withToml('[defaults]\nnic_type = "macvlan"\n', (file, home) => {
    const { config, problems } = load(file, home);
    assert.equal(problems[0].line, 2);
    assert.match(problems[0].message, /needs parent/);
    assert.equal(config.defaults.nic, undefined);
  });
  withToml('[defaults]\nparent = "eno1"\n', (file, home) => {
    const { problems } = load(file, home);
    assert.equal(problems[0].key, 'defaults.parent');
    assert.match(problems[0].message, /needs nic_type/);
  });
});

test('a server\'s "nic" setting wins over [defaults]; bad ones are refused with the field named', () => {
  withToml(PIXELS_TOML, (file, home) => {
    const { config, problems } = load(file, home, {
      settings: {
        servers: [
          { id: CLI_TRUENAS_ID, nic: { type: 'bridged', parent: 'br0' } },
          { id: 'other', kind: 'truenas', host: 'nas2.lan' },
        ],
      },
    });
    assert.equal(problems.filter((p) => p.source === 'settings').length, 0);
    const cli = config.servers.find((s) => s.id === CLI_TRUENAS_ID);
    assert.deepEqual(cli?.nic, { nicType: 'BRIDGED', parent: 'br0' });
    // A server without its own setting gets the [defaults] one.
    assert.deepEqual(config.servers.find((s) => s.id === 'other')?.nic, {
      nicType: 'MACVLAN',
      parent: 'eno1',
    });
  });
  withToml('', (file, home) => {
    const bad = (nic: unknown) =>
      load(file, home, { settings: { servers: [{ id: 'n', kind: 'truenas', host: 'h', nic }] } }).problems;
    assert.match(bad({ type: 'macvlan' })[0].message, /needs "parent"/);
    assert.equal(bad({ type: 'macvlan' })[0].key, 'pixels.servers[0].nic');
    assert.match(bad({ type: 'vlan', parent: 'x' })[0].message, /"macvlan" or "bridged"/);
    assert.match(bad({ kind: 'x' })[0].message, /unknown field "kind"/);
    assert.match(bad('br0')[0].message, /must be an object/);
    assert.match(bad({})[0].message, /needs "type" and "parent"/);
    const ok = load(file, home, {
      settings: {
        servers: [{ id: 'n', kind: 'truenas', host: 'h', nic: { type: 'MACVLAN', parent: 'enp1s0' } }],
      },
    });
    assert.deepEqual(ok.config.servers[0].nic, { nicType: 'MACVLAN', parent: 'enp1s0' });
  });
});
