// The editor against real containers (the Incus lab, test/lab/up.sh): provisioning puts a pinned host key and our
// key in before the first boot, the agent egress policy is enforced inside, Run Command… and Open Terminal go
// over ssh2 to the real sshd with the pinned key, Open in Sandbox writes an SSH entry that OpenSSH itself accepts,
// and Destroy removes the sandbox and its pinned key. Fails loudly when the lab is not up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { createIncusBackend } from '../../../src/backends/incus/index';
import { GUARD_ACL } from '../../../src/backends/incus/host-guard';
import type { Sandbox } from '../../../src/core/sandbox';
import { backendExecutor, showEgress } from '../../../src/guest/index';
import {
  addUnmanagedNic,
  clearHostGuard,
  labBridgeConfig,
  labGuardAcl,
  removeUnmanagedBridge,
} from '../../integration/incus/helpers';
import type { Lab } from '../../lab/lab';
import { pixelsApi, sandboxRows, setServers, sleep, terminalRoundTrip } from './helpers';
import { createOnLab, setUpLabSuite, type LabSuite } from './labSuite';

suite('against the real Incus lab', function () {
  this.timeout(300_000);
  let env: LabSuite;
  let lab: Lab;
  let sshDir: string;
  const prefix = `v${randomBytes(3).toString('hex')}`;
  const name = `${prefix}-a`;
  const alias = `px-${name}.lab`;
  let sandbox: Sandbox;

  suiteSetup(async () => {
    // The commands below log in as root; provisioning authorises it too.
    env = await setUpLabSuite(prefix, { root: true });
    ({ lab, sshDir } = env);
  });

  suiteTeardown(async () => {
    await env?.teardown();
  });

  test('Add Server… for Incus probes the socket; a wrong path saves nothing', async () => {
    const api = await pixelsApi();
    const bad = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'incus',
      id: 'nowhere',
      socketPath: '/run/no-such-dir/incus.socket',
    });
    assert.equal(bad, undefined);
    assert.equal(api.lastError()?.action, 'Add server');
    const ok = await vscode.commands.executeCommand('pixels.addServer', {
      kind: 'incus',
      id: 'lab2',
      label: 'Lab again',
      socketPath: lab.socket,
    });
    assert.equal(ok, 'lab2', api.lastError()?.message);
    const ids = (
      vscode.workspace.getConfiguration('pixels').inspect<{ id: string }[]>('servers')?.globalValue ?? []
    ).map((s) => s.id);
    assert.deepEqual(ids, ['lab', 'lab2']);
    assert.equal(await vscode.commands.executeCommand('pixels.removeServer', { server: 'lab2' }), true);
  });

  test('create with the "agent" egress policy: enforced inside (through the exec API, no SSH needed)', async () => {
    const api = await pixelsApi();
    const plain = `${prefix}-b`;
    const started = Date.now();
    await createOnLab(lab, plain, { provision: false, egress: 'agent' });
    const row = (await sandboxRows(api, 'lab')).get(plain);
    assert.ok(row, 'in the tree');
    // The lab is a one-member cluster: naming its member on every row would be noise.
    assert.match(api.treeItem(row).description ?? '', /^10\.\S+ · agent$/);
    console.log(`incus: create + egress policy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const check = createIncusBackend({ serverId: 'check', socketPath: lab.socket });
    try {
      const status = await showEgress(backendExecutor(check, plain));
      assert.equal(status.policy.mode, 'agent');
      assert.equal(status.enforced, true, 'the nftables table is loaded');
    } finally {
      check.dispose();
    }
    assert.equal(
      await vscode.commands.executeCommand('pixels.destroy', { server: 'lab', name: plain, confirm: true }),
      true,
    );
  });

  test('hostGuard "network": create attaches the host ACL, Allow Domain adds an exception, the tooltip and document say so (or why not), off takes it down', async () => {
    const api = await pixelsApi();
    const guardedName = `${prefix}-g`;
    const network = () => labBridgeConfig(lab);
    const guardAcl = () => labGuardAcl(lab);
    const before = await network();
    assert.equal(before['security.acls'] ?? '', '', 'the lab bridge starts without ACLs');
    const servers = [{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket }];
    const unmanaged = 'pxgt1';
    /** The open egress document once it says `what`: VS Code re-reads a changed virtual document on its own time. */
    const shownDocument = async (what: RegExp): Promise<string> => {
      let text = '';
      for (let i = 0; i < 50; i++) {
        text = vscode.window.activeTextEditor?.document.getText() ?? '';
        if (what.test(text)) break;
        await sleep(100);
      }
      return text;
    };
    try {
      await setServers([{ ...servers[0], hostGuard: 'network' } as never]);
      await createOnLab(lab, guardedName, { provision: false, egress: 'agent' });
      assert.ok((await network())['security.acls'].split(',').includes(GUARD_ACL), 'attached at create');
      const lan = lab.bridgeIpv4.split('/')[0];
      const allowed = await vscode.commands.executeCommand('pixels.allowDomain', {
        server: 'lab',
        name: guardedName,
        entry: lan,
      });
      assert.ok(allowed, `allow failed: ${api.lastError()?.message}`);
      assert.equal((await guardAcl())?.config[`user.pixels.allow.px-${guardedName}`], lan);
      const row = (await sandboxRows(api, 'lab')).get(guardedName);
      assert.ok(row, 'in the tree');
      assert.match(
        (api.treeItem(row).tooltip ?? '').replace(/\\(.)/g, '$1'), // Markdown escapes off
        new RegExp(`\\| Host guard \\| on \\(${lab.bridge}\\) · except ${lan.replace(/\./g, '\\.')} \\|`),
      );
      const shown = (await vscode.commands.executeCommand('pixels.showEgressPolicy', {
        server: 'lab',
        name: guardedName,
      })) as { hostGuard?: { mode: string; exceptions: string[] } } | undefined;
      assert.equal(shown?.hostGuard?.mode, 'network');
      assert.deepEqual(shown?.hostGuard?.exceptions, [lan]);
      const text = await shownDocument(/Host guard/);
      assert.match(
        text,
        new RegExp(
          `Host guard \\(network\\): The host refuses private addresses from network "${lab.bridge}", except ${lan.replace(/\./g, '\\.')}\\.`,
        ),
      );
      // A second NIC on a bridge Incus does not manage (no address, nothing on it): the guard cannot cover it.
      // Show Egress Policy still shows the sandbox's own policy, and says why the host layer did not follow.
      await addUnmanagedNic(lab, `px-${guardedName}`, unmanaged);
      const partial = (await vscode.commands.executeCommand('pixels.showEgressPolicy', {
        server: 'lab',
        name: guardedName,
      })) as { policy: { mode: string }; hostGuardProblem?: string } | undefined;
      assert.equal(partial?.policy.mode, 'agent');
      assert.match(
        partial?.hostGuardProblem ?? '',
        new RegExp(`its eth1 .*unmanaged interface ${unmanaged}`),
      );
      assert.match(
        await shownDocument(/could not be put in line/),
        /- Host guard: \*\*could not be put in line\*\* — .*eth1/,
      );
      // The setting goes off: the next look at the sandbox takes the guard down and restores the network.
      await setServers(servers as never);
      const off = (await vscode.commands.executeCommand('pixels.showEgressPolicy', {
        server: 'lab',
        name: guardedName,
        open: false,
      })) as { hostGuard?: { mode: string } } | undefined;
      assert.equal(off?.hostGuard?.mode, 'off', api.lastError()?.message);
      assert.deepEqual(await network(), before);
      assert.equal(await guardAcl(), undefined);
    } finally {
      await setServers(servers as never);
      await vscode.commands.executeCommand('pixels.destroy', {
        server: 'lab',
        name: guardedName,
        confirm: true,
      });
      // Whatever failed above: the bridge is left as it was for the suites after this one.
      await clearHostGuard(lab);
      removeUnmanagedBridge(unmanaged);
    }
  });

  test('create with provisioning: host key and our key go in before the first boot, the key is pinned here', async () => {
    const api = await pixelsApi();
    const started = Date.now();
    const made = await createOnLab(lab, name, { provision: true, egress: 'unrestricted' });
    console.log(`incus: create + provisioning in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(made.status, 'running');
    sandbox = made;
    const pinned = new RegExp(`^${alias.replace(/\./g, '\\.')} (ssh-ed25519 \\S+)`, 'm').exec(
      readFileSync(join(sshDir, 'known_hosts'), 'utf8'),
    )?.[1];
    assert.ok(pinned, 'the host key is pinned here');
    const run = api.provisionRun('lab', name);
    assert.ok(run && !run.active && !run.failed, `provisioning finished: ${run?.failed}`);
    assert.deepEqual(
      run.steps.map((s) => `${s.id}:${s.state}`),
      ['user:done', 'packages:done', 'ssh:done', 'env:done', 'egress:done'],
    );
    // The key pinned before the first boot is the one sshd serves, and our key is authorised for root and pixel.
    const check = createIncusBackend({ serverId: 'check', socketPath: lab.socket });
    try {
      const exec = backendExecutor(check, name);
      const inside = await exec(
        'cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub && wc -l < /root/.ssh/authorized_keys && wc -l < /home/pixel/.ssh/authorized_keys',
        { timeoutMs: 30_000 },
      );
      assert.equal(inside.exitCode, 0, inside.output);
      const [served, rootKeys, pixelKeys] = inside.output.trim().split('\n');
      assert.equal(served, pinned, 'pinned key = key in the sandbox');
      assert.ok(Number(rootKeys) >= 1 && Number(pixelKeys) >= 1, inside.output);
    } finally {
      check.dispose();
    }
  });

  test('Run Command… runs over ssh2 with the pinned host key and reports the exit code', async () => {
    const api = await pixelsApi();
    const code = await vscode.commands.executeCommand('pixels.runCommand', {
      server: 'lab',
      name,
      command: 'echo "answer $((6*7))" && test "$(id -un)" = root && exit 3',
      showLogs: false,
    });
    assert.equal(code, 3, api.lastError()?.message);
  });

  test('Open Terminal: a real shell in a Pseudoterminal; the exit code is kept when it closes', async () => {
    assert.equal(await terminalRoundTrip('lab', name, 'exit 7'), 7);
  });

  test('Open in Sandbox: the SSH entry it writes works with OpenSSH itself (strict host key checking)', async () => {
    const api = await pixelsApi();
    const userConfig = join(env.dir, 'user-config');
    writeFileSync(userConfig, '# my own settings\nHost *\n  ServerAliveInterval 30\n');
    await vscode.workspace
      .getConfiguration('pixels')
      .update('ssh.configFile', userConfig, vscode.ConfigurationTarget.Global);
    const calls: unknown[][] = [];
    const spy = vscode.commands.registerCommand('vscode.openFolder', (...args: unknown[]) => {
      calls.push(args);
    });
    try {
      const uri = await vscode.commands.executeCommand('pixels.openInSandbox', {
        server: 'lab',
        name,
        requireRemoteSsh: false,
      });
      assert.equal(uri, `vscode-remote://ssh-remote+${alias}/home/root`, api.lastError()?.message);
      assert.equal(calls.length, 1);
      const ssh = spawnSync('ssh', ['-F', userConfig, '-o', 'BatchMode=yes', alias, 'echo', 'connected'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(ssh.status, 0, `ssh ${alias}: ${ssh.stderr}`);
      assert.equal(ssh.stdout.trim(), 'connected');
      assert.match(
        readFileSync(userConfig, 'utf8'),
        /Host \*\n {2}ServerAliveInterval 30\n$/,
        'the user lines are kept',
      );
    } finally {
      spy.dispose();
      await vscode.workspace
        .getConfiguration('pixels')
        .update('ssh.configFile', undefined, vscode.ConfigurationTarget.Global);
    }
  });

  test('Destroy removes the container and its pinned host key', async () => {
    const api = await pixelsApi();
    assert.ok(sandbox, 'created by the first test');
    const done = await vscode.commands.executeCommand('pixels.destroy', {
      server: 'lab',
      name,
      confirm: true,
    });
    assert.equal(done, true, api.lastError()?.message);
    const list = spawnSync('incus', ['list', '--format', 'csv', '-c', 'n'], { encoding: 'utf8' });
    assert.doesNotMatch(list.stdout, new RegExp(`^px-${name}$`, 'm'));
    assert.doesNotMatch(
      readFileSync(join(sshDir, 'known_hosts'), 'utf8'),
      new RegExp(alias.replace(/\./g, '\\.')),
    );
    assert.doesNotMatch(
      readFileSync(join(sshDir, 'config'), 'utf8'),
      new RegExp(`Host ${alias.replace(/\./g, '\\.')}`),
    );
  });
});
