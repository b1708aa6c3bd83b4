// [env] and address changes against real containers (the Incus lab, test/lab/up.sh): provisioning writes the
// image variables into /etc/environment and profile.d, Run Command and Open Terminal get the session variables
// (session_only values and a forwarded editor variable) with awkward characters intact, and when the sandbox's IP
// changes (a fixed DHCP address, restart) a refresh moves its Remote-SSH entry and known_hosts address, so
// OpenSSH with strict host key checking still connects. Fails loudly when the lab is not up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { createIncusBackend } from '../../../src/backends/incus/index';
import type { Sandbox } from '../../../src/core/sandbox';
import { backendExecutor } from '../../../src/guest/index';
import type { Lab } from '../../lab/lab';
import { pixelsApi, sandboxRows, terminalRoundTrip, waitFor } from './helpers';
import { createOnLab, setUpLabSuite, type LabSuite } from './labSuite';

/** Values chosen to break naive quoting: quotes, $, backticks, spaces (no " or \ in image values: pam_env). */
const IMAGE_VALUE = "image 'value' with `x`, spaces & ;";
const SESSION_VALUE = `it's a "session" value; $(id) \`id\` \\ *`;
const FORWARD_VALUE = `forwarded 'from' the "editor" $HOME`;

/** A TOML basic string (escapes " and \). */
function toml(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The value as a single-quoted shell word. */
function sq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

suite('[env] and IP changes against the real Incus lab', function () {
  this.timeout(400_000);
  let env: LabSuite;
  let lab: Lab;
  let sshDir: string;
  let userConfig: string;
  const prefix = `e${randomBytes(3).toString('hex')}`;
  const name = `${prefix}-env`;
  const alias = `px-${name}.lab`;
  let sandbox: Sandbox;

  suiteSetup(async () => {
    // The pixels CLI config (found through XDG_CONFIG_HOME) with an [env] table in its three forms.
    process.env.PX_FORWARD_VAR = FORWARD_VALUE;
    delete process.env.PX_FORWARD_UNSET;
    env = await setUpLabSuite(prefix, {
      root: true,
      userSshConfig: true,
      pixelsToml: [
        '[env]',
        `PX_IMAGE_VAR = ${toml(IMAGE_VALUE)}`,
        `PX_SESSION_VAR = { value = ${toml(SESSION_VALUE)}, session_only = true }`,
        'PX_FORWARD_VAR = { forward = true }',
        'PX_FORWARD_UNSET = { forward = true }',
        '',
      ].join('\n'),
    });
    ({ lab, sshDir, userConfig } = env);
    const api = await pixelsApi();
    assert.deepEqual(api.configProblems(), [], 'the [env] table was read without problems');
  });

  suiteTeardown(async () => {
    delete process.env.PX_FORWARD_VAR;
    await env?.teardown();
  });

  test('provisioning writes the image variables to /etc/environment and profile.d', async () => {
    sandbox = await createOnLab(lab, name, { provision: true, egress: 'unrestricted' });
    const check = createIncusBackend({ serverId: 'check', socketPath: lab.socket });
    try {
      const exec = backendExecutor(check, name);
      const r = await exec('cat /etc/environment; echo ---; cat /etc/profile.d/pixels-env.sh', {
        timeoutMs: 30_000,
      });
      assert.equal(r.exitCode, 0, r.output);
      const [environment, profile] = r.output.split('---\n');
      assert.match(environment!, new RegExp(`^PX_IMAGE_VAR="${escapeRe(IMAGE_VALUE)}"$`, 'm'));
      assert.doesNotMatch(environment!, /PX_SESSION_VAR|PX_FORWARD/, 'session variables are not written');
      assert.match(profile!, new RegExp(`^export PX_IMAGE_VAR=${escapeRe(sq(IMAGE_VALUE))}$`, 'm'));
    } finally {
      check.dispose();
    }
  });

  test('Run Command sees the session, forwarded and image variables byte for byte', async () => {
    const api = await pixelsApi();
    assert.ok(sandbox, 'created by the first test');
    const check = (variable: string, value: string) => `test "$${variable}" = ${sq(value)}`;
    const command = [
      check('PX_SESSION_VAR', SESSION_VALUE),
      check('PX_FORWARD_VAR', FORWARD_VALUE),
      check('PX_IMAGE_VAR', IMAGE_VALUE),
      'test -z "${PX_FORWARD_UNSET+set}"',
      'exit 42',
    ].join(' && ');
    const code = await vscode.commands.executeCommand('pixels.runCommand', {
      server: 'lab',
      name,
      command,
      showLogs: false,
    });
    assert.equal(code, 42, `a variable was missing or changed: ${api.lastError()?.message ?? ''}`);
    // A wrong expectation really fails (the check above can fail).
    const wrong = await vscode.commands.executeCommand('pixels.runCommand', {
      server: 'lab',
      name,
      command: `${check('PX_SESSION_VAR', 'something else')} && exit 42`,
      showLogs: false,
    });
    assert.notEqual(wrong, 42);
  });

  test('Open Terminal starts a login shell with the session variables', async () => {
    const code = await terminalRoundTrip(
      'lab',
      name,
      `test "$PX_SESSION_VAR" = ${sq(SESSION_VALUE)} && test "$PX_FORWARD_VAR" = ${sq(FORWARD_VALUE)} && exit 5; exit 6`,
    );
    assert.equal(code, 5, 'exit 5 = both variables arrived intact');
  });

  test('a new IP: a refresh moves the SSH entry and the known_hosts address; OpenSSH still connects', async () => {
    const api = await pixelsApi();
    assert.ok(sandbox?.ipv4, 'created by the first test, with an address');
    // Open in Sandbox writes the entry; the window switch itself (vscode.openFolder) is caught here.
    const spy = vscode.commands.registerCommand('vscode.openFolder', () => undefined);
    try {
      const uri = await vscode.commands.executeCommand('pixels.openInSandbox', {
        server: 'lab',
        name,
        requireRemoteSsh: false,
      });
      assert.ok(uri, api.lastError()?.message);
    } finally {
      spy.dispose();
    }
    const hostName = () =>
      /HostName (\S+)/.exec(entryOf(readFileSync(join(sshDir, 'config'), 'utf8'), alias))?.[1];
    assert.equal(hostName(), sandbox.ipv4);
    const keyBefore = keyOf(readFileSync(join(sshDir, 'known_hosts'), 'utf8'), alias);
    assert.ok(keyBefore);

    // A fixed DHCP address different from the current one, then a restart: the container comes back on it.
    const octet = 200 + (randomBytes(1)[0]! % 50);
    const next = `${lab.bridgeIpv4.split('.').slice(0, 3).join('.')}.${octet}`;
    assert.notEqual(next, sandbox.ipv4);
    const set = spawnSync(
      'incus',
      ['config', 'device', 'override', `px-${name}`, 'eth0', `ipv4.address=${next}`],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(set.status, 0, set.stderr);
    const restart = spawnSync('incus', ['restart', `px-${name}`], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(restart.status, 0, restart.stderr);
    await waitFor(
      `the sandbox to come back on ${next}`,
      async () => ((await sandboxRows(api, 'lab')).get(name) ? hostName() === next || undefined : undefined),
      90_000,
    );
    const knownHosts = readFileSync(join(sshDir, 'known_hosts'), 'utf8');
    assert.equal(keyOf(knownHosts, alias), keyBefore, 'the pinned key stays');
    assert.equal(keyOf(knownHosts, next), keyBefore, 'the new address carries the pinned key');
    assert.equal(keyOf(knownHosts, sandbox.ipv4), undefined, 'the old address is no longer trusted');
    const ssh = spawnSync(
      'ssh',
      ['-F', userConfig, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', alias, 'hostname -I'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(ssh.status, 0, `ssh ${alias}: ${ssh.stderr}`);
    assert.match(ssh.stdout, new RegExp(`\\b${escapeRe(next)}\\b`));
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The lines of one Host block in our config file. */
function entryOf(config: string, alias: string): string {
  const start = config.indexOf(`Host ${alias}\n`);
  if (start < 0) return '';
  const rest = config.slice(start + 1);
  const end = rest.search(/^Host /m);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The key (`type base64`) of the known_hosts line that names `host`. */
function keyOf(knownHosts: string, host: string): string | undefined {
  for (const line of knownHosts.split('\n')) {
    const [names, type, key] = line.split(' ');
    if (names?.split(',').includes(host)) return `${type} ${key}`;
  }
  return undefined;
}
