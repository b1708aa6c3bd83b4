// Bases in the editor against the Incus lab: the Bases group in the tree with each base's status, Build Base (create
// + provisioning + setup script + checkpoint), Create Sandbox from Base through its own command and through
// Create Sandbox, an agent sandbox's lifecycle countdown on its row (the settings win over the pixels config),
// and Rebuild / Delete Base behind their confirmations. The bases come from a real pixels TOML file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { BaseInfo } from '../../../src/bases/index';
import { createIncusBackend } from '../../../src/backends/incus/index';
import type { Sandbox } from '../../../src/core/sandbox';
import { backendExecutor } from '../../../src/guest/index';
import type { PixelsApi } from '../../../src/vscode/api';
import type { PixelsNode } from '../../../src/vscode/tree';
import { removeTestInstances } from '../../integration/incus/helpers';
import { requireLab, type Lab } from '../../lab/lab';
import { pixelsApi, sandboxRows, setServers, showView, waitFor } from './helpers';

async function baseRows(api: PixelsApi, serverId: string): Promise<Map<string, PixelsNode>> {
  await vscode.commands.executeCommand('pixels.refresh', { server: serverId });
  const server = (await api.treeChildren()).find((n) => n.type === 'server' && n.serverId === serverId);
  assert.ok(server, 'the server row');
  const group = (await api.treeChildren(server)).find((n) => n.type === 'bases');
  assert.ok(group, 'a Bases group under the server');
  const rows = await api.treeChildren(group);
  return new Map(rows.flatMap((n) => (n.type === 'base' ? [[n.base.name, n] as const] : [])));
}

suite('bases in the editor', function () {
  this.timeout(300_000);
  let lab: Lab;
  const prefix = `v${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'pixels-bases-'));
  const saved = { xdg: process.env.XDG_CONFIG_HOME };

  suiteSetup(async () => {
    lab = await requireLab();
    process.env.PIXELS_SSH_DIR = join(dir, 'ssh');
    process.env.PIXELS_SSH_USER = 'root';
    // The lab has no internet: nothing to install beyond what its image has.
    const c = vscode.workspace.getConfiguration('pixels');
    await c.update('provision.packages', [], vscode.ConfigurationTarget.Global);
    await c.update('provision.tools', [], vscode.ConfigurationTarget.Global);
    // The agent preset's domains cannot be resolved here; the egress re-check of a clone still runs.
    await c.update('defaults.egress', 'unrestricted', vscode.ConfigurationTarget.Global);
    writeFileSync(
      join(dir, 'small.sh'),
      'set -eu\necho "installing the small toolchain"\nmkdir -p /opt/small && echo from-base > /opt/small/marker\necho "small toolchain ready"\n',
    );
    mkdirSync(join(dir, 'config', 'pixels'), { recursive: true });
    writeFileSync(
      join(dir, 'config', 'pixels', 'config.toml'),
      [
        '[mcp]',
        `base_prefix = "${prefix}-b-"`,
        '',
        '[mcp.bases.small]',
        `parent_image = "${lab.image}"`,
        `setup_script = "${join(dir, 'small.sh')}"`,
        'description = "a small test base"',
        '',
      ].join('\n'),
    );
    process.env.XDG_CONFIG_HOME = join(dir, 'config');
    await setServers([{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket } as never]);
    await showView();
  });

  suiteTeardown(async () => {
    await setServers([]);
    const c = vscode.workspace.getConfiguration('pixels');
    for (const key of ['provision.packages', 'provision.tools', 'defaults.egress', 'agents.idleStopMinutes'])
      await c.update(key, undefined, vscode.ConfigurationTarget.Global);
    if (saved.xdg === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = saved.xdg;
    delete process.env.PIXELS_SSH_DIR;
    delete process.env.PIXELS_SSH_USER;
    if (lab) await removeTestInstances(lab, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the Bases group lists the configured base and the built-ins, not built', async () => {
    const api = await pixelsApi();
    assert.deepEqual(api.configProblems(), []);
    const rows = await baseRows(api, 'lab');
    assert.deepEqual([...rows.keys()].sort(), ['dev', 'node', 'python', 'small']);
    const small = api.treeItem(rows.get('small') as PixelsNode);
    assert.equal(small.description, 'not built');
    assert.equal(small.contextValue, 'base+missing');
  });

  test('Build Base: provisioned, setup script run, checkpointed; the row says ready', async () => {
    const api = await pixelsApi();
    const started = Date.now();
    const info = (await vscode.commands.executeCommand('pixels.buildBase', {
      server: 'lab',
      base: 'small',
    })) as BaseInfo | undefined;
    assert.ok(info, `build failed: ${api.lastError()?.message}`);
    console.log(`bases: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(info.status, 'ready');
    assert.equal(info.lastCheckpoint?.label, 'initial');
    const row = api.treeItem((await baseRows(api, 'lab')).get('small') as PixelsNode);
    assert.equal(row.description, 'ready · built just now');
    assert.equal(row.contextValue, 'base+ready');
  });

  test('Create Sandbox from Base (agent): ready in seconds with the base file; the row counts down', async () => {
    const api = await pixelsApi();
    const name = `${prefix}-a`;
    const started = Date.now();
    const made = (await vscode.commands.executeCommand('pixels.createFromBase', {
      server: 'lab',
      base: 'small',
      name,
      agent: true,
      announce: false,
    })) as Sandbox | undefined;
    assert.ok(made, `create from base failed: ${api.lastError()?.message}`);
    const took = (Date.now() - started) / 1000;
    console.log(`bases: created from base in ${took.toFixed(1)} s`);
    const check = createIncusBackend({ serverId: 'check', socketPath: lab.socket });
    try {
      const r = await backendExecutor(check, name)('cat /opt/small/marker; hostname');
      assert.equal(r.output.trim(), `from-base\npx-${name}`);
    } finally {
      check.dispose();
    }
    const row = () => sandboxRows(api, 'lab').then((rows) => rows.get(name));
    assert.match(
      api.treeItem((await row()) as PixelsNode).description ?? '',
      / · by agent · stops in 1 h · destroyed in 24 h$/,
    );
    // The setting wins over [mcp] idle_stop_after.
    await vscode.workspace
      .getConfiguration('pixels')
      .update('agents.idleStopMinutes', 5, vscode.ConfigurationTarget.Global);
    await waitFor('the new idle limit on the row', async () =>
      / · by agent · stops in 5 min · destroyed in 24 h$/.test(
        api.treeItem((await row()) as PixelsNode).description ?? '',
      ),
    );
  });

  test('Create Sandbox with a base: a person’s sandbox, under the lifecycle policy only when asked', async () => {
    const api = await pixelsApi();
    const name = `${prefix}-p`;
    const made = (await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'lab',
      base: 'small',
      name,
      announce: false,
    })) as Sandbox | undefined;
    assert.ok(made, `create failed: ${api.lastError()?.message}`);
    const row = (await sandboxRows(api, 'lab')).get(name);
    assert.ok(row);
    assert.doesNotMatch(api.treeItem(row).description ?? '', /by agent|lifecycle|stops in|destroyed in/);
    // Only when the person asks: then it counts down like an agent's, and comes off again.
    const target = { server: 'lab', name };
    assert.equal(await vscode.commands.executeCommand('pixels.applyLifecyclePolicy', target), true);
    const after = (await sandboxRows(api, 'lab')).get(name) as PixelsNode;
    assert.match(
      api.treeItem(after).description ?? '',
      / · lifecycle policy · stops in 5 min · destroyed in 24 h$/,
    );
    assert.match(api.treeItem(after).contextValue ?? '', /\+agent$/);
    assert.equal(await vscode.commands.executeCommand('pixels.removeLifecyclePolicy', target), true);
    const off = (await sandboxRows(api, 'lab')).get(name) as PixelsNode;
    assert.doesNotMatch(api.treeItem(off).description ?? '', /lifecycle|stops in/);
  });

  test('Rebuild Base refused at the confirmation changes nothing; Delete Base removes its sandbox', async () => {
    const api = await pixelsApi();
    const kept = await vscode.commands.executeCommand('pixels.rebuildBase', {
      server: 'lab',
      base: 'small',
      confirm: false,
    });
    assert.equal(kept, undefined);
    assert.equal(
      api.treeItem((await baseRows(api, 'lab')).get('small') as PixelsNode).contextValue,
      'base+ready',
    );
    assert.equal(
      await vscode.commands.executeCommand('pixels.deleteBase', {
        server: 'lab',
        base: 'small',
        confirm: true,
      }),
      true,
    );
    assert.equal(
      api.treeItem((await baseRows(api, 'lab')).get('small') as PixelsNode).description,
      'not built',
    );
    assert.ok(!(await sandboxRows(api, 'lab')).has(`${prefix}-b-small`));
    // A sandbox created from it is a copy: it stays.
    assert.ok((await sandboxRows(api, 'lab')).has(`${prefix}-a`));
  });

  test('Create Sandbox from Base on a base that is not built says to build it', async () => {
    const api = await pixelsApi();
    const made = await vscode.commands.executeCommand('pixels.createFromBase', {
      server: 'lab',
      base: 'small',
      name: `${prefix}-x`,
    });
    assert.equal(made, undefined);
    assert.match(api.lastError()?.message ?? '', /Base "small" is not built on this server\. Build it first/);
  });
});
