import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUILTIN_DEFAULTS,
  CLI_INCUS_ID,
  CLI_TRUENAS_ID,
  configFilePath,
  loadConfig,
  resolveJumpHost,
  type LoadOptions,
} from '../../src/core/config';
import { egressChoices } from '../../src/core/egressChoices';
import { closestKey, editDistance } from '../../src/core/closest';

function withToml(text: string | undefined, fn: (file: string, home: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pixels-config-'));
  try {
    const file = join(dir, 'config.toml');
    if (text !== undefined) writeFileSync(file, text);
    fn(file, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function load(file: string, home: string, extra: Partial<LoadOptions> = {}) {
  return loadConfig({ configFile: file, home, env: {}, ...extra });
}

test('config path: XDG_CONFIG_HOME, then the OS config dir', () => {
  assert.equal(configFilePath({ XDG_CONFIG_HOME: '/x' }, 'linux', '/h'), '/x/pixels/config.toml');
  assert.equal(configFilePath({}, 'linux', '/h'), '/h/.config/pixels/config.toml');
  assert.equal(
    configFilePath({}, 'darwin', '/Users/a'),
    '/Users/a/Library/Application Support/pixels/config.toml',
  );
  assert.match(
    configFilePath({ APPDATA: 'C:\\Users\\a\\AppData\\Roaming' }, 'win32', 'C:\\Users\\a'),
    /Roaming.pixels.config\.toml$/,
  );
});

test('no file, no env, no settings: built-in defaults and no servers', () => {
  withToml(undefined, (file, home) => {
    const { config, problems } = load(file, home);
    assert.deepEqual(problems, []);
    assert.deepEqual(config.defaults, BUILTIN_DEFAULTS);
    assert.deepEqual(config.servers, []);
    assert.equal(config.ssh.identityFile, join(home, '.ssh', 'id_ed25519'));
    assert.equal(config.refreshIntervalSeconds, 60);
  });
});

test('safe by default: egress set nowhere means agent; any explicit setting still wins', () => {
  withToml(undefined, (file, home) => {
    assert.equal(load(file, home).config.defaults.egress, 'agent');
    assert.equal(
      load(file, home, { env: { PIXELS_NETWORK_EGRESS: 'unrestricted' } }).config.defaults.egress,
      'unrestricted',
    );
    assert.equal(
      load(file, home, { settings: { defaults: { egress: 'unrestricted' } } }).config.defaults.egress,
      'unrestricted',
    );
    // The settings reader passes only what the user set: an unset value is undefined, not the manifest default.
    assert.equal(
      load(file, home, { settings: { defaults: { egress: undefined } } }).config.defaults.egress,
      'agent',
    );
  });
  withToml('[network]\negress = "unrestricted"\n', (file, home) => {
    assert.equal(load(file, home).config.defaults.egress, 'unrestricted', 'an explicit pixels config wins');
  });
  withToml('[network]\nallow = ["example.org"]\n', (file, home) => {
    assert.equal(load(file, home).config.defaults.egress, 'agent', 'a [network] table without egress');
  });
});

test('the create flow offers the effective default first, marked as the default', () => {
  assert.deepEqual(
    egressChoices('agent').map((c) => `${c.value}: ${c.description}`),
    [
      'agent: AI APIs, package registries, git hosts and tool installers only (default)',
      'allowlist: Only the domains and addresses you allow',
      'unrestricted: No restrictions: the sandbox reaches everything',
    ],
  );
  assert.deepEqual(
    egressChoices('unrestricted').map((c) => c.value),
    ['unrestricted', 'agent', 'allowlist'],
  );
  assert.match(egressChoices('allowlist')[0].description, /\(default\)$/);
  assert.equal(egressChoices('allowlist').filter((c) => /default/.test(c.description)).length, 1);
});

test('the manifest default for pixels.defaults.egress is agent, listed first', () => {
  const manifest = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { default: unknown; enum: string[] }> } };
  };
  const egress = manifest.contributes.configuration.properties['pixels.defaults.egress'];
  assert.equal(egress.default, 'agent');
  assert.equal(egress.enum[0], 'agent');
});

test('precedence: settings > PIXELS_* env > TOML > built-in defaults', () => {
  const toml = `
[defaults]
image = "debian/12"
cpu = 4
memory = 4096

[network]
egress = "agent"
allow = ["example.org"]

[provision]
enabled = false
`;
  withToml(toml, (file, home) => {
    // TOML only
    const first = load(file, home);
    assert.deepEqual(first.problems, []);
    let config = first.config;
    assert.equal(config.defaults.image, 'debian/12');
    assert.equal(config.defaults.cpu, '4');
    assert.equal(config.defaults.memoryMiB, 4096);
    assert.equal(config.defaults.egress, 'agent');
    assert.equal(config.defaults.provision, false);
    assert.deepEqual(config.defaults.allow, ['example.org']);

    // env beats TOML; an empty env value does not override
    ({ config } = load(file, home, {
      env: {
        PIXELS_DEFAULT_IMAGE: 'alpine/3.20',
        PIXELS_DEFAULT_MEMORY: '1024',
        PIXELS_DEFAULT_CPU: '',
        PIXELS_NETWORK_EGRESS: 'allowlist',
      },
    }));
    assert.equal(config.defaults.image, 'alpine/3.20');
    assert.equal(config.defaults.memoryMiB, 1024);
    assert.equal(config.defaults.cpu, '4');
    assert.equal(config.defaults.egress, 'allowlist');

    // settings beat env
    ({ config } = load(file, home, {
      env: { PIXELS_DEFAULT_IMAGE: 'alpine/3.20' },
      settings: { defaults: { image: 'ubuntu/22.04', memoryMiB: 512, provision: true } },
    }));
    assert.equal(config.defaults.image, 'ubuntu/22.04');
    assert.equal(config.defaults.memoryMiB, 512);
    assert.equal(config.defaults.provision, true);
  });
});

test('TOML syntax error: names file, line and key; the rest of the file still loads', () => {
  const toml = [
    '[defaults]',
    'image = "debian/12"',
    'memory = = 4096',
    'cpu = "3"',
    '',
    '[truenas]',
    'host = "nas.lan"',
  ].join('\n');
  withToml(toml, (file, home) => {
    const { config, problems } = load(file, home);
    assert.equal(problems.length, 1);
    assert.equal(problems[0].source, file);
    assert.equal(problems[0].line, 3);
    assert.equal(problems[0].key, 'memory');
    assert.match(problems[0].message, /syntax/i);
    assert.equal(config.defaults.image, 'debian/12');
    assert.equal(config.defaults.cpu, '3');
    assert.equal(config.defaults.memoryMiB, BUILTIN_DEFAULTS.memoryMiB);
    assert.equal(config.servers[0]?.host, 'nas.lan');
  });
});

test('wrong types: line and dotted key, value ignored, others kept', () => {
  const toml = [
    '[defaults]',
    'image = 12',
    'memory = "lots"',
    'cpu = "0"',
    '',
    '[network]',
    'egress = "open"',
    '[provision]',
    'enabled = "yes"',
  ].join('\n');
  withToml(toml, (file, home) => {
    const { config, problems } = load(file, home);
    const by = (key: string) => problems.find((p) => p.key === key);
    assert.equal(by('defaults.image')?.line, 2);
    assert.match(by('defaults.image')!.message, /string/);
    assert.equal(by('defaults.memory')?.line, 3);
    assert.equal(by('defaults.cpu')?.line, 4);
    assert.equal(by('network.egress')?.line, 7);
    assert.match(by('network.egress')!.message, /unrestricted, agent, allowlist/);
    assert.equal(by('provision.enabled')?.line, 9);
    assert.deepEqual(config.defaults, BUILTIN_DEFAULTS);
  });
});

test('invalid env values are reported against the variable and ignored', () => {
  withToml(undefined, (file, home) => {
    const { config, problems } = load(file, home, {
      env: { PIXELS_DEFAULT_MEMORY: 'big', PIXELS_PROVISION_ENABLED: 'maybe' },
    });
    assert.deepEqual(
      problems.map((p) => [p.source, p.key]),
      [
        ['environment', 'PIXELS_DEFAULT_MEMORY'],
        ['environment', 'PIXELS_PROVISION_ENABLED'],
      ],
    );
    assert.equal(config.defaults.memoryMiB, BUILTIN_DEFAULTS.memoryMiB);
  });
});

test('TrueNAS server from TOML/env; the API key is offered for import, never part of the server', () => {
  const toml = [
    '[truenas]',
    'host = "nas.lan"',
    'port = 8443',
    'username = "agent"',
    'api_key = "1-abcdefabcdef"',
  ].join('\n');
  withToml(toml, (file, home) => {
    let { config } = load(file, home);
    assert.equal(config.servers.length, 1);
    const s = config.servers[0];
    assert.equal(s.id, CLI_TRUENAS_ID);
    assert.equal(s.kind, 'truenas');
    assert.equal(s.host, 'nas.lan');
    assert.equal(s.port, 8443);
    assert.equal(s.username, 'agent');
    assert.equal(s.secure, true);
    assert.ok(!JSON.stringify(config.servers).includes('abcdef'), 'no key in server configs');
    assert.deepEqual(config.apiKeys, [{ serverId: CLI_TRUENAS_ID, apiKey: '1-abcdefabcdef', source: file }]);

    ({ config } = load(file, home, {
      env: { PIXELS_TRUENAS_HOST: 'other.lan', PIXELS_TRUENAS_API_KEY: '2-fromenv' },
    }));
    assert.equal(config.servers[0].host, 'other.lan');
    assert.deepEqual(config.apiKeys, [
      { serverId: CLI_TRUENAS_ID, apiKey: '2-fromenv', source: 'environment' },
    ]);
  });
});

test('insecure_skip_verify is refused with a pointer to pinning', () => {
  withToml('[truenas]\nhost = "nas.lan"\ninsecure_skip_verify = true\n', (file, home) => {
    const { config, problems } = load(file, home);
    assert.equal(problems[0].key, 'truenas.insecure_skip_verify');
    assert.equal(problems[0].line, 3);
    assert.match(problems[0].message, /tlsFingerprint/);
    assert.equal(config.servers[0].secure, true);
  });
});

test('settings servers: validated, and an entry with the CLI id overrides field by field', () => {
  withToml(
    '[truenas]\nhost = "nas.lan"\n[incus]\nsocket = "~/incus.sock"\nproject = "agents"\n',
    (file, home) => {
      const { config, problems } = load(file, home, {
        settings: {
          servers: [
            { id: CLI_TRUENAS_ID, tlsFingerprint: 'AB:'.repeat(31) + 'AB', label: 'My NAS' },
            { id: 'sim', kind: 'truenas', host: '127.0.0.1', port: 1234, secure: false, username: 'admin' },
            { id: 'bad', kind: 'truenas' },
            { id: 'worse', kind: 'docker', host: 'x' },
            { id: 'typo', kind: 'truenas', host: 'x', prot: 1 },
            { id: 'sim', kind: 'truenas', host: 'dup' },
          ],
        },
      });
      const ids = config.servers.map((s) => s.id);
      assert.deepEqual(ids, [CLI_TRUENAS_ID, CLI_INCUS_ID, 'sim']);
      const nas = config.servers[0];
      assert.equal(nas.host, 'nas.lan');
      assert.equal(nas.label, 'My NAS');
      assert.equal(nas.tlsFingerprint, 'AB:'.repeat(31) + 'AB');
      const incus = config.servers[1];
      assert.equal(incus.socketPath, join(home, 'incus.sock'));
      assert.equal(incus.project, 'agents');
      assert.equal(config.servers[2].port, 1234);
      assert.deepEqual(
        problems.map((p) => p.key),
        ['pixels.servers[2]', 'pixels.servers[3].kind', 'pixels.servers[4].prot', 'pixels.servers[5].id'],
      );
      assert.match(problems[0].message, /needs a host/);
    },
  );
});

test('[env] table: image, forward and session variables; bad entries named with their line', () => {
  const toml = [
    '[env]',
    'EDITOR = "vim"',
    'LANG = { value = "C.UTF-8" }',
    'TOKEN = { forward = true }',
    'MODE = { value = "x", session_only = true }',
    'BAD = 3',
  ].join('\n');
  withToml(toml, (file, home) => {
    const { config, problems } = load(file, home);
    assert.deepEqual(config.env, {
      image: { EDITOR: 'vim', LANG: 'C.UTF-8' },
      forward: ['TOKEN'],
      session: { MODE: 'x' },
    });
    assert.equal(problems.length, 1);
    assert.equal(problems[0].key, 'env.BAD');
    assert.equal(problems[0].line, 6);
  });
});

test('a config file that cannot be read (a directory) is a problem naming it, not a crash', () => {
  withToml(undefined, (_file, home) => {
    const { problems } = load(home, home);
    assert.equal(problems.length, 1);
    assert.equal(problems[0].source, home);
  });
});

test('typos in the pixels TOML: each unknown key or table with file:line and the key probably meant', () => {
  const toml = [
    'egres = "agent"', // 1: a top-level typo
    'egress = "agent"', // 2: a [network] key written at the top level
    '[network]', // 3
    'egres = "allowlist"', // 4
    'allow = ["example.org"]', // 5
    '[defaults]', // 6
    'imgae = "debian/12"', // 7
    'pool = "tank"', // 8: a pixels CLI key this extension does not use: not a typo
    'dns = []', // 9
    '[netwrk]', // 10
    'egress = "agent"', // 11
    '[truenas]', // 12
    'host = "nas.lan"', // 13
    'insecure_skip_verify = false', // 14
    '[mcp]', // 15
    'prefix = "mcp-"', // 16
    '[mcp.bases.web]', // 17
    'parent_image = "ubuntu/24.04"', // 18
    'setup_scirpt = "x.sh"', // 19
    '[env]', // 20
    'ANY_NAME = "x"', // 21
    '[zzz]', // 22
  ].join('\n');
  withToml(toml, (file, home) => {
    const { config, problems } = load(file, home);
    const seen = problems.map((p) => `${p.line} ${p.key}: ${p.message}`);
    assert.deepEqual(seen, [
      '1 egres: unknown key or table "egres" (ignored); did you mean "egress" in the [network] table?',
      '2 egress: unknown key or table "egress" (ignored); it belongs in the [network] table',
      '4 network.egres: unknown key in [network] "egres" (ignored); did you mean "egress"?',
      '7 defaults.imgae: unknown key in [defaults] "imgae" (ignored); did you mean "image"?',
      '10 netwrk: unknown key or table "netwrk" (ignored); did you mean "network"?',
      '19 mcp.bases.web.setup_scirpt: unknown key in [mcp.bases.web] "setup_scirpt" (ignored); did you mean "setup_script"?',
      '22 zzz: unknown key or table "zzz" (ignored); known keys and tables: backend, truenas, incus, defaults, ssh, checkpoint, provision, network, mcp, env',
    ]);
    assert.ok(problems.every((p) => p.source === file));
    // The rest still loads; the typo'd egress did not silently become anything.
    assert.equal(config.defaults.egress, 'agent');
    assert.deepEqual(config.defaults.allow, ['example.org']);
  });
});

test('[network] allow is validated at load: a bad entry is reported with its line and left out', () => {
  withToml(
    '[network]\negress = "allowlist"\nallow = ["example.org", "https://x.example/", "10.0.0.1/8"]\n',
    (file, home) => {
      const { config, problems } = load(file, home);
      assert.deepEqual(config.defaults.allow, ['example.org']);
      assert.equal(problems.length, 2);
      for (const p of problems) {
        assert.equal(p.line, 3);
        assert.equal(p.key, 'network.allow');
        assert.match(p.message, /The entry is ignored\.$/);
      }
      assert.match(problems[0].message, /"https:\/\/x\.example\/" .*not a URL/);
      assert.match(problems[1].message, /did you mean 10\.0\.0\.0\/8\?/);
    },
  );
});

test('typos in pixels.* settings and in pixels.servers entries name the setting probably meant', () => {
  withToml(undefined, (file, home) => {
    const knownKeys = [
      'servers',
      'defaults.egress',
      'defaults.image',
      'provision.stepTimeoutSeconds',
      'refreshIntervalSeconds',
    ];
    const { problems } = load(file, home, {
      settings: {
        section: {
          servers: [],
          defaults: { egres: 'agent', image: 'x' },
          provision: { stepTimeoutSeconds: { tools: 60, anything: 1 } },
          refreshIntervalSecond: 30,
          somethingElse: true,
        },
        knownKeys,
        servers: [{ id: 'nas', kind: 'truenas', host: 'nas.lan', hots: 'x' }],
      },
    });
    assert.deepEqual(
      problems.map((p) => `${p.source} ${p.key}: ${p.message}`),
      [
        'settings pixels.defaults.egres: is not a Pixels setting (ignored); did you mean "pixels.defaults.egress"?',
        'settings pixels.refreshIntervalSecond: is not a Pixels setting (ignored); did you mean "pixels.refreshIntervalSeconds"?',
        'settings pixels.somethingElse: is not a Pixels setting (ignored)',
        'settings pixels.servers[0].hots: has an unknown field "hots"; did you mean "host"?',
      ],
    );
    // Without the list of known keys (the manifest could not be read) nothing is guessed.
    assert.deepEqual(
      load(file, home, { settings: { section: { anything: 1 }, knownKeys: [] } }).problems,
      [],
    );
  });
});

test('closest key: edit distance, and no suggestion when nothing is near', () => {
  assert.equal(editDistance('egres', 'egress'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(closestKey('imgae', ['image', 'cpu']), 'image');
  assert.equal(closestKey('zzz', ['image', 'cpu', 'memory']), undefined);
});

test('jumpHost: defaults per kind (TrueNAS: the NAS as truenas_admin; Incus: the URL host), overrides kept', () => {
  withToml(undefined, (file, home) => {
    const { config, problems } = load(file, home, {
      settings: {
        servers: [
          { id: 'nas', kind: 'truenas', host: 'nas.lan', jumpHost: {} },
          {
            id: 'nas2',
            kind: 'truenas',
            host: 'nas2.lan',
            jumpHost: { host: '10.0.0.9', port: 2222, user: 'root' },
          },
          {
            id: 'inc',
            kind: 'incus',
            url: 'https://incus.lan:8443',
            clientCert: 'c',
            clientKey: 'k',
            jumpHost: { user: 'me' },
          },
          { id: 'plain', kind: 'truenas', host: 'p.lan' },
        ],
      },
    });
    assert.deepEqual(problems, []);
    const byId = new Map(config.servers.map((s) => [s.id, s]));
    assert.deepEqual(resolveJumpHost(byId.get('nas')!), { host: 'nas.lan', port: 22, user: 'truenas_admin' });
    assert.deepEqual(resolveJumpHost(byId.get('nas2')!), { host: '10.0.0.9', port: 2222, user: 'root' });
    assert.deepEqual(resolveJumpHost(byId.get('inc')!), { host: 'incus.lan', port: 22, user: 'me' });
    assert.equal(resolveJumpHost(byId.get('plain')!), undefined);
  });
});

test('jumpHost: bad values are refused with the exact key, and the server is left out', () => {
  const cases: [unknown, string, RegExp][] = [
    ['nas.lan', 'pixels.servers[0].jumpHost', /must be an object/],
    [{ port: 0 }, 'pixels.servers[0].jumpHost.port', /port number/],
    [{ port: '22' }, 'pixels.servers[0].jumpHost.port', /port number/],
    [{ user: 'a b' }, 'pixels.servers[0].jumpHost.user', /user name/],
    [{ host: 'nas lan' }, 'pixels.servers[0].jumpHost.host', /host name/],
    [{ hostname: 'x' }, 'pixels.servers[0].jumpHost.hostname', /not a jumpHost field/],
  ];
  for (const [jumpHost, key, message] of cases) {
    withToml(undefined, (file, home) => {
      const { config, problems } = load(file, home, {
        settings: { servers: [{ id: 'nas', kind: 'truenas', host: 'nas.lan', jumpHost }] },
      });
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0].key, key);
      assert.match(problems[0].message, message);
      assert.deepEqual(config.servers, []);
    });
  }
  // Incus has no default user, and a local socket no default host.
  withToml(undefined, (file, home) => {
    const { problems } = load(file, home, {
      settings: {
        servers: [
          { id: 'a', kind: 'incus', url: 'https://h:8443', clientCert: 'c', clientKey: 'k', jumpHost: {} },
          { id: 'b', kind: 'incus', jumpHost: { user: 'me' } },
        ],
      },
    });
    assert.deepEqual(
      problems.map((p) => p.message),
      [
        'Server "a": jumpHost needs a "user" (the SSH user on the Incus host).',
        'Server "b": jumpHost needs a "host" (a local Incus socket has no host to default to).',
      ],
    );
  });
});

test('jumpHost on a server from the pixels TOML: a settings entry with its id adds it', () => {
  withToml('[truenas]\nhost = "nas.lan"\n', (file, home) => {
    const { config, problems } = load(file, home, {
      settings: { servers: [{ id: CLI_TRUENAS_ID, jumpHost: { user: 'root' } }] },
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(resolveJumpHost(config.servers[0]), { host: 'nas.lan', port: 22, user: 'root' });
  });
});
