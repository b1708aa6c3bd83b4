// Part 3 of `npm run test:reliability`: canary secrets (an API key, a private key, `[env]` values) pass through
// every vscode-free command path; none may show up in logs, error messages, the settings payload, the SSH config,
// known_hosts, the arguments or environment of any process on this machine, or files left in the temp folder
// (CanaryScanner, canary-scanner.ts; canary-scanner.test.ts shows it finding planted leaks). Prints
// "secret canaries: N places checked, 0 leaks".
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import { loadConfig } from '../../src/core/config';
import { userMessage } from '../../src/core/errors';
import type { Logger } from '../../src/core/log';
import { redact } from '../../src/core/log';
import { resolveEnv, envScript } from '../../src/guest/env';
import { generateKeyPair, loadUserIdentity } from '../../src/ssh/keys';
import { KnownHosts } from '../../src/ssh/known-hosts';
import { SshPool } from '../../src/ssh/pool';
import { SshConfigWriter } from '../../src/ssh/ssh-config';
import { startSimulator } from '../sim/index';
import { startSshd } from '../lab/sshd';
import { CanaryScanner } from './canary-scanner';

const tag = randomBytes(6).toString('hex');
const API_KEY = `1-CANARYAPIKEY${tag}${'k'.repeat(64 - 13 - tag.length)}`;
const WRONG_KEY = `2-CANARYWRONGKEY${tag}${'w'.repeat(64 - 15 - tag.length)}`;
const ENV_VALUE = `canaryenv${tag}`;
const userKey = generateKeyPair(`canary-${tag}`);
/** A line from the middle of the private key's base64 body: unique to it, and never in its public half. */
const KEY_LINE = userKey.privateOpenSsh.split('\n').filter((l) => l && !l.startsWith('-----'))[2];
const CANARIES = {
  'API key': API_KEY,
  'wrong API key': WRONG_KEY,
  'private key': KEY_LINE,
  '[env] value': ENV_VALUE,
};

const started = Date.now();
/** Inputs the test itself writes (the TOML with the key, the key file): expected to hold canaries, not scanned. */
const inputs = mkdtempSync(join(tmpdir(), 'pixels-canary-in-'));
/** What the product writes (SSH config, known_hosts): scanned. */
const outputs = mkdtempSync(join(tmpdir(), 'pixels-canary-out-'));

/** Samples every process (arguments, environment) from here on, while the commands run. */
const scanner = new CanaryScanner(CANARIES).start();
const check = (place: string, text: string): void => scanner.check(place, text);

/** The extension's log channel (src/vscode/log.ts) passes every line through redact(); so does this one. */
const logLines: string[] = [];
const log: Logger = {
  trace: (m) => logLines.push(redact(m)),
  debug: (m) => logLines.push(redact(m)),
  info: (m) => logLines.push(redact(m)),
  warn: (m) => logLines.push(redact(m)),
  error: (m) => logLines.push(redact(m)),
};
const errors: string[] = [];
async function expectError(what: string, work: () => Promise<unknown>): Promise<void> {
  try {
    await work();
    errors.push(`${what}: no error`);
  } catch (err) {
    errors.push(`${what}: ${userMessage(err)} | ${String(err)}`);
  }
}

after(() => {
  scanner.stop();
  rmSync(inputs, { recursive: true, force: true });
  rmSync(outputs, { recursive: true, force: true });
});

describe('secret canaries', () => {
  test('TrueNAS backend: every operation with the canary key, and a refused one', async () => {
    const sim = await startSimulator({ version: '25.10', apiKey: API_KEY, jobDurationMs: 20 });
    const config = {
      serverId: 'canary',
      host: '127.0.0.1',
      port: sim.port,
      username: 'truenas_admin',
      secure: false,
    };
    const b = createTrueNASBackend(config, API_KEY, log);
    try {
      await b.create({ name: 'canary', image: 'debian/12', environment: { CANARY: ENV_VALUE } });
      await b.createCheckpoint('canary', 'c1');
      await b.writeFile(
        'canary',
        '/etc/profile.d/pixels-env.sh',
        Buffer.from(envScript({ CANARY: ENV_VALUE })),
      );
      await b.clone({ sandbox: 'canary', checkpoint: 'c1' }, 'canary2');
      await b.restoreCheckpoint('canary', 'c1');
      await b.destroy('canary2');
      sim.faults.dropSocketMidJob('virt.instance.create');
      await b.create({ name: 'canary3', image: 'debian/12' }); // reconnect + login again
      await expectError('a failed job', async () => {
        sim.faults.failNextJob(`refused ${ENV_VALUE.slice(0, 3)}`);
        await b.create({ name: 'canary4', image: 'debian/12' });
      });
    } finally {
      b.dispose();
    }
    const wrong = createTrueNASBackend(config, WRONG_KEY, log);
    await expectError('a refused key', () => wrong.list());
    wrong.dispose();
    await sim.close();
    assert.ok(
      logLines.some((l) => l.includes('auth.login_ex')),
      'trace lines of the login were logged',
    );
  });

  test('config loading: a pixels TOML with the key and [env] values', () => {
    const file = join(inputs, 'config.toml');
    writeFileSync(
      file,
      `[truenas]\nhost = "nas.example"\napi_key = "${API_KEY}"\napi_keyy = "${WRONG_KEY}"\n\n[env]\nCANARY = "${ENV_VALUE}"\nCANARY_SESSION = { value = "${ENV_VALUE}", session_only = true }\n`,
    );
    const { config, problems } = loadConfig({ configFile: file, home: inputs, env: {} });
    assert.equal(config.apiKeys[0]?.apiKey, API_KEY, 'the key is offered for import into SecretStorage');
    check('servers as they go into settings', JSON.stringify(config.servers));
    check('defaults and ssh settings', JSON.stringify([config.defaults, config.ssh]));
    for (const p of problems) check(`config problem "${p.message.slice(0, 40)}"`, JSON.stringify(p));
    assert.ok(resolveEnv({ CANARY: ENV_VALUE }, {}).image.CANARY === ENV_VALUE);
    const bad = (() => {
      try {
        resolveEnv({ CANARY: `${ENV_VALUE}\n` }, {});
        return 'accepted';
      } catch (err) {
        return userMessage(err);
      }
    })();
    errors.push(`a bad [env] value: ${bad}`);
  });

  test('ssh: the canary key logs in to a real sshd, a refused key fails, config and known_hosts are written', async () => {
    const keyFile = join(inputs, 'id_canary');
    writeFileSync(keyFile, userKey.privateOpenSsh, { mode: 0o600 });
    const identity = await loadUserIdentity(keyFile);
    const sshd = await startSshd({ authorizedKeys: [userKey.publicOpenSsh] });
    const pool = new SshPool({ log });
    try {
      const target = {
        host: sshd.host,
        port: sshd.port,
        username: sshd.user,
        privateKey: identity.privateKey,
        hostKey: sshd.hostKeyPub,
      };
      const r = await pool.exec(target, ['echo', 'ok']);
      assert.equal(r.stdout.toString().trim(), 'ok');
      const stranger = generateKeyPair('stranger');
      await expectError('a refused private key', () =>
        pool.exec(
          {
            ...target,
            privateKey: stranger.privateOpenSsh,
          },
          ['true'],
        ),
      );
      await expectError('an unreadable key file', async () => {
        const broken = join(inputs, 'id_broken');
        writeFileSync(broken, userKey.privateOpenSsh.replace('-----END', 'garbage-----END'), { mode: 0o600 });
        await loadUserIdentity(broken);
      });
      const writer = new SshConfigWriter({
        configPath: join(outputs, 'config'),
        hostsPath: join(outputs, 'pixels', 'config'),
        sshBinary: existsSync('/usr/bin/ssh') ? '/usr/bin/ssh' : false,
      });
      await writer.upsertHost({
        alias: 'px-canary',
        hostName: '127.0.0.1',
        port: sshd.port,
        user: sshd.user,
        identityFile: keyFile,
        knownHostsFile: join(outputs, 'pixels', 'known_hosts'),
      });
      await new KnownHosts(join(outputs, 'pixels', 'known_hosts')).set(
        ['px-canary', '127.0.0.1'],
        sshd.hostKeyPub,
        sshd.port,
      );
      check('sshd log', sshd.log());
    } finally {
      pool.dispose();
      await sshd.stop();
    }
  });

  test('the figures', () => {
    scanner.stop();
    check('log output', logLines.join('\n'));
    for (const e of errors) check(`error "${e.slice(0, 50)}"`, e);
    scanner.checkProcesses();
    // Everything the product left in the temp folder since the start, and what it wrote on purpose.
    const scan = (dir: string, depth: number): void => {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      for (const name of entries) {
        const path = join(dir, name);
        if (path === inputs) continue;
        let st;
        try {
          st = statSync(path);
        } catch {
          continue;
        }
        if (st.isDirectory()) {
          if (depth > 0) scan(path, depth - 1);
        } else if (st.isFile() && st.mtimeMs >= started - 1000 && st.size < 4 * 1024 * 1024) {
          try {
            scanner.checkFile('file', path);
          } catch {
            // gone meanwhile
          }
        }
      }
    };
    scan(tmpdir(), 4);
    const { places, leaks } = scanner;
    assert.ok(
      places.some((p) => p.startsWith(`file ${join(outputs, 'pixels', 'config')}`)),
      'the SSH config was checked',
    );
    assert.ok(
      places.some((p) => p.includes('known_hosts')),
      'known_hosts was checked',
    );
    assert.ok(
      places.some((p) => p.startsWith('the environment of process')),
      'the environments of processes were checked',
    );
    assert.ok(scanner.processCount > 0, 'processes were sampled');
    console.log(`secret canaries: ${places.length} places checked, ${leaks.length} leaks`);
    assert.deepEqual(leaks, []);
  });
});
