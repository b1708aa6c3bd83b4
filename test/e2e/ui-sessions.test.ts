// Agent sessions as a user sees them, in a real browser against the Incus lab: a sandbox made from the palette,
// "Start Agent in Sandbox…" from its context menu (an agent from pixels.agentCommands), the attached terminal with the
// agent's output, then the terminal closed: the session stays, running, under its sandbox in the tree; a second
// window (its own extension host) attaches to it from its tree and sees the agent's earlier output.
// The lab has no internet, so the agent is a stand-in script (labelled so), run exactly as a real agent would be.
// Screenshots: test-results/screenshots/{agent-session,sessions-tree}.png. Needs the lab.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { removeTestInstances } from '../integration/incus/helpers';
import { requireLab, type Lab } from '../lab/lab';
import {
  failureScreenshot,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  Workbench,
  workbenchUrl,
  type WorkbenchSession,
} from './harness';

const prefix = `u${randomBytes(3).toString('hex')}`;
const name = `${prefix}-work`;
/** Looks like an agent's first screen; reads lines and answers them, as a REPL does. */
const STAND_IN = [
  'printf "\\033[1mEcho agent\\033[0m\\n(lab stand-in for Claude Code)\\nin %s\\n\\n" "$PWD"',
  'while IFS= read -r -p "> " line; do printf "  you said: %s\\n" "$line"; done',
].join('; ');

let lab: Lab;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;
let workDir: string;

before(async () => {
  lab = await requireLab();
  workDir = mkdtempSync(path.join(tmpdir(), 'pixels-ui-sessions-'));
  server = await startCodeServer({
    settings: {
      'pixels.servers': [{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket }],
      'pixels.defaults.image': lab.image,
      'pixels.defaults.cpu': '1',
      'pixels.defaults.memoryMiB': 512,
      'pixels.defaults.egress': 'unrestricted',
      'pixels.defaults.provision': true,
      // Hermetic: the lab has no internet (its image has tmux), so nothing to download.
      'pixels.provision.tools': [],
      'pixels.provision.packages': [],
      'pixels.agentCommands': [{ label: 'Echo agent (stand-in)', command: STAND_IN }],
      'workbench.colorTheme': 'Default Dark Modern',
    },
    env: { PIXELS_SSH_DIR: path.join(workDir, 'ssh') },
  });
  wb = await openWorkbench(server, { viewport: { width: 1280, height: 800 } });
  page = wb.page;
});

after(async () => {
  await wb?.close();
  await server?.stop();
  if (lab) await removeTestInstances(lab, prefix);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const row = (label: string | RegExp) =>
  page.locator('.part.sidebar .monaco-list-row', { hasText: label }).first();

async function step<T>(shot: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    await failureScreenshot(page, shot);
    throw error;
  }
}

test('Start Agent in Sandbox: attached terminal, then the session in the tree after the terminal closed', async () => {
  await step('agent-session', async () => {
    await wb.openView('Pixels');
    const sidebar = await page.locator('.part.sidebar').boundingBox();
    if (sidebar) {
      // A wider sidebar, so the session rows are read whole.
      const x = sidebar.x + sidebar.width + 2;
      await page.mouse.move(x, 400);
      await page.mouse.down();
      await page.mouse.move(x + 100, 400, { steps: 5 });
      await page.mouse.up();
    }
    await page
      .locator('.part.sidebar')
      .getByText(/Incus lab|No sandboxes yet/)
      .first()
      .waitFor({ timeout: 30_000 });
    await wb.runCommand('Pixels: Create Sandbox…');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(name);
    await page.keyboard.press('Enter');
    for (const title of ['Image', 'CPU cores', 'Memory']) {
      await page.locator('.quick-input-widget', { hasText: title }).waitFor();
      await page.keyboard.press('Enter');
    }
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'unrestricted' }).click();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'No provisioning' }).waitFor();
    await page.keyboard.press('Enter'); // Provision (the default here)
    const deadline = Date.now() + 240_000;
    for (;;) {
      const text = await row(name)
        .innerText()
        .catch(() => '');
      if (/10\.77\./.test(text) && !/provisioning/.test(text)) break;
      if (Date.now() > deadline) throw new Error(`the sandbox did not get ready: ${text}`);
      await page.waitForTimeout(500);
    }
    // Other engineers' sandboxes share the lab: show this test's only.
    await wb.runCommand('Pixels: Filter…');
    await input.waitFor();
    await input.fill(prefix);
    await page.keyboard.press('Enter');

    // The submenu "Agents and Work", with the keyboard (as Workbench.contextMenu does for plain entries).
    // A right-click that lands while the tree re-renders is sometimes ignored: try again.
    const menu = page.locator('.context-view .monaco-menu').first();
    for (let attempt = 1; ; attempt++) {
      await row(name).click({ button: 'right' });
      const shown = await menu
        .waitFor({ timeout: 5_000 })
        .then(() => true)
        .catch(() => false);
      if (shown) break;
      if (attempt === 3) throw new Error('the context menu did not open');
    }
    const titles = await menu.locator('.action-item:not(.disabled)').allInnerTexts();
    const index = titles.findIndex((t) => t.includes('Agents and Work'));
    if (index === -1) throw new Error(`no "Agents and Work" in ${titles.join(', ')}`);
    for (let i = 0; i <= index; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    const sub = page.locator('.context-view .monaco-menu', { hasText: 'Start Agent in Sandbox' }).last();
    await sub.waitFor();
    await page.waitForTimeout(200);
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Echo agent (stand-in)' }).click();
    await page.locator('.quick-input-widget', { hasText: 'Session name' }).waitFor({ timeout: 60_000 });
    await page.keyboard.press('Enter'); // the suggested name: "echo"
    await page.locator('.quick-input-widget', { hasText: 'Working folder' }).waitFor();
    await page.keyboard.press('Enter'); // ~
    await page.locator('.xterm-rows', { hasText: 'Echo agent' }).first().waitFor({ timeout: 60_000 });
    await page.locator('.terminal-wrapper .xterm, .terminal .xterm').first().click();
    await page.keyboard.type('fix the failing test in src/\n', { delay: 15 });
    await page
      .locator('.xterm-rows', { hasText: 'you said: fix the failing test' })
      .first()
      .waitFor({ timeout: 30_000 });
    await row(/^echo/).waitFor({ timeout: 30_000 });
    await wb.runCommand('Notifications: Clear All Notifications');
    await page.mouse.move(1000, 300);
    await page.waitForTimeout(300);
    await wb.screenshot('agent-session');
  });
  await step('sessions-tree', async () => {
    // Close the terminal (trash icon): it only detaches; the row stays "running".
    await wb.runCommand('Terminal: Kill the Active Terminal Instance');
    await page
      .locator('.xterm-rows', { hasText: 'Echo agent' })
      .first()
      .waitFor({ state: 'detached', timeout: 30_000 });
    await wb.runCommand('Pixels: Refresh');
    await row(/^echo.*running · Echo agent \(stand-in\) · started/).waitFor({ timeout: 30_000 });
    await row(/^echo/).hover();
    await page.waitForTimeout(800);
    await wb.screenshot('sessions-tree');
  });
});

test('another window attaches to the same session and finds the agent as it was', async () => {
  await step('second-window', async () => {
    // A second window of the same browser (its own extension host; the editor's global state is shared, as
    // between two windows of one VS Code).
    const p2 = await wb.browser.context.newPage();
    const other = new Workbench(p2);
    try {
      await other.open(workbenchUrl(server.url, wb.folder));
      await other.openView('Pixels');
      const session = p2.locator('.part.sidebar .monaco-list-row', { hasText: /^echo/ }).first();
      await session.waitFor({ timeout: 60_000 });
      await session.click();
      await p2
        .locator('.xterm-rows', { hasText: 'you said: fix the failing test' })
        .first()
        .waitFor({ timeout: 60_000 });
    } finally {
      await p2.close();
    }
  });
});
