// Everyday use as a user sees it, in a real browser against the Incus lab: "Create Sandbox and Open…" from the
// palette (steps, provisioning with progress, then "Open it how?"), a terminal in the new sandbox next to the tree,
// the status bar item of a sandbox window with its actions, and the details view with resource use.
// The window's Remote-SSH authority cannot be real in code-server, so PIXELS_WINDOW_AUTHORITY names the sandbox
// this window is "connected" to; everything else is the packaged extension against real containers.
// Screenshots: test-results/screenshots/{create-and-open,sandbox-terminal,status-item,details}.png. Needs the lab.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { removeTestInstances } from '../integration/incus/helpers';
import { requireLab, type Lab } from '../lab/lab';
import {
  screenshotOnFailure,
  labSettings,
  widenSidebar,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  type WorkbenchSession,
} from './harness';

const prefix = `x${randomBytes(3).toString('hex')}`;
const name = `${prefix}-agent`;
let lab: Lab;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;
let workDir: string;

before(async () => {
  lab = await requireLab();
  workDir = mkdtempSync(path.join(tmpdir(), 'pixels-ui-everyday-'));
  server = await startCodeServer({
    settings: labSettings(lab, { 'pixels.defaults.provision': true }),
    env: {
      PIXELS_SSH_DIR: path.join(workDir, 'ssh'),
      PIXELS_SSH_USER: 'root',
      PIXELS_WINDOW_AUTHORITY: `ssh-remote+px-${name}.lab`,
    },
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
const statusItem = () => page.locator('.part.statusbar .statusbar-item', { hasText: name }).first();

const step = <T>(shot: string, fn: () => Promise<T>): Promise<T> => screenshotOnFailure(page, shot, fn);

test('Create Sandbox and Open…: steps, provisioning, then a terminal in the new sandbox', async () => {
  await step('create-and-open', async () => {
    await wb.openView('Pixels');
    await page
      .locator('.part.sidebar')
      .getByText(/Incus lab|No sandboxes yet/)
      .first()
      .waitFor({ timeout: 30_000 });
    await widenSidebar(page);
    await wb.runCommand('Pixels: Create Sandbox and Open…');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(name.toUpperCase().slice(0, 3) + name.slice(3));
    await input.fill(name);
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget', { hasText: 'Image' }).waitFor();
    await page.keyboard.press('Enter');
    // CPU beyond the host is refused while typing, with the host's number.
    await page.locator('.quick-input-widget', { hasText: 'CPU cores' }).waitFor();
    await input.fill('999');
    await page
      .locator('.quick-input-widget .quick-input-message', { hasText: /The server has \d+ CPU core/ })
      .waitFor({ timeout: 10_000 });
    await input.fill('1');
    await page.keyboard.press('Enter');
    // Memory as the tree shows it.
    await page.locator('.quick-input-widget', { hasText: 'Memory' }).waitFor();
    assert.equal(await input.inputValue(), '512 MiB');
    await input.fill('1G');
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'unrestricted' }).click();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'No provisioning' }).waitFor();
    await page.keyboard.press('Enter'); // Provision (the default here)
    await page
      .locator('.notifications-toasts .notification-toast', { hasText: `Provisioning ${name}` })
      .waitFor({ timeout: 120_000 });
    // Done: "Open it how?" (the placeholder; the title names the sandbox)
    const how = page.locator('.quick-input-widget', { hasText: `Sandbox "${name}" is ready` });
    await how.waitFor({ timeout: 240_000 });
    await row(name).waitFor();
    await page.waitForTimeout(400);
    await wb.screenshot('create-and-open');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Open Terminal' }).click();
    const terminal = page.locator('.terminal-wrapper .xterm, .terminal .xterm').first();
    await terminal.waitFor({ timeout: 60_000 });
    // Type only once the shell in the sandbox is there (its prompt names the host): keys typed while the SSH
    // session still opens go nowhere.
    await page
      .locator('.xterm-rows', { hasText: `@px-${name}` })
      .first()
      .waitFor({ timeout: 60_000 });
    await terminal.click();
    await page.keyboard.type('echo "in $(hostname): $((6 * 7))" && free -m | head -2\n', { delay: 20 });
    await page
      .locator('.xterm-rows', { hasText: `in px-${name}: 42` })
      .first()
      .waitFor({ timeout: 30_000 });
    await page.mouse.move(1000, 300);
    await page.waitForTimeout(300);
    await wb.screenshot('sandbox-terminal');
  });
});

test('the status bar item of a sandbox window: name, egress, checkpoint age; its actions', async () => {
  await step('status-item', async () => {
    await statusItem().waitFor({ timeout: 30_000 });
    assert.match(await statusItem().innerText(), new RegExp(`${name} · egress unrestricted · no checkpoint`));
    await statusItem().click();
    const pick = page.locator('.quick-input-widget', { hasText: `Sandbox "${name}"` });
    await pick.waitFor();
    for (const action of ['Checkpoint Now', 'Restore…', 'Show Egress Policy'])
      await page.locator('.quick-input-list .monaco-list-row', { hasText: action }).waitFor();
    await page.waitForTimeout(300);
    await wb.screenshot('status-item');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Checkpoint Now' }).click();
    await page
      .locator('.part.statusbar .statusbar-item', {
        hasText: `${name} · egress unrestricted · checkpoint just now`,
      })
      .waitFor({ timeout: 30_000 });
  });
});

test('Show Details: limits, egress, checkpoints summed, CPU/memory/disk use', async () => {
  await step('details', async () => {
    await wb.contextMenu(row(name), 'Show Details');
    const frame = page.frameLocator('iframe.webview').frameLocator('iframe');
    await frame.locator('th', { hasText: 'Memory use' }).waitFor({ timeout: 30_000 });
    const text = await frame.locator('table').innerText();
    assert.match(text, /Memory limit\s+1 GiB/);
    assert.match(text, /Checkpoints\s+1 · /);
    assert.match(text, /Memory use\s+[\d.]+ (KiB|MiB|GiB) of 1 GiB/);
    assert.match(text, /Disk use\s+\S+/);
    // The second sample (a few seconds later) turns CPU time into a share of a core.
    await frame.locator('td', { hasText: '% of a core' }).waitFor({ timeout: 15_000 });
    await page.mouse.move(1000, 700);
    await wb.screenshot('details');
  });
});
