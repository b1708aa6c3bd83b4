// Every command is registered, and each works end to end against the TrueNAS simulator through the real
// extension: create -> in the tree -> checkpoint -> restore -> clone -> destroy (answers passed as arguments,
// since modal dialogs are refused in this test mode).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { startSimulator, type SimServer } from '../../sim/index';
import { createTrueNASBackend } from '../../../src/backends/truenas/index';
import type { Checkpoint, Sandbox } from '../../../src/core/sandbox';
import { API_KEY, EXTENSION_ID, pixelsApi, sandboxRows, setServers, showView, simServer } from './helpers';

suite('commands', () => {
  let sim: SimServer;
  let sshDir: string;

  suiteSetup(async () => {
    sshDir = mkdtempSync(join(tmpdir(), 'pixels-ssh-'));
    process.env.PIXELS_SSH_DIR = sshDir; // our known_hosts / hosts file / dedicated key go here, not ~/.ssh
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
    const api = await pixelsApi();
    await api.setApiKey('sim', API_KEY);
    await setServers([simServer(sim.port)]);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    await sim.close();
    delete process.env.PIXELS_SSH_DIR;
    rmSync(sshDir, { recursive: true, force: true });
  });

  test('every contributed command is registered', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const contributed = (ext.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !registered.has(c));
    assert.deepEqual(missing, []);
    assert.ok(contributed.length >= 20);
  });

  test('tree rows: status icon colour, "IP · egress" description, tooltip, contextValue; checkpoints newest first', async () => {
    const api = await pixelsApi();
    const rows = await sandboxRows(api, 'sim');
    const web = rows.get('web');
    assert.ok(web && web.type === 'sandbox');
    const item = api.treeItem(web);
    assert.equal(item.label, 'web');
    assert.equal(web.sandbox.status, 'running');
    assert.equal(item.icon, 'vm-running');
    assert.equal(item.color, 'charts.green');
    assert.match(item.contextValue ?? '', /^sandbox\+running/);
    assert.match(item.tooltip ?? '', /Image/);
    assert.match(item.tooltip ?? '', /ubuntu/i);
    // A few sandboxes: their checkpoints show at once.
    assert.equal(item.collapsible, vscode.TreeItemCollapsibleState.Expanded);
    const old = rows.get('old');
    assert.ok(old && old.type === 'sandbox');
    assert.equal(api.treeItem(old).contextValue, 'sandbox+stopped');
    assert.equal(api.treeItem(old).color, 'disabledForeground');
    const checkpoints = await api.treeChildren(web);
    assert.ok(checkpoints.length >= 2);
    const times = checkpoints.map((c) => (c.type === 'checkpoint' ? c.checkpoint.createdAt.getTime() : NaN));
    assert.deepEqual(
      [...times].sort((a, b) => b - a),
      times,
      'newest first',
    );
    const first = api.treeItem(checkpoints[0]);
    assert.equal(first.contextValue, 'checkpoint');
    assert.match(first.description ?? '', /ago/);
  });

  test('create -> tree -> checkpoint -> restore -> clone -> destroy', async function () {
    // The clone's checks over SSH wait (bounded, 60 s) for an sshd that the simulator does not run.
    this.timeout(180_000);
    const api = await pixelsApi();
    const created = (await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'sim',
      name: 'flow',
      image: 'ubuntu/24.04',
      cpu: '2',
      memoryMiB: 1024,
      egress: 'unrestricted',
      // Full provisioning needs sshd in the sandbox, which the simulator does not run; the SSH keys alone go in
      // through "Set Up SSH Access…" below (files written into the sandbox, then a restart).
      provision: false,
    })) as Sandbox | undefined;
    assert.ok(created, `create failed: ${api.lastError()?.message}`);
    assert.equal(
      await vscode.commands.executeCommand('pixels.setupSsh', { server: 'sim', name: 'flow', confirm: true }),
      true,
      `set up SSH failed: ${api.lastError()?.message}`,
    );
    assert.equal(created.name, 'flow');
    assert.equal(created.status, 'running');
    let rows = await sandboxRows(api, 'sim');
    assert.ok(rows.has('flow'), 'the new sandbox is in the tree data');
    assert.match(
      api.treeItem(rows.get('flow')!).description ?? '',
      / · unrestricted$/,
      'description: "IP · egress"',
    );

    // SSH setup: our host key is pinned locally and was written into the sandbox, the user key appended
    const knownHosts = readFileSync(join(sshDir, 'known_hosts'), 'utf8');
    assert.match(knownHosts, /^px-flow\.sim ssh-ed25519 /m);
    const dataset = `${sim.engine.pool}/.ix-virt/containers/px-flow`;
    const hostPub = (
      await sim.engine.readFile(dataset, 'rootfs/etc/ssh/ssh_host_ed25519_key.pub')
    )?.toString();
    assert.ok(
      hostPub && knownHosts.includes(hostPub.trim().split(' ')[1]),
      'pinned key = key in the sandbox',
    );
    assert.ok(await sim.engine.readFile(dataset, 'rootfs/root/.ssh/authorized_keys'));

    const cp = (await vscode.commands.executeCommand('pixels.createCheckpoint', {
      server: 'sim',
      name: 'flow',
      label: 'first',
    })) as Checkpoint;
    assert.equal(cp?.label, 'first', api.lastError()?.message);
    const cp2 = (await vscode.commands.executeCommand('pixels.createCheckpoint', {
      server: 'sim',
      name: 'flow',
      label: 'second',
    })) as Checkpoint;
    assert.equal(cp2?.label, 'second', api.lastError()?.message);
    rows = await sandboxRows(api, 'sim');
    const flowCheckpoints = await api.treeChildren(rows.get('flow')!);
    assert.deepEqual(
      flowCheckpoints.map((c) => (c.type === 'checkpoint' ? c.checkpoint.label : '')),
      ['second', 'first'],
    );

    // restore the older one: the newer "second" goes. Restored while stopped: the egress re-check of a running
    // sandbox goes over SSH (its key is pinned), and the simulator runs no sshd; a stopped one is re-read when
    // it is next listed running.
    assert.equal(
      await vscode.commands.executeCommand('pixels.stop', { server: 'sim', name: 'flow' }),
      true,
      api.lastError()?.message,
    );
    const warningsBefore = api.egressWarnings().length;
    assert.equal(
      await vscode.commands.executeCommand('pixels.restoreCheckpoint', {
        server: 'sim',
        name: 'flow',
        label: 'first',
        confirm: true,
      }),
      true,
      api.lastError()?.message,
    );
    rows = await sandboxRows(api, 'sim');
    const after = await api.treeChildren(rows.get('flow')!);
    assert.deepEqual(
      after.map((c) => (c.type === 'checkpoint' ? c.checkpoint.label : '')),
      ['first'],
    );
    assert.deepEqual(
      api.egressWarnings().slice(warningsBefore),
      [],
      'nothing to re-check in a stopped sandbox',
    );

    // a declined confirmation changes nothing
    assert.equal(
      await vscode.commands.executeCommand('pixels.restoreCheckpoint', {
        server: 'sim',
        name: 'flow',
        label: 'first',
        confirm: false,
      }),
      false,
    );

    // clone from the checkpoint: on TrueNAS the clone's own identity and host key go in over SSH, as root inside
    // it (the NAS's file API would follow links planted there). The simulator runs no sshd: the clone is refused
    // once SSH does not answer, and nothing of it is left.
    const clone = (await vscode.commands.executeCommand('pixels.clone', {
      server: 'sim',
      name: 'flow',
      label: 'first',
      newName: 'flow-copy',
    })) as Sandbox | undefined;
    assert.equal(clone, undefined);
    assert.match(api.lastError()?.message ?? '', /SSH/);
    rows = await sandboxRows(api, 'sim');
    assert.ok(!rows.has('flow-copy'), 'the half-made clone was removed');
    assert.ok(!(await sim.engine.listInstances()).some((i) => i.name === 'px-flow-copy'));
    assert.doesNotMatch(readFileSync(join(sshDir, 'known_hosts'), 'utf8'), /px-flow-copy/);

    // The same clone made by another client of the server (no identity of its own), for the checks below.
    const other = createTrueNASBackend(
      { serverId: 'other', host: '127.0.0.1', port: sim.port, secure: false, username: 'truenas_admin' },
      API_KEY,
    );
    try {
      await other.clone({ sandbox: 'flow', checkpoint: 'first' }, 'flow-copy');
      // A clone of the current state depends on a state newer than "first": restoring "first" is refused
      // before anything stops; the command offers to destroy it (answered here) and then restores.
      await other.clone({ sandbox: 'flow' }, 'flow-live');
    } finally {
      other.dispose();
    }
    await vscode.commands.executeCommand('pixels.refresh');
    assert.equal(
      await vscode.commands.executeCommand('pixels.restoreCheckpoint', {
        server: 'sim',
        name: 'flow',
        label: 'first',
        confirm: true,
        dependents: 'cancel',
      }),
      undefined,
    );
    assert.match(
      api.lastError()?.message ?? '',
      /^Cannot restore "flow" to "first": sandbox "flow-live" was cloned from a later state of "flow"/,
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.restoreCheckpoint', {
        server: 'sim',
        name: 'flow',
        label: 'first',
        confirm: true,
        dependents: 'destroy',
      }),
      true,
      api.lastError()?.message,
    );
    rows = await sandboxRows(api, 'sim');
    assert.ok(!rows.has('flow-live'), 'the sandbox in the way was destroyed');
    assert.ok(rows.has('flow-copy'), 'a clone of "first" itself is not in the way');

    // a checkpoint a clone came from cannot be deleted (the server says why); another one can
    const del = (label: string) =>
      vscode.commands.executeCommand('pixels.deleteCheckpoint', {
        server: 'sim',
        name: 'flow',
        label,
        confirm: true,
      });
    assert.equal(await del('first'), undefined);
    assert.match(api.lastError()?.message ?? '', /cloned from it/);
    await vscode.commands.executeCommand('pixels.createCheckpoint', {
      server: 'sim',
      name: 'flow',
      label: 'third',
    });
    assert.equal(await del('third'), true, api.lastError()?.message);
    rows = await sandboxRows(api, 'sim');
    const left = await api.treeChildren(rows.get('flow')!);
    assert.deepEqual(
      left.map((c) => (c.type === 'checkpoint' ? c.checkpoint.label : '')),
      ['first'],
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.start', { server: 'sim', name: 'flow' }),
      true,
      api.lastError()?.message,
    );
    const ip = (await vscode.commands.executeCommand('pixels.copyIp', { server: 'sim', name: 'flow' })) as
      string | undefined;
    if (created.ipv4) assert.equal(await vscode.env.clipboard.readText(), ip);

    // stop / start / restart
    assert.equal(
      await vscode.commands.executeCommand('pixels.stop', { server: 'sim', name: 'flow-copy' }),
      true,
      api.lastError()?.message,
    );
    rows = await sandboxRows(api, 'sim');
    assert.equal(
      rows.get('flow-copy')?.type === 'sandbox' &&
        (rows.get('flow-copy') as { sandbox: Sandbox }).sandbox.status,
      'stopped',
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.start', { server: 'sim', name: 'flow-copy' }),
      true,
      api.lastError()?.message,
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.restart', { server: 'sim', name: 'flow-copy' }),
      true,
      api.lastError()?.message,
    );

    // destroy both; their pinned keys go too
    for (const name of ['flow-copy', 'flow']) {
      assert.equal(
        await vscode.commands.executeCommand('pixels.destroy', { server: 'sim', name, confirm: true }),
        true,
        api.lastError()?.message,
      );
    }
    rows = await sandboxRows(api, 'sim');
    assert.ok(!rows.has('flow') && !rows.has('flow-copy'));
    assert.ok(!(await sim.engine.listInstances()).some((i) => i.name.startsWith('px-flow')));
    assert.doesNotMatch(readFileSync(join(sshDir, 'known_hosts'), 'utf8'), /px-flow/);
  });

  test('Open in Sandbox writes the SSH entry and calls vscode.openFolder with the ssh-remote URI', async () => {
    const api = await pixelsApi();
    const sshConfig = join(sshDir, 'user-config');
    writeFileSync(sshConfig, 'Host *\n  ServerAliveInterval 30\n');
    await vscode.workspace
      .getConfiguration('pixels')
      .update('ssh.configFile', sshConfig, vscode.ConfigurationTarget.Global);
    const calls: unknown[][] = [];
    const spy = vscode.commands.registerCommand('vscode.openFolder', (...args: unknown[]) => {
      calls.push(args);
    });
    try {
      const made = (await vscode.commands.executeCommand('pixels.createSandbox', {
        server: 'sim',
        name: 'remote',
        provision: false, // the simulator runs no sshd; the keys go in with Set Up SSH Access…
        egress: 'unrestricted',
      })) as Sandbox;
      assert.ok(made, api.lastError()?.message);
      assert.equal(
        await vscode.commands.executeCommand('pixels.setupSsh', {
          server: 'sim',
          name: 'remote',
          confirm: true,
        }),
        true,
        `set up SSH failed: ${api.lastError()?.message}`,
      );
      const uri = (await vscode.commands.executeCommand('pixels.openFolderInSandbox', {
        server: 'sim',
        name: 'remote',
        path: '/home/pixel/work',
        newWindow: true,
        requireRemoteSsh: false,
      })) as string | undefined;
      if (!made.ipv4) {
        assert.equal(uri, undefined);
        assert.match(api.lastError()?.message ?? '', /no IP/);
        return;
      }
      assert.equal(uri, 'vscode-remote://ssh-remote+px-remote.sim/home/pixel/work', api.lastError()?.message);
      assert.equal(calls.length, 1);
      const opened = calls[0][0] as vscode.Uri;
      assert.equal(opened.scheme, 'vscode-remote');
      assert.equal(opened.authority, 'ssh-remote+px-remote.sim');
      assert.equal(opened.path, '/home/pixel/work');
      assert.deepEqual(calls[0][1], { forceNewWindow: true });
      const userConfig = readFileSync(sshConfig, 'utf8');
      assert.match(userConfig, /^# --- BEGIN PIXELS/m);
      assert.match(userConfig, /Host \*\n {2}ServerAliveInterval 30\n/, "the user's own lines are kept");
      const ours = readFileSync(join(sshDir, 'config'), 'utf8');
      assert.match(ours, /Host px-remote\.sim/);
      assert.match(ours, new RegExp(`HostName ${made.ipv4.replace(/\./g, '\\.')}`));
    } finally {
      spy.dispose();
      await vscode.workspace
        .getConfiguration('pixels')
        .update('ssh.configFile', undefined, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('pixels.destroy', {
        server: 'sim',
        name: 'remote',
        confirm: true,
      });
    }
  });

  test('from the palette (no tree item), a command asks for its target with a quick pick', async () => {
    const api = await pixelsApi();
    // Only stopped sandboxes are offered to Start: "old" is the one; accept it as a user would with Enter.
    const started = vscode.commands.executeCommand('pixels.start');
    await new Promise((r) => setTimeout(r, 800));
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    assert.equal(await started, true, api.lastError()?.message);
    const rows = await sandboxRows(api, 'sim');
    const old = rows.get('old');
    assert.ok(old?.type === 'sandbox' && old.sandbox.status === 'running');
    // and back: Stop offers running sandboxes; pick "old" by moving the selection to it
    const running = [...rows.values()].flatMap((n) =>
      n.type === 'sandbox' && n.sandbox.status === 'running' ? [n.sandbox.name] : [],
    );
    const stopped = vscode.commands.executeCommand('pixels.stop');
    await new Promise((r) => setTimeout(r, 800));
    for (let i = 0; i < running.indexOf('old'); i++)
      await vscode.commands.executeCommand('workbench.action.quickOpenSelectNext');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    assert.equal(await stopped, true, api.lastError()?.message);
    const after = (await sandboxRows(api, 'sim')).get('old');
    assert.ok(after?.type === 'sandbox' && after.sandbox.status === 'stopped');
  });

  test('creating a sandbox under a name that exists is refused, and the existing one is left alone', async () => {
    const api = await pixelsApi();
    const before = (await sim.engine.listInstances()).find((i) => i.name === 'px-web');
    assert.ok(before);
    const result = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'sim',
      name: 'web',
      image: 'no/such-image',
      provision: false,
      egress: 'unrestricted',
    });
    assert.equal(result, undefined);
    assert.match(api.lastError()?.message ?? '', /exists already/);
    const after = (await sim.engine.listInstances()).find((i) => i.name === 'px-web');
    assert.deepEqual(after, before);
  });

  test('filter narrows the tree and sets the empty state', async () => {
    const api = await pixelsApi();
    assert.equal(await vscode.commands.executeCommand('pixels.filter', { text: 'we' }), true);
    let roots = await api.treeChildren();
    let names = (await api.treeChildren(roots[0])).map((n) => (n.type === 'sandbox' ? n.sandbox.name : ''));
    assert.deepEqual(names, ['web']);
    await vscode.commands.executeCommand('pixels.filter', { text: 'nothing-matches' });
    roots = await api.treeChildren();
    assert.deepEqual(roots, []);
    assert.equal(api.viewState(), 'empty');
    await vscode.commands.executeCommand('pixels.clearFilter');
    roots = await api.treeChildren();
    names = (await api.treeChildren(roots[0])).map((n) => (n.type === 'sandbox' ? n.sandbox.name : ''));
    assert.ok(names.length >= 3);
  });
});

suite('refresh from server events', () => {
  let sim: SimServer;

  suiteSetup(async () => {
    sim = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true });
    const api = await pixelsApi();
    await api.setApiKey('events', API_KEY);
    await setServers([simServer(sim.port, 'events')]);
    await showView();
    await api.treeChildren();
  });

  suiteTeardown(async () => {
    await setServers([]);
    await sim.close();
  });

  test('a sandbox made by another client shows up without a manual refresh, with a bounded number of list calls', async () => {
    const api = await pixelsApi();
    const names = async () => {
      const roots = await api.treeChildren();
      if (!roots.length) return [];
      return (await api.treeChildren(roots[0])).flatMap((n) =>
        n.type === 'sandbox' ? [n.sandbox.name] : [],
      );
    };
    assert.ok(!(await names()).includes('other'));
    const listCallsBefore = sim.callCount('virt.instance.query');
    const other = createTrueNASBackend(
      { serverId: 'other', host: '127.0.0.1', port: sim.port, secure: false, username: 'truenas_admin' },
      API_KEY,
    );
    try {
      await other.create({ name: 'other', image: 'ubuntu/24.04', start: true });
      const deadline = Date.now() + 10_000;
      while (!(await names()).includes('other')) {
        assert.ok(Date.now() < deadline, 'the tree did not pick up the server event within 10 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      await other.destroy('other');
    } finally {
      other.dispose();
    }
    const deadline = Date.now() + 10_000;
    while ((await names()).includes('other')) {
      assert.ok(Date.now() < deadline, 'the destroy did not reach the tree within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    // create + start + destroy send a burst of events; debouncing turns them into a few reloads, not one each
    const reloads = sim.callCount('virt.instance.query') - listCallsBefore;
    console.log(`events: ${reloads} list calls for a create + start + destroy by another client`);
    assert.ok(reloads <= 8, `${reloads} list calls`);
  });
});
