// Agent sessions as a user sees them, in a real browser against the Incus lab: a sandbox made from the palette,
// "Start Agent in Sandbox…" from its context menu (an agent from pixels.agents), the attached terminal with the
// agent's output, then the terminal closed: the session stays, running, under its sandbox in the tree.
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
  type WorkbenchSession,
} from './harness';

const prefix = `u${randomBytes(3).toString('hex')}`;
const name = `${prefix}-work`;
/** Looks like an agent's first screen; reads lines and answers them, as a REPL does. */
const STAND_IN = [
  'printf "\\033[1mEcho agent\\033[0m (lab stand-in for Claude Code) in %s\\n\\n" "$PWD"',
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
      'pixels.defaults.provision': false,
      'pixels.agents': [{ label: 'Echo agent (stand-in)', command: STAND_IN }],
      'workbench.colorTheme': 'Default Dark Modern',
    },
    // Without provisioning there is no pixel user: root, as in ui-everyday.
    env: { PIXELS_SSH_DIR: path.join(workDir, 'ssh'), PIXELS_SSH_USER: 'root' },
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
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'No provisioning' }).click();
    await row(new RegExp(`${name}.*10\\.77\\.`)).waitFor({ timeout: 120_000 });

    await wb.contextMenu(row(name), 'Agents and Work');
    const sub = page.locator('.context-view .monaco-menu').last();
    await sub.locator('.action-item', { hasText: 'Start Agent in Sandbox' }).click();
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
