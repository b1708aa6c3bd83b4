// The editor on the lab's real 3-member Incus cluster (test/lab/cluster-up.sh): Create follows the server's
// placement setting, Clone of a checkpoint lands on the member asked for, each row says its member, and the tree
// groups sandboxes by member when asked. Fails loudly when the cluster lab is not up.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { Checkpoint, Sandbox } from '../../../src/core/sandbox';
import { clusterIncus, requireCluster, type ClusterLab } from '../../lab/cluster';
import { pixelsApi, sandboxRows, setServers, showView, sleep } from './helpers';

suite('on the 3-member Incus cluster lab', function () {
  this.timeout(240_000);
  let cluster: ClusterLab;
  const prefix = `v${randomBytes(3).toString('hex')}`;
  const a = `${prefix}-a`;
  const b = `${prefix}-b`;
  const c = `${prefix}-c`; // placed on the member picked
  const d = `${prefix}-d`; // placed on the group picked
  const group = `px${prefix}`; // a member group of pxm1 alone, made by the test
  let grouped = false;

  suiteSetup(async () => {
    cluster = await requireCluster();
    await setServers([
      {
        id: 'cluster',
        kind: 'incus',
        label: 'Cluster',
        socketPath: cluster.socket,
        placement: 'pxm3',
      } as never,
    ]);
    await showView();
  });

  suiteTeardown(async () => {
    await vscode.workspace
      .getConfiguration('pixels')
      .update('tree.groupByMember', undefined, vscode.ConfigurationTarget.Global);
    await setServers([]);
    if (cluster)
      for (const name of [d, c, b, a])
        await clusterIncus(cluster, 'delete', '-f', `px-${name}`).catch(() => undefined);
    if (grouped) {
      // (The REST API through `incus query`: `incus cluster group create` waits for YAML on a stdin that is no tty.)
      const body = JSON.stringify({ description: '', members: [] });
      await clusterIncus(cluster, 'query', '-X', 'PUT', '-d', body, `/1.0/cluster/groups/${group}`).catch(
        () => undefined,
      );
      await clusterIncus(cluster, 'query', '-X', 'DELETE', `/1.0/cluster/groups/${group}`).catch(
        () => undefined,
      );
    }
  });

  test('Create on the configured member, Clone onto another, rows with their member, grouped by member', async () => {
    const api = await pixelsApi();
    const made = (await vscode.commands.executeCommand('pixels.createSandbox', {
      server: 'cluster',
      name: a,
      image: cluster.image,
      provision: false,
      egress: 'unrestricted',
      announce: false,
    })) as Sandbox | undefined;
    assert.equal(made?.location, 'pxm3', api.lastError()?.message);
    const cp = (await vscode.commands.executeCommand('pixels.createCheckpoint', {
      server: 'cluster',
      name: a,
      label: 'cp1',
    })) as Checkpoint | undefined;
    assert.equal(cp?.label, 'cp1', api.lastError()?.message);
    // A command's own target wins over the setting.
    const clone = (await vscode.commands.executeCommand('pixels.clone', {
      server: 'cluster',
      name: a,
      label: 'cp1',
      newName: b,
      target: 'pxm1',
    })) as Sandbox | undefined;
    assert.equal(clone?.location, 'pxm1', api.lastError()?.message);

    const rows = await sandboxRows(api, 'cluster');
    assert.match(api.treeItem(rows.get(a)!).description ?? '', /pxm3/);
    assert.match(api.treeItem(rows.get(b)!).description ?? '', /pxm1/);
    assert.match(api.treeItem(rows.get(b)!).tooltip ?? '', /\| Member \| pxm1 \|/);

    await vscode.workspace
      .getConfiguration('pixels')
      .update('tree.groupByMember', true, vscode.ConfigurationTarget.Global);
    const server = (await api.treeChildren()).find((n) => n.type === 'server' && n.serverId === 'cluster')!;
    const members = (await api.treeChildren(server)).filter((n) => n.type === 'member');
    const mine = new Map<string, string[]>();
    for (const m of members) {
      const names = (await api.treeChildren(m)).flatMap((n) =>
        n.type === 'sandbox' ? [n.sandbox.name] : [],
      );
      if (m.type === 'member')
        mine.set(
          m.member,
          names.filter((n) => n.startsWith(prefix)),
        );
    }
    assert.deepEqual(mine.get('pxm3'), [a]);
    assert.deepEqual(mine.get('pxm1'), [b]);
    const pxm3 = members.find((m) => m.type === 'member' && m.member === 'pxm3')!;
    assert.match(api.treeItem(pxm3).description ?? '', /sandbox/);
  });

  test('placement "ask": the pick offers Incus, the members and the groups; the one chosen is where it lands', async () => {
    const api = await pixelsApi();
    grouped = true;
    const made = JSON.stringify({ name: group, description: 'pixels test', members: ['pxm1'] });
    await clusterIncus(cluster, 'query', '-X', 'POST', '-d', made, '/1.0/cluster/groups');
    await setServers([
      {
        id: 'cluster',
        kind: 'incus',
        label: 'Cluster',
        socketPath: cluster.socket,
        placement: 'ask',
      } as never,
    ]);
    // The pick: "Let Incus choose", then the members in the server's order, then the groups sorted.
    const groups = ['default', group].sort();
    const items = ['Let Incus choose', ...cluster.members, ...groups.map((g) => `@${g}`)];
    const createPicking = async (name: string, label: string): Promise<Sandbox | undefined> => {
      const pending = Promise.resolve(
        vscode.commands.executeCommand<Sandbox | undefined>('pixels.createSandbox', {
          server: 'cluster',
          name,
          image: cluster.image,
          provision: false,
          egress: 'unrestricted',
          announce: false,
        }),
      );
      await sleep(1500);
      for (let i = 0; i < items.indexOf(label); i++)
        await vscode.commands.executeCommand('workbench.action.quickOpenSelectNext');
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
      return pending;
    };
    const onMember = await createPicking(c, 'pxm2');
    assert.equal(onMember?.location, 'pxm2', api.lastError()?.message);
    const onGroup = await createPicking(d, `@${group}`);
    assert.equal(onGroup?.location, 'pxm1', api.lastError()?.message);
  });
});
