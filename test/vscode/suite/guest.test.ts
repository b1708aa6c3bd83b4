// The editor side of provisioning and egress on the real Incus lab: Create Sandbox… with provisioning runs the
// src/guest steps over SSH with fake installers served from a listener on the lab bridge; the notification's
// headlines, the step rows under the sandbox and the row's "provisioning" state are checked; a failing step
// (installer 404) names the step with its log tail and leaves the sandbox so "Provision Sandbox" (the retry)
// resumes; the egress commands set the mode, allow and deny an address, verified with curl from inside the
// container; a clone of the provisioned sandbox only re-runs the SSH step. Fails loudly when the lab is not up.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { createIncusBackend } from '../../../src/backends/incus/index';
import type { Sandbox } from '../../../src/core/sandbox';
import {
  backendExecutor,
  type EgressStatus,
  type Executor,
  type StepOutcome,
} from '../../../src/guest/index';
import type { PixelsApi } from '../../../src/vscode/api';
import type { PixelsNode } from '../../../src/vscode/tree';
import { FAKE_MISE_INSTALLER } from '../../integration/guest/fake-mise';
import { fetchFrom } from '../../integration/guest/helpers';
import { NET, startInternet, type Internet } from '../../integration/guest/internet';
import { removeTestInstances } from '../../integration/incus/helpers';
import { requireLab, type Lab } from '../../lab/lab';
import { pixelsApi, sandboxRows, setServers, showView, sleep } from './helpers';

const SETTINGS = [
  'provision.setupScript',
  'provision.tools',
  'provision.packages',
  'provision.miseInstallerUrl',
  'provision.npmRegistry',
  'provision.nodeMirror',
  'provision.stepTimeoutSeconds',
];

suite('provisioning and egress from the editor (real Incus lab)', function () {
  this.timeout(600_000);
  let lab: Lab;
  let net: Internet;
  let sshDir: string;
  let exec: Executor;
  let checker: ReturnType<typeof createIncusBackend> | undefined;
  const prefix = `g${randomBytes(3).toString('hex')}`;
  const name = `${prefix}-pv`;
  const check = () => createIncusBackend({ serverId: 'check', socketPath: lab.socket });
  const base = () => `http://${NET.allowedV4}:${net.port}`;

  suiteSetup(async () => {
    lab = await requireLab();
    net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
    for (const path of ['/node/index.json', '/npm/@anthropic-ai/claude-code', '/npm/@openai/codex'])
      net.route(path, '{}');
    sshDir = mkdtempSync(join(tmpdir(), 'pixels-ssh-'));
    process.env.PIXELS_SSH_DIR = sshDir;
    process.env.PIXELS_SSH_USER = 'root';
    const c = vscode.workspace.getConfiguration('pixels');
    const g = vscode.ConfigurationTarget.Global;
    // The lab has no internet: every download location points at the listener on the bridge.
    await c.update(
      'provision.tools',
      ['node@lts', 'npm:@anthropic-ai/claude-code', 'npm:@openai/codex@latest'],
      g,
    );
    await c.update('provision.packages', [], g);
    await c.update('provision.miseInstallerUrl', `${base()}/mise-install.sh`, g);
    await c.update('provision.npmRegistry', `${base()}/npm`, g);
    await c.update('provision.nodeMirror', `${base()}/node`, g);
    await c.update('provision.stepTimeoutSeconds', { mise: 30, tools: 30 }, g);
    await setServers([{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket } as never]);
    await showView();
    checker = check();
    exec = backendExecutor(checker, name);
  });

  suiteTeardown(async () => {
    await setServers([]);
    const c = vscode.workspace.getConfiguration('pixels');
    for (const key of SETTINGS) await c.update(key, undefined, vscode.ConfigurationTarget.Global);
    checker?.dispose();
    if (lab) await removeTestInstances(lab, prefix);
    await net?.close();
    delete process.env.PIXELS_SSH_DIR;
    delete process.env.PIXELS_SSH_USER;
    if (sshDir) rmSync(sshDir, { recursive: true, force: true });
  });

  /** Samples the sandbox row and its step rows every 100 ms while `work` runs. */
  async function watchRow<T>(api: PixelsApi, work: Promise<T>) {
    const descriptions = new Set<string>();
    const stepStates = new Set<string>();
    let running = true;
    const sample = async () => {
      const server = (await api.treeChildren()).find((n) => n.type === 'server' && n.serverId === 'lab');
      const row = server
        ? (await api.treeChildren(server)).find((n) => n.type === 'sandbox' && n.sandbox.name === name)
        : undefined;
      if (row) {
        descriptions.add(api.treeItem(row).description ?? '');
        for (const child of await api.treeChildren(row))
          if (child.type === 'step') stepStates.add(`${child.step.id}:${child.step.state}`);
      }
    };
    const sampler = (async () => {
      while (running) {
        await sample();
        await sleep(100);
      }
    })();
    try {
      return { result: await work, descriptions, stepStates };
    } finally {
      running = false;
      await sampler;
      // A step that fails fast (a 404) can start and end between two samples: the rows after the work show it.
      await sample();
    }
  }

  async function row(api: PixelsApi): Promise<PixelsNode> {
    const r = (await sandboxRows(api, 'lab')).get(name);
    assert.ok(r, `${name} is in the tree`);
    return r;
  }

  test('bad provisioning settings are refused before anything is created', async () => {
    const api = await pixelsApi();
    const c = vscode.workspace.getConfiguration('pixels');
    await c.update(
      'provision.miseInstallerUrl',
      'ftp://mirror.example/mise.sh',
      vscode.ConfigurationTarget.Global,
    );
    try {
      const made = await vscode.commands.executeCommand('pixels.createSandbox', {
        server: 'lab',
        name,
        image: lab.image,
        provision: true,
        egress: 'unrestricted',
      });
      assert.equal(made, undefined);
      assert.match(api.lastError()?.message ?? '', /miseInstallerUrl: only http and https/);
      assert.equal((await sandboxRows(api, 'lab')).has(name), false, 'nothing was created');
    } finally {
      await c.update(
        'provision.miseInstallerUrl',
        `${base()}/mise-install.sh`,
        vscode.ConfigurationTarget.Global,
      );
    }
  });

  test('create with provisioning: a missing installer fails "Install mise" with its log tail; the sandbox stays', async () => {
    const api = await pixelsApi();
    const { result, descriptions, stepStates } = await watchRow(
      api,
      Promise.resolve(
        vscode.commands.executeCommand('pixels.createSandbox', {
          server: 'lab',
          name,
          image: lab.image,
          cpu: '1',
          memoryMiB: 512,
          provision: true,
          egress: 'unrestricted',
        }),
      ),
    );
    assert.equal(result, undefined, 'create reports the failure');
    const error = api.lastError();
    assert.equal(error?.action, 'Create sandbox');
    assert.match(error?.message ?? '', /stopped at step "Install mise"/);
    assert.match(error?.message ?? '', /404/, `the log tail shows curl's 404: ${error?.message}`);
    assert.ok(
      [...descriptions].some((d) => / · provisioning( · |$)/.test(d)),
      `the row showed "provisioning": ${[...descriptions].join(' | ')}`,
    );
    assert.ok(
      stepStates.has('user:done') && (stepStates.has('mise:running') || stepStates.has('mise:failed')),
      [...stepStates].join(' '),
    );
    const run = api.provisionRun('lab', name);
    assert.ok(run);
    assert.equal(run.active, false);
    assert.equal(run.failed, 'Install mise');
    assert.deepEqual(
      run.steps.map((s) => `${s.id}:${s.state}`),
      [
        'user:done',
        'packages:done',
        'ssh:done',
        'env:done',
        'mise:failed',
        'tools:pending',
        'egress:pending',
      ],
    );
    assert.ok(
      run.headlines.some((h) => h === `${name}: Install mise (5/7)`),
      `the notification named the step: ${run.headlines.join(' | ')}`,
    );
    assert.ok(run.headlines.includes(`${name}: Install mise failed`));
    // Left in place (not destroyed) and shown as failed, with the step rows under it.
    const r = await row(api);
    assert.match(api.treeItem(r).description ?? '', /provisioning failed/);
    const steps = (await api.treeChildren(r)).filter((n) => n.type === 'step');
    assert.equal(steps.length, 7);
    const failedRow = steps.find((n) => n.type === 'step' && n.step.id === 'mise')!;
    assert.equal(api.treeItem(failedRow).icon, 'error');
  });

  test('Provision Sandbox (the retry) resumes after the failure: done steps are skipped', async () => {
    const api = await pixelsApi();
    net.route('/mise-install.sh', FAKE_MISE_INSTALLER);
    const { result, descriptions } = await watchRow(
      api,
      Promise.resolve(
        vscode.commands.executeCommand<StepOutcome[] | undefined>('pixels.provisionSandbox', {
          server: 'lab',
          name,
        }),
      ),
    );
    assert.ok(result, api.lastError()?.message);
    assert.deepEqual(Object.fromEntries(result.map((o) => [o.id, o.alreadyDone])), {
      user: true,
      packages: true,
      ssh: true,
      env: true,
      mise: false,
      tools: false,
      egress: false,
    });
    assert.ok([...descriptions].some((d) => /provisioning/.test(d)));
    const run = api.provisionRun('lab', name);
    assert.ok(run && !run.active && !run.failed);
    assert.ok(run.steps.every((s) => s.state === 'done'));
    assert.ok(run.headlines.includes(`${name}: Install dev tools (6/7)`), run.headlines.join(' | '));
    const r = await row(api);
    assert.doesNotMatch(api.treeItem(r).description ?? '', /provisioning/);
    assert.equal((await api.treeChildren(r)).filter((n) => n.type === 'step').length, 0, 'step rows go');
    // What the fake mise fetched proves the download locations came from the settings.
    for (const path of ['/mise-install.sh', '/node/index.json', '/npm/@openai/codex'])
      assert.ok(
        net.requests.some((q) => q.endsWith(` ${path}`)),
        `${path} requested`,
      );
    const inside = await exec('id pixel && runuser -l pixel -c "mise ls --current"', { timeoutMs: 30_000 });
    assert.equal(inside.exitCode, 0, inside.output);
    assert.match(inside.output, /npm:@openai\/codex latest/);
  });

  test('a step past its timeout (pixels.provision.stepTimeoutSeconds) fails as timed out, with its log', async () => {
    const api = await pixelsApi();
    const c = vscode.workspace.getConfiguration('pixels');
    const g = vscode.ConfigurationTarget.Global;
    const script = join(sshDir, 'slow-setup.sh');
    writeFileSync(script, 'echo "started the slow part"\nsleep 60\necho never\n');
    await c.update('provision.setupScript', script, g);
    await c.update('provision.stepTimeoutSeconds', { mise: 30, tools: 30, setup: 2 }, g);
    const started = Date.now();
    try {
      const result = await vscode.commands.executeCommand('pixels.provisionSandbox', { server: 'lab', name });
      assert.equal(result, undefined);
      const message = api.lastError()?.message ?? '';
      assert.match(message, /stopped at step "Run setup script": .*timed out/);
      assert.match(message, /started the slow part/, 'the log tail is in the message');
      assert.ok(Date.now() - started < 40_000, 'ended by the timeout, not by the script');
      const run = api.provisionRun('lab', name);
      assert.equal(run?.failed, 'Run setup script');
      assert.match(api.treeItem(await row(api)).description ?? '', /provisioning failed/);
    } finally {
      await c.update('provision.setupScript', undefined, g);
      await c.update('provision.stepTimeoutSeconds', { mise: 30, tools: 30 }, g);
    }
    // Without the script there is no setup step: everything else is done, so nothing runs.
    const outcomes = await vscode.commands.executeCommand<StepOutcome[]>('pixels.provisionSandbox', {
      server: 'lab',
      name,
    });
    assert.ok(outcomes, api.lastError()?.message);
    assert.ok(
      outcomes.every((o) => o.alreadyDone),
      'a clean re-run',
    );
    assert.doesNotMatch(api.treeItem(await row(api)).description ?? '', /provisioning/);
  });

  test('egress: set allowlist, allow an address, deny it again — checked with curl inside', async () => {
    const api = await pixelsApi();
    const allowed = `${base()}/`;
    const other = `http://${NET.deniedV4}:${net.port}/`;
    assert.equal((await fetchFrom(exec, allowed)).exitCode, 0, 'unrestricted at first');
    const set = await vscode.commands.executeCommand<EgressStatus>('pixels.setEgressMode', {
      server: 'lab',
      name,
      mode: 'allowlist',
    });
    assert.ok(set, api.lastError()?.message);
    assert.equal(set.policy.mode, 'allowlist');
    assert.equal(set.enforced, true);
    assert.notEqual((await fetchFrom(exec, allowed)).exitCode, 0, 'nothing allowed yet');
    assert.match(api.treeItem(await row(api)).description ?? '', / · allowlist$/);

    const bad = await vscode.commands.executeCommand('pixels.allowDomain', {
      server: 'lab',
      name,
      entry: 'http://example.com/x',
    });
    assert.equal(bad, undefined);
    assert.match(api.lastError()?.message ?? '', /not a URL/);

    const allow = await vscode.commands.executeCommand<EgressStatus>('pixels.allowDomain', {
      server: 'lab',
      name,
      entry: NET.allowedV4,
    });
    assert.ok(allow, api.lastError()?.message);
    assert.deepEqual(allow.effective, [NET.allowedV4]);
    assert.equal((await fetchFrom(exec, allowed)).exitCode, 0, 'the allowed listener answers');
    assert.notEqual((await fetchFrom(exec, other)).exitCode, 0, 'another listener is refused');

    const shown = await vscode.commands.executeCommand<EgressStatus>('pixels.showEgressPolicy', {
      server: 'lab',
      name,
    });
    assert.ok(shown);
    assert.deepEqual(shown.policy.allow, [NET.allowedV4]);
    // VS Code re-reads a virtual document it already has open (an earlier test showed this sandbox unrestricted)
    // on its own time: wait, bounded, for the shown text to be the new one.
    let text = '';
    for (let i = 0; i < 50; i++) {
      // The shown one: an earlier test's egress document of this sandbox may still be open beside it.
      const active = vscode.window.activeTextEditor?.document;
      const doc =
        active?.uri.scheme === 'pixels-egress'
          ? active
          : vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'pixels-egress');
      assert.ok(doc, 'a read-only egress document was opened');
      text = doc.getText();
      if (/Mode: \*\*allowlist\*\*/.test(text)) break;
      await sleep(100);
    }
    assert.match(text, /Mode: \*\*allowlist\*\*/);
    assert.ok(text.includes(`- ${NET.allowedV4}`));

    const deny = await vscode.commands.executeCommand<EgressStatus>('pixels.denyDomain', {
      server: 'lab',
      name,
      entry: NET.allowedV4,
    });
    assert.ok(deny, api.lastError()?.message);
    assert.deepEqual(deny.effective, []);
    assert.notEqual((await fetchFrom(exec, allowed)).exitCode, 0, 'denied at once');
  });

  test('the row shows the mode read from the sandbox, read once per session (not on every refresh)', async () => {
    const api = await pixelsApi();
    const before = api.egressReads();
    for (let i = 0; i < 3; i++) await row(api);
    await sleep(500);
    assert.equal(api.egressReads(), before, 'refreshing does not read the policy again');
    assert.match(api.treeItem(await row(api)).description ?? '', / · allowlist$/);
  });

  test('a clone of the provisioned sandbox only re-runs the SSH step; its policy is re-checked', async () => {
    const api = await pixelsApi();
    const cloneName = `${prefix}-cl`;
    const warningsBefore = api.egressWarnings().length; // earlier suites' warnings are theirs
    const made = await vscode.commands.executeCommand<Sandbox>('pixels.clone', {
      server: 'lab',
      name,
      newName: cloneName,
    });
    assert.ok(made, api.lastError()?.message);
    const run = api.provisionRun('lab', cloneName);
    assert.ok(run, 'provisioning ran on the clone');
    assert.deepEqual(
      run.steps.filter((s) => !s.alreadyDone).map((s) => s.id),
      ['ssh'],
      'only the host-key step ran again',
    );
    assert.deepEqual(api.egressWarnings().slice(warningsBefore), [], 'the policy holds in the clone');
    const r = (await sandboxRows(api, 'lab')).get(cloneName);
    assert.ok(r);
    assert.match(api.treeItem(r).description ?? '', / · allowlist$/);
    const b = check();
    try {
      const cloneExec = backendExecutor(b, cloneName);
      assert.notEqual((await fetchFrom(cloneExec, `${base()}/`)).exitCode, 0, 'the clone is confined too');
    } finally {
      b.dispose();
    }
  });

  test('after restoring a checkpoint the policy is re-checked and the row shows the restored state', async () => {
    const api = await pixelsApi();
    const allowed = `${base()}/`;
    const allow = await vscode.commands.executeCommand<EgressStatus>('pixels.allowDomain', {
      server: 'lab',
      name,
      entry: NET.allowedV4,
    });
    assert.ok(allow, api.lastError()?.message);
    const cp = await vscode.commands.executeCommand('pixels.createCheckpoint', {
      server: 'lab',
      name,
      label: 'open',
    });
    assert.ok(cp, api.lastError()?.message);
    const deny = await vscode.commands.executeCommand<EgressStatus>('pixels.denyDomain', {
      server: 'lab',
      name,
      entry: NET.allowedV4,
    });
    assert.ok(deny, api.lastError()?.message);
    assert.notEqual((await fetchFrom(exec, allowed)).exitCode, 0);
    const warningsBefore = api.egressWarnings().length;
    const restored = await vscode.commands.executeCommand('pixels.restoreCheckpoint', {
      server: 'lab',
      name,
      label: 'open',
      confirm: true,
    });
    assert.equal(restored, true, api.lastError()?.message);
    assert.deepEqual(api.egressWarnings().slice(warningsBefore), [], 'the restored policy holds');
    const shown = await vscode.commands.executeCommand<EgressStatus>('pixels.showEgressPolicy', {
      server: 'lab',
      name,
      open: false,
    });
    assert.ok(shown, api.lastError()?.message);
    assert.deepEqual(shown.policy.allow, [NET.allowedV4], "the checkpoint's allow list is back");
    assert.equal(shown.enforced, true);
    assert.equal((await fetchFrom(exec, allowed)).exitCode, 0, 'and enforced: the allowed listener answers');
    assert.match(api.treeItem(await row(api)).description ?? '', / · allowlist$/);
  });

  test('Set Egress Mode… without a mode asks with a quick pick (unrestricted is first)', async () => {
    const api = await pixelsApi();
    const pending = Promise.resolve(
      vscode.commands.executeCommand<EgressStatus>('pixels.setEgressMode', { server: 'lab', name }),
    );
    await sleep(800);
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    const status = await pending;
    assert.ok(status, api.lastError()?.message);
    assert.equal(status.policy.mode, 'unrestricted');
    assert.equal((await fetchFrom(exec, `http://${NET.deniedV4}:${net.port}/`)).exitCode, 0, 'open again');
    assert.match(api.treeItem(await row(api)).description ?? '', / · unrestricted$/);
  });
});
