import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { allCommandIds } from '../../src/vscode/commandIds';

interface ManifestCommand {
  command: string;
  title: string;
  category?: string;
  icon?: string;
}
interface MenuEntry {
  command?: string;
  submenu?: string;
  when?: string;
  group?: string;
}
interface Manifest {
  activationEvents: string[];
  contributes: {
    commands: ManifestCommand[];
    menus: Record<string, MenuEntry[]>;
    submenus: { id: string; label: string }[];
    viewsWelcome: { view: string; contents: string; when: string }[];
    viewsContainers: { activitybar: { id: string; icon: string }[] };
    views: Record<string, { id: string }[]>;
    configuration: { properties: Record<string, { scope?: string }> };
    walkthroughs: { steps: { media: { markdown?: string } }[] }[];
  };
  capabilities: { untrustedWorkspaces: { supported: boolean } };
}

const root = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const commands = manifest.contributes.commands;

test('the typed command list equals package.json contributes.commands exactly', () => {
  const inManifest = commands.map((c) => c.command).sort();
  assert.deepEqual(inManifest, [...allCommandIds].sort());
  assert.equal(new Set(inManifest).size, inManifest.length, 'no command is contributed twice');
});

test('every command has the Pixels category and a codicon', () => {
  for (const c of commands) {
    assert.equal(c.category, 'Pixels', c.command);
    assert.match(c.icon ?? '', /^\$\([a-z-]+\)$/, `${c.command} has an icon`);
  }
});

test('titles of commands that prompt end in an ellipsis, the others do not', () => {
  const prompting = new Set([
    'pixels.addServer',
    'pixels.createSandbox',
    'pixels.createAndOpen',
    'pixels.destroy',
    'pixels.createCheckpoint',
    'pixels.restoreCheckpoint',
    'pixels.deleteCheckpoint',
    'pixels.clone',
    'pixels.filter',
    'pixels.openFolderInSandbox',
    'pixels.runCommand',
    'pixels.setupSsh',
    'pixels.setupJumpHost',
    'pixels.setEgressMode',
    'pixels.allowDomain',
    'pixels.denyDomain',
    'pixels.trustNewCertificate',
    'pixels.sandboxWindowActions',
    'pixels.buildBase',
    'pixels.rebuildBase',
    'pixels.deleteBase',
    'pixels.createFromBase',
    'pixels.startAgent',
    'pixels.stopSession',
    'pixels.addGitRemote',
    'pixels.compareWithSandbox',
    'pixels.connectExternalAgent',
  ]);
  for (const c of commands) {
    if (prompting.has(c.command))
      assert.ok(c.title.endsWith('…'), `${c.command}: "${c.title}" should end in …`);
    else
      assert.ok(
        !c.title.endsWith('…') && !c.title.endsWith('...'),
        `${c.command}: "${c.title}" does not prompt`,
      );
  }
});

test('every menu entry points at a contributed command or submenu; context menus are grouped', () => {
  const ids = new Set(commands.map((c) => c.command));
  const submenus = new Set(manifest.contributes.submenus.map((s) => s.id));
  for (const [menu, entries] of Object.entries(manifest.contributes.menus)) {
    for (const e of entries)
      assert.ok(
        e.command ? ids.has(e.command) : submenus.has(e.submenu ?? ''),
        `${menu}: ${e.command ?? e.submenu} is contributed`,
      );
  }
  for (const id of submenus) assert.ok(manifest.contributes.menus[id]?.length, `submenu ${id} has entries`);
  for (const e of manifest.contributes.menus['view/item/context']) {
    assert.match(
      e.group ?? '',
      /^(inline|1_general|2_lifecycle|3_checkpoints|4_configure|5_info|9_destructive)@\d+$/,
      `${e.command ?? e.submenu} group ${e.group}`,
    );
    assert.match(
      e.when ?? '',
      /viewItem =~ \/\^(server|sandbox|checkpoint|base|session)/,
      `${e.command ?? e.submenu} uses a contextValue regex`,
    );
  }
  // A running sandbox's menu: at most 15 top-level entries, in at least 5 groups (it was 19 in 3).
  const running = manifest.contributes.menus['view/item/context'].filter(
    (e) => !e.group?.startsWith('inline') && /\^sandbox/.test(e.when ?? '') && !/stopped/.test(e.when ?? ''),
  );
  assert.ok(running.length <= 15, `${running.length} entries`);
  assert.ok(new Set(running.map((e) => e.group?.split('@')[0])).size >= 5);
  const destructive = manifest.contributes.menus['view/item/context'].filter((e) =>
    e.group?.startsWith('9_'),
  );
  assert.deepEqual([...new Set(destructive.map((e) => e.command))].sort(), [
    'pixels.deleteBase',
    'pixels.deleteCheckpoint',
    'pixels.destroy',
    'pixels.removeServer',
    'pixels.stopSession',
  ]);
});

test('inline actions: Start/Stop, Checkpoint and Open in Sandbox', () => {
  const inline = manifest.contributes.menus['view/item/context'].filter((e) => e.group?.startsWith('inline'));
  const ids = inline.map((e) => e.command);
  for (const id of ['pixels.start', 'pixels.stop', 'pixels.createCheckpoint', 'pixels.openInSandbox'])
    assert.ok(ids.includes(id), id);
});

test('view title has Create, Filter and Refresh in the navigation group', () => {
  const nav = manifest.contributes.menus['view/title'].filter((e) => e.group?.startsWith('navigation'));
  const ids = nav.map((e) => e.command);
  for (const id of ['pixels.createSandbox', 'pixels.filter', 'pixels.refresh'])
    assert.ok(ids.includes(id), id);
});

test('welcome views cover no server, unreachable and no sandboxes', () => {
  const welcome = manifest.contributes.viewsWelcome;
  const by = (state: string) => welcome.find((w) => w.when.includes(`pixels.state == ${state}`));
  assert.match(by('noServers')!.contents, /\[Add Server…\]\(command:pixels\.addServer\)/);
  assert.match(by('unreachable')!.contents, /\[Retry\]\(command:pixels\.refresh\)/);
  assert.match(by('unreachable')!.contents, /\[Show Logs\]\(command:pixels\.showLogs\)/);
  assert.match(by('empty')!.contents, /\[Create Sandbox…\]\(command:pixels\.createSandbox\)/);
  assert.match(by('empty')!.contents, /\[Create Sandbox and Open…\]\(command:pixels\.createAndOpen\)/);
});

test('activation is lazy and settings are application scoped', () => {
  assert.ok(!manifest.activationEvents.includes('*'));
  assert.ok(!manifest.activationEvents.some((e) => e.startsWith('onStartupFinished')));
  // Remote windows only (the sandbox-window status item): a local window still activates with the view.
  assert.deepEqual(
    manifest.activationEvents.filter((e) => e !== 'onView:pixels.sandboxes'),
    ['onFileSystem:vscode-remote'],
  );
  assert.ok(manifest.activationEvents.includes('onView:pixels.sandboxes'));
  for (const [key, prop] of Object.entries(manifest.contributes.configuration.properties))
    assert.equal(prop.scope, 'application', key);
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, true);
});

test('icons and walkthrough media exist', () => {
  for (const c of manifest.contributes.viewsContainers.activitybar)
    assert.ok(existsSync(join(root, c.icon)), c.icon);
  for (const w of manifest.contributes.walkthroughs)
    for (const s of w.steps)
      if (s.media.markdown) assert.ok(existsSync(join(root, s.media.markdown)), s.media.markdown);
});
