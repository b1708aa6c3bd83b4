// Everyday use (issue 14) through the real extension: what a new user hit in the demo (impossible create
// combinations, names differing only in case, limits, memory units, duplicate labels, the tooltip, restore's
// egress warning) against the TrueNAS simulator; Create Sandbox and Open, the sandbox-window status item, resource
// use and Show Provisioning Status against real containers (the Incus lab).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { Checkpoint, Sandbox } from '../../../src/core/sandbox';
import type { Lab } from '../../lab/lab';
import { startSimulator, type SimServer } from '../../sim/index';
import { API_KEY, pixelsApi, sandboxRows, setServers, showView, simServer, waitFor } from './helpers';
import { setUpLabSuite, type LabSuite } from './labSuite';

suite('everyday use against the simulator', () => {
  let sim: SimServer;
  let sshDir: string;

  suiteSetup(async () => {
    sshDir = mkdtempSync(join(tmpdir(), 'pixels-ssh-'));
    process.env.PIXELS_SSH_DIR = sshDir;
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

  const create = (answers: Record<string, unknown>) =>
    vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'sim',
      image: 'ubuntu/24.04',
      cpu: '1',
      memoryMiB: 512,
      egress: 'unrestricted',
      provision: false,
      announce: false,
      ...answers,
    }) as Thenable<Sandbox | undefined>;

  test('a name differing only in case from an existing sandbox is refused, and nothing is made', async () => {
    const api = await pixelsApi();
    const before = [...(await sandboxRows(api, 'sim')).keys()];
    assert.equal(await create({ name: 'Web' }), undefined);
    assert.match(api.lastError()?.message ?? '', /"web" exists already on Simulator; .*differ only in case/);
    assert.deepEqual([...(await sandboxRows(api, 'sim')).keys()].sort(), [...before].sort());
  });

  test('CPU and memory beyond the server (system.info: 16 cores, 64 GiB) are refused before the server is asked', async () => {
    const api = await pixelsApi();
    assert.equal(await create({ name: 'big', cpu: '999' }), undefined);
    assert.match(api.lastError()?.message ?? '', /The server has 16 CPU cores; ask for at most 16\./);
    assert.equal(await create({ name: 'big', memoryMiB: 100000 }), undefined);
    assert.match(api.lastError()?.message ?? '', /The server has 64 GiB of memory/);
    assert.ok(!(await sandboxRows(api, 'sim')).has('big'));
  });

  test('memory as the tree shows it: "4 GiB" creates a 4096 MiB sandbox; the tree says 4 GiB', async () => {
    const api = await pixelsApi();
    const made = await create({ name: 'units', memory: '4 GiB' });
    assert.ok(made, api.lastError()?.message);
    assert.equal(made.memoryMiB, 4096);
    const row = (await sandboxRows(api, 'sim')).get('units');
    assert.ok(row);
    assert.match(api.treeItem(row).tooltip ?? '', /\| Memory \| 4 GiB \|/);
    assert.equal(await create({ name: 'units2', memory: '4 GB of RAM' }), undefined);
    assert.match(api.lastError()?.message ?? '', /such as 2048 \(MiB\), 512M, 4G or 4 GiB/);
    assert.equal(
      await vscode.commands.executeCommand('pixels.destroy', { server: 'sim', name: 'units', confirm: true }),
      true,
    );
  });

  test('egress "agent" without provisioning on TrueNAS is refused up front with what to choose instead', async () => {
    const api = await pixelsApi();
    assert.equal(await create({ name: 'locked', egress: 'agent', provision: false }), undefined);
    assert.match(
      api.lastError()?.message ?? '',
      /"agent" egress rules go in over SSH, which provisioning sets up on Simulator: choose "Provision", or go Back and choose "unrestricted"/,
    );
    assert.ok(!(await sandboxRows(api, 'sim')).has('locked'), 'nothing was made');
  });

  test('tooltip: the instance name in code without Markdown escapes; checkpoints counted and summed; expanded row', async () => {
    const api = await pixelsApi();
    const web = (await sandboxRows(api, 'sim')).get('web');
    assert.ok(web && web.type === 'sandbox');
    const item = api.treeItem(web);
    assert.match(item.tooltip ?? '', /\| Instance \| `px-web` \|/);
    assert.doesNotMatch(item.tooltip ?? '', /px\\-web/);
    const count = web.sandbox.checkpoints?.length ?? 0;
    assert.ok(count >= 2);
    assert.match(item.tooltip ?? '', new RegExp(`\\| Checkpoints \\| ${count} · \\d`));
    assert.equal(item.collapsible, vscode.TreeItemCollapsibleState.Expanded, 'checkpoints show at once');
    // TrueNAS has no usage call: the hover adds nothing and reads nothing.
    const reads = api.resourceReads();
    assert.equal(await api.hoverTooltip(web), item.tooltip);
    assert.equal(api.resourceReads(), reads);
  });

  test('a label the sandbox has already is refused before the server is asked', async () => {
    const api = await pixelsApi();
    const web = (await sandboxRows(api, 'sim')).get('web');
    assert.ok(web && web.type === 'sandbox');
    const label = web.sandbox.checkpoints![0].label;
    const again = (await vscode.commands.executeCommand('pixels.createCheckpoint', {
      server: 'sim',
      name: 'web',
      label,
    })) as Checkpoint | undefined;
    assert.equal(again, undefined);
    assert.equal(
      api.lastError()?.message,
      `"web" has a checkpoint "${label}" already; choose another label.`,
    );
  });

  test('restore on TrueNAS without SSH set up: no failed re-check warning, the log says why', async () => {
    const api = await pixelsApi();
    const web = (await sandboxRows(api, 'sim')).get('web');
    assert.ok(web && web.type === 'sandbox' && web.sandbox.status === 'running');
    const newest = web.sandbox.checkpoints![0].label;
    const warningsBefore = api.egressWarnings().length;
    assert.equal(
      await vscode.commands.executeCommand('pixels.restoreCheckpoint', {
        server: 'sim',
        name: 'web',
        label: newest,
        confirm: true,
      }),
      true,
      api.lastError()?.message,
    );
    assert.deepEqual(api.egressWarnings().slice(warningsBefore), []);
  });

  test('errors name the server as the UI does and carry no internal error kinds', async () => {
    const api = await pixelsApi();
    assert.equal(await create({ name: 'web' }), undefined);
    assert.equal(api.lastError()?.message, 'A sandbox named "web" exists already on Simulator.');
    assert.doesNotMatch(api.lastError()?.message ?? '', /^(unsupported|not-authenticated|already-exists):/);
  });

  test('the status item of a sandbox window: decided from the remote authority, hidden elsewhere', async () => {
    const api = await pixelsApi();
    try {
      process.env.PIXELS_WINDOW_AUTHORITY = 'ssh-remote+px-web.sim';
      const state = await api.sandboxWindow();
      assert.ok(state, 'a window on px-web.sim is the sandbox "web"');
      assert.equal(state.name, 'web');
      assert.match(state.text, /^\$\(vm\) web · egress (\w+) · checkpoint (just now|\d+ (min|h|d) ago)$/);
      assert.match(state.tooltip, /on Simulator \(running\)/);
      // Checkpoint Now from the item: a new newest checkpoint, and the item says so.
      const before = (await sandboxRows(api, 'sim')).get('web');
      const count = before?.type === 'sandbox' ? (before.sandbox.checkpoints?.length ?? 0) : 0;
      const made = (await vscode.commands.executeCommand(
        'pixels.sandboxWindowActions',
        'checkpoint',
      )) as Checkpoint;
      assert.ok(made?.label, api.lastError()?.message);
      const after = (await sandboxRows(api, 'sim')).get('web');
      assert.equal(after?.type === 'sandbox' ? after.sandbox.checkpoints?.length : 0, count + 1);
      assert.match((await api.sandboxWindow())!.text, / · checkpoint just now$/);
      process.env.PIXELS_WINDOW_AUTHORITY = 'ssh-remote+some-other-host';
      assert.equal(await api.sandboxWindow(), undefined);
    } finally {
      delete process.env.PIXELS_WINDOW_AUTHORITY;
      await api.sandboxWindow();
    }
  });
});

suite('everyday use against the real Incus lab', function () {
  this.timeout(300_000);
  let env: LabSuite;
  let lab: Lab;
  const prefix = `e${randomBytes(3).toString('hex')}`;
  const name = `${prefix}-open`;

  suiteSetup(async () => {
    // The commands below log in as root; provisioning authorises it too.
    env = await setUpLabSuite(prefix, { root: true });
    ({ lab } = env);
  });

  suiteTeardown(async () => {
    await env?.teardown();
  });

  test('Create Sandbox and Open: create, provision, then Open in Sandbox in one command', async () => {
    const api = await pixelsApi();
    const opened: unknown[][] = [];
    // The window switch itself (vscode.openFolder to the ssh-remote URI) is caught here.
    const spy = vscode.commands.registerCommand('vscode.openFolder', (...args: unknown[]) => {
      opened.push(args);
    });
    try {
      const uri = await vscode.commands.executeCommand('pixels.createAndOpen', {
        server: 'lab',
        name,
        image: lab.image,
        cpu: '1',
        memory: '512M',
        egress: 'unrestricted',
        provision: true,
        open: 'window',
        requireRemoteSsh: false,
      });
      assert.equal(uri, `vscode-remote://ssh-remote+px-${name}.lab/home/root`, api.lastError()?.message);
    } finally {
      spy.dispose();
    }
    assert.equal(opened.length, 1);
    const run = api.provisionRun('lab', name);
    assert.ok(run && !run.active && !run.failed, 'provisioned in the same flow');
    assert.ok(run.steps.every((s) => s.state === 'done'));
  });

  test('resources: CPU, memory and disk use on hover and in Show Details; a closed view reads nothing', async () => {
    const api = await pixelsApi();
    const row = (await sandboxRows(api, 'lab')).get(name);
    assert.ok(row);
    const tooltip = await api.hoverTooltip(row);
    assert.match(tooltip ?? '', /\| CPU use \| [\d\\.]+ (s CPU time since start|% of a core) \|/);
    assert.match(tooltip ?? '', /\| Memory use \| [\d\\.]+ (KiB|MiB|GiB) of 512 MiB \|/);
    const rows = (await vscode.commands.executeCommand('pixels.showDetails', { server: 'lab', name })) as
      { label: string; value: string }[] | undefined;
    assert.ok(rows, api.lastError()?.message);
    const value = (label: string) => rows.find((r) => r.label === label)?.value;
    assert.equal(value('Server'), 'Incus lab');
    assert.equal(value('Memory limit'), '512 MiB');
    assert.match(value('CPU use') ?? '', /% of a core/, 'the second sample (after the hover) gives a share');
    assert.match(value('Memory use') ?? '', / of 512 MiB$/);
    assert.ok(value('Disk use'));
    assert.equal(value('Checkpoints'), 'none');
    // Visible: it refreshes by itself.
    const reads = api.resourceReads();
    await waitFor(
      'a refresh of the visible details view',
      () => api.resourceReads() > reads || undefined,
      10_000,
    );
    // Hidden behind another editor: no more reads.
    await vscode.commands.executeCommand('workbench.action.files.newUntitledFile');
    await waitFor('the details view to be hidden', () =>
      api.detailsPanels().every((p) => !p.visible) ? true : undefined,
    );
    const hidden = api.resourceReads();
    await new Promise((r) => setTimeout(r, 7000));
    assert.equal(api.resourceReads(), hidden, 'nothing read while nobody looks');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('Show Provisioning Status: our markers; a pixels CLI sandbox shows its zmx steps and sentinel', async () => {
    const api = await pixelsApi();
    const ours = (await vscode.commands.executeCommand('pixels.showProvisioningStatus', {
      server: 'lab',
      name,
      show: false,
    })) as string[] | undefined;
    assert.ok(ours, api.lastError()?.message);
    assert.match(ours[0], /^Pixels for VS Code: done .*\bssh\b/);

    // What the pixels CLI leaves: its provision script, and zmx sessions px-* (zmx itself cannot be downloaded
    // here; a stand-in prints `zmx list` lines in zmx 0.5.0's format).
    const cli = `${prefix}-cli`;
    const made = await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'lab',
      name: cli,
      image: lab.image,
      cpu: '1',
      memoryMiB: 512,
      egress: 'unrestricted',
      provision: false,
      announce: false,
    });
    assert.ok(made, api.lastError()?.message);
    const sh = (script: string) => {
      const r = spawnSync('incus', ['exec', `px-${cli}`, '--', 'sh', '-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    sh(
      [
        "printf '#!/bin/sh\\nexit 0\\n' > /usr/local/bin/pixels-provision.sh",
        'chmod 755 /usr/local/bin/pixels-provision.sh',
        'printf \'#!/bin/sh\\n[ "$1" = list ] || exit 2\\nprintf "name=px-devtools\\\\tpid=1\\\\tended=1767000000\\\\texit_code=0\\\\n"\\nprintf "name=px-egress\\\\tpid=2\\\\n"\\nprintf "name=console\\\\tpid=3\\\\n"\\n\' > /usr/local/bin/zmx',
        'chmod 755 /usr/local/bin/zmx',
      ].join(' && '),
    );
    const status = () =>
      vscode.commands.executeCommand('pixels.showProvisioningStatus', {
        server: 'lab',
        name: cli,
        show: false,
      }) as Thenable<string[] | undefined>;
    assert.deepEqual(await status(), [
      'pixels CLI step px-devtools: done (exit 0)',
      'pixels CLI step px-egress: running',
    ]);
    sh('rm /usr/local/bin/zmx && touch /root/.pixels-provisioned');
    assert.deepEqual(await status(), ['pixels CLI: Provisioning complete']);
  });

  test('the sandbox-window status item for a lab sandbox, and Show Egress Policy from it', async () => {
    const api = await pixelsApi();
    try {
      process.env.PIXELS_WINDOW_AUTHORITY = `ssh-remote+px-${name}.lab`;
      const state = await api.sandboxWindow();
      assert.ok(state);
      assert.match(state.text, new RegExp(`^\\$\\(vm\\) ${name} · egress unrestricted · no checkpoint$`));
      const shown = await vscode.commands.executeCommand('pixels.sandboxWindowActions', 'egress');
      assert.ok(shown, api.lastError()?.message);
    } finally {
      delete process.env.PIXELS_WINDOW_AUTHORITY;
      await api.sandboxWindow();
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });
});
