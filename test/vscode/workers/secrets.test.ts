// The extension-host side of the secret canaries (test/reliability/secrets.test.ts checks the vscode-free paths):
// started with the concurrency windows by test/reliability/concurrency.test.ts (run.mjs --suite workers). A canary
// API key goes in through Add Server (SecretStorage), canary [env] values (an image one and a session_only one)
// through the pixels TOML, a canary private key as pixels.ssh.identityFile; then the commands that touch them run
// (connect, list, create, Set Up SSH Access, Open in Sandbox = SSH config, checkpoint, and a wrong key on the
// simulator; on the Incus lab a provisioned sandbox that the extension logs in to with the canary key, a real sshd,
// for Run Command with both [env] values). The canaries and every error message are written next to
// PIXELS_CONC_RESULT; the test that started this window looks for them everywhere afterwards.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { generateKeyPair } from '../../../src/core/keys';
import { makeSelfSignedCert } from '../../lab/tls';
import { startSimulator, type SimServer } from '../../sim/index';
import { pixelsApi, sandboxRows, setServers } from '../suite/helpers';

function required(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: this suite is started by test/reliability/concurrency.test.ts`);
  return value;
}

suite('secret canaries in the extension host', function () {
  this.timeout(120_000);
  const role = required('PIXELS_CONC_ROLE');
  const resultFile = `${required('PIXELS_CONC_RESULT')}.canaries.json`;
  const labPrefix = required('PIXELS_CONC_LAB_PREFIX');
  const labName = `${labPrefix}-canary-${role}`;
  const tag = `${role}${randomBytes(6).toString('hex')}`;
  // Random to the end (no repeated filler): Chromium's leveldb compresses repeats, which would hide a leak there.
  const filler = (n: number) => randomBytes(n).toString('hex').slice(0, n);
  const apiKey = `1-CANARYAPIKEY${tag}${filler(64 - 13 - tag.length)}`;
  const wrongKey = `2-CANARYWRONGKEY${tag}${filler(64 - 15 - tag.length)}`;
  const envValue = `canaryenv${tag}${filler(16)}`;
  const sessionValue = `canarysession${tag}${filler(16)}`;
  const userKey = generateKeyPair(`canary-${tag}`);
  /** A line from the middle of the private key's base64 body: unique to it, never in its public half. */
  const keyLine = userKey.privateOpenSsh.split('\n').filter((l) => l && !l.startsWith('-----'))[2];
  /** The test's own inputs (certificate, TOML, key file): they hold canaries on purpose and are not scanned. */
  const inputs = mkdtempSync(join(tmpdir(), 'pixels-canary-in-'));
  /** What the product writes here (SSH config, hosts file, known_hosts): scanned, then removed by the caller. */
  const outputs = mkdtempSync(join(tmpdir(), 'pixels-canary-out-'));
  const saved = { xdg: process.env.XDG_CONFIG_HOME, sshDir: process.env.PIXELS_SSH_DIR };
  let sim: SimServer;

  suiteSetup(async () => {
    const cert = makeSelfSignedCert(inputs, 'nas', { cn: 'truenas.local' });
    sim = await startSimulator({
      version: '25.10',
      apiKey,
      username: 'truenas_admin',
      tls: { key: cert.key, cert: cert.cert },
      jobDurationMs: 20,
    });
    mkdirSync(join(inputs, 'config', 'pixels'), { recursive: true });
    writeFileSync(
      join(inputs, 'config', 'pixels', 'config.toml'),
      `[env]\nPX_CANARY = "${envValue}"\nPX_CANARY_SESSION = { value = "${sessionValue}", session_only = true }\n`,
    );
    process.env.XDG_CONFIG_HOME = join(inputs, 'config');
    process.env.PIXELS_SSH_DIR = join(outputs, 'ssh');
    writeFileSync(join(inputs, 'id_canary'), userKey.privateOpenSsh, { mode: 0o600 });
    writeFileSync(join(inputs, 'id_canary.pub'), `${userKey.publicOpenSsh}\n`);
    writeFileSync(
      resultFile,
      JSON.stringify({
        canaries: {
          'API key': apiKey,
          'wrong API key': wrongKey,
          'private key': keyLine,
          '[env] value': envValue,
          '[env] value (session_only)': sessionValue,
        },
        inputs,
        outputs,
      }),
    );
    const c = vscode.workspace.getConfiguration('pixels');
    await c.update('ssh.identityFile', join(inputs, 'id_canary'), vscode.ConfigurationTarget.Global);
    await c.update('ssh.configFile', join(outputs, 'config'), vscode.ConfigurationTarget.Global);
    // The lab image has what provisioning needs: no packages or tools to download (sandboxes have no internet).
    await c.update('provision.packages', [], vscode.ConfigurationTarget.Global);
    await c.update('provision.tools', [], vscode.ConfigurationTarget.Global);
    (globalThis as { pixelsCanaryCert?: string }).pixelsCanaryCert = cert.fingerprint;
    await setServers([
      {
        id: 'lab',
        kind: 'incus',
        label: 'Incus lab',
        socketPath: required('PIXELS_CONC_LAB_SOCKET'),
      } as never,
    ]);
  });

  suiteTeardown(async () => {
    await setServers([]);
    const c = vscode.workspace.getConfiguration('pixels');
    await c.update('ssh.identityFile', undefined, vscode.ConfigurationTarget.Global);
    await c.update('ssh.configFile', undefined, vscode.ConfigurationTarget.Global);
    await c.update('provision.packages', undefined, vscode.ConfigurationTarget.Global);
    await c.update('provision.tools', undefined, vscode.ConfigurationTarget.Global);
    if (saved.sshDir === undefined) delete process.env.PIXELS_SSH_DIR;
    else process.env.PIXELS_SSH_DIR = saved.sshDir;
    if (saved.xdg === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = saved.xdg;
    await sim?.close();
    rmSync(inputs, { recursive: true, force: true });
  });

  test(`window ${role}: Add Server, list, create, SSH access and config, checkpoint, a wrong key`, async () => {
    const api = await pixelsApi();
    const messages: string[] = [];
    const run = async (what: string, command: string, args?: object): Promise<unknown> => {
      const result = await vscode.commands.executeCommand(command, args);
      const error = api.lastError();
      if (error) messages.push(`${what}: ${error.action}: ${error.message}`);
      return result;
    };
    const id = await run('add server', 'pixels.addServer', {
      kind: 'truenas',
      id: 'canary',
      address: `https://127.0.0.1:${sim.port}`,
      apiKey,
      trust: (globalThis as { pixelsCanaryCert?: string }).pixelsCanaryCert,
    });
    assert.equal(id, 'canary', api.lastError()?.message);
    assert.equal(await api.hasApiKey('canary'), true);
    const rows = await sandboxRows(api, 'canary');
    assert.ok(rows instanceof Map);
    const made = await run('create', 'pixels.createSandbox', {
      server: 'canary',
      name: `canary-${role}`,
      provision: false,
      egress: 'unrestricted',
    });
    assert.ok(made, api.lastError()?.message);
    assert.equal(
      await run('set up SSH', 'pixels.setupSsh', { server: 'canary', name: `canary-${role}`, confirm: true }),
      true,
    );
    await run('open in sandbox', 'pixels.openFolderInSandbox', {
      server: 'canary',
      name: `canary-${role}`,
      path: '/root',
      newWindow: true,
      requireRemoteSsh: false,
    });
    assert.ok(
      await run('checkpoint', 'pixels.createCheckpoint', {
        server: 'canary',
        name: `canary-${role}`,
        label: 'c1',
      }),
    );
    // The wrong key: every call is refused; the errors must not carry it.
    await api.setApiKey('canary', wrongKey);
    await vscode.commands.executeCommand('pixels.refresh', { server: 'canary' });
    const refused = await run('create with a wrong key', 'pixels.createSandbox', {
      server: 'canary',
      name: `canary-${role}-2`,
      provision: false,
      egress: 'unrestricted',
    });
    assert.equal(refused, undefined, 'a wrong key is refused');
    messages.push(`view: ${api.viewReason() ?? ''}`, ...api.configProblems());
    await run('destroy with a wrong key', 'pixels.destroy', {
      server: 'canary',
      name: `canary-${role}`,
      confirm: true,
    });
    await api.setApiKey('canary', apiKey);
    assert.equal(
      await run('destroy', 'pixels.destroy', { server: 'canary', name: `canary-${role}`, confirm: true }),
      true,
    );
    writeFileSync(`${resultFile}.messages.json`, JSON.stringify(messages));
  });
  test(`window ${role}: the canary key logs in to a real sshd in a lab sandbox; Run Command gets both [env] values`, async () => {
    const api = await pixelsApi();
    const made = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'lab',
      name: labName,
      image: required('PIXELS_CONC_LAB_IMAGE'),
      cpu: '1',
      memoryMiB: 512,
      provision: true,
      egress: 'unrestricted',
    });
    assert.ok(made, `create on the lab: ${api.lastError()?.message}`);
    const run = api.provisionRun('lab', labName);
    assert.ok(run && !run.active && !run.failed, `provisioning: ${run?.failed}`);
    // The values are compared by hash: the command line (logged, and an argument inside the sandbox) names none.
    // The sleep keeps the session's processes alive long enough for the caller's 25 ms process sampling to see
    // them (with the values in their environment: expected inside a sandbox), even when a busy machine stalls the
    // sampler's event loop for a second.
    const digest = createHash('sha256').update(`${envValue}:${sessionValue}`).digest('hex');
    const code = await vscode.commands.executeCommand('pixels.runCommand', {
      server: 'lab',
      name: labName,
      // The login's only authorised key is the canary's (ssh2 offers one key): so the canary key logged in.
      command:
        `test "$(cut -d' ' -f2 ~/.ssh/authorized_keys | sort -u)" = ${userKey.publicOpenSsh.split(' ')[1]} && ` +
        `test "$(printf %s "$PX_CANARY:$PX_CANARY_SESSION" | sha256sum | cut -c1-64)" = ${digest} && sleep 2 && exit 42`,
      showLogs: false,
    });
    assert.equal(
      code,
      42,
      `both [env] values arrived over the canary key's login: ${api.lastError()?.message}`,
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.destroy', { server: 'lab', name: labName, confirm: true }),
      true,
      api.lastError()?.message,
    );
  });
});
