// The product as a user sees it, in a real browser against the demo setup (code-server with the packaged .vsix,
// the seeded TrueNAS simulator, PIXELS_DEMO_API_KEY): the tree with the seeded sandboxes and checkpoints, the
// create flow through the quick input, destroy through the modal, and the welcome view.
// Screenshots: test-results/screenshots/{tree,create-flow,create-flow-network,confirm-modal,welcome}.png
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startSimulator, type SimServer } from '../sim/index';
import {
  screenshotOnFailure,
  widenSidebar,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  type WorkbenchSession,
} from './harness';

const API_KEY = '1-' + 'd'.repeat(64);
let sim: SimServer;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;
let sshDir: string;
let simClosed = false;

before(async () => {
  sshDir = mkdtempSync(path.join(tmpdir(), 'pixels-ui-ssh-'));
  sim = await startSimulator({ version: '25.10', apiKey: API_KEY, seed: true, jobDurationMs: 400 });
  server = await startCodeServer({
    settings: {
      'pixels.servers': [
        {
          id: 'sim',
          kind: 'truenas',
          host: '127.0.0.1',
          port: sim.port,
          secure: false,
          username: 'truenas_admin',
          label: 'Simulator',
        },
      ],
      'workbench.colorTheme': 'Default Dark Modern',
    },
    env: { PIXELS_DEMO_API_KEY: API_KEY, PIXELS_SSH_DIR: sshDir },
  });
  wb = await openWorkbench(server, { viewport: { width: 1280, height: 800 } });
  page = wb.page;
});

after(async () => {
  await wb?.close();
  await server?.stop();
  if (!simClosed) await sim?.close();
  rmSync(sshDir, { recursive: true, force: true });
});

const tree = () =>
  page.locator('.part.sidebar .monaco-list[aria-label="Sandboxes"], .part.sidebar .monaco-list').first();
const row = (label: string) => wb.treeRow(label);

const step = <T>(shot: string, fn: () => Promise<T>): Promise<T> => screenshotOnFailure(page, shot, fn);

test('the Pixels view shows the seeded sandboxes and their checkpoints', async () => {
  await step('tree', async () => {
    await wb.openView('Pixels');
    await tree().waitFor({ timeout: 30_000 });
    // A wider side bar, as people use it for a tree like this one (the default cuts the descriptions).
    await widenSidebar(page);
    for (const name of ['web', 'agent', 'old']) await row(name).waitFor({ timeout: 30_000 });
    assert.match(await row('old').innerText(), /stopped/);
    // Sandboxes with checkpoints open expanded (as in the README): their checkpoints, newest first, with age
    const checkpoints = page.locator('.part.sidebar .monaco-list-row', { hasText: /^px-\d{8}-\d{6}/ });
    await checkpoints.first().waitFor({ timeout: 15_000 });
    assert.ok((await checkpoints.count()) >= 2);
    assert.match(await checkpoints.first().innerText(), /ago/);
    assert.equal(await row('web').getAttribute('aria-expanded'), 'true');
    await page.locator('.part.editor').click({ position: { x: 400, y: 300 } }); // tree unfocused, as when working
    await page.mouse.move(1000, 700); // no hover highlight in the picture
    await wb.screenshot('tree');
  });
});

test('Create Sandbox… through the quick input, with validation as you type', async () => {
  await step('create-flow', async () => {
    await wb.runCommand('Pixels: Create Sandbox…');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill('Bad Name');
    const message = page.locator('.quick-input-widget .quick-input-message', {
      hasText: 'may only contain letters, digits and hyphens',
    });
    await message.waitFor({ timeout: 10_000 });
    // The flow says where the sandbox will land: a stock NAS (DHCP) keeps it on the automatic NAT'd bridge.
    const title = page.locator('.quick-input-widget .quick-input-title');
    await title.filter({ hasText: 'Network: the automatic bridge incusbr0' }).waitFor({ timeout: 10_000 });
    assert.match(await title.innerText(), /NAT'd.*not reachable from this editor directly/);
    await page.waitForTimeout(400); // the quick input fades in
    await wb.screenshot('create-flow');
    await wb.screenshot('create-flow-network');
    await input.fill('ui-box');
    await page.keyboard.press('Enter'); // name
    for (const expected of ['Image', 'CPU', 'Memory']) {
      await page.locator('.quick-input-widget', { hasText: expected }).waitFor();
      await page.keyboard.press('Enter'); // keep the default
    }
    // egress: agent is the default, first and preselected; the simulator runs no exec or sshd to enforce it.
    await page.locator('.quick-input-list .monaco-list-row', { hasText: '(default)' }).waitFor();
    assert.match(
      (await page.locator('.quick-input-list .monaco-list-row').first().textContent()) ?? '',
      /^agent.*\(default\)/,
    );
    // then unrestricted, so that "No provisioning" is possible on TrueNAS (the rules would go in over SSH)
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'unrestricted' }).click();
    // The in-memory simulator runs no sshd, so this sandbox is made without provisioning (its own suite covers that).
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'No provisioning' }).click();
    // The long work runs in a progress notification that shows the step being done.
    const toast = page.locator('.notifications-toasts .notification-toast', {
      hasText: 'Creating sandbox "ui-box"',
    });
    await toast.waitFor({ timeout: 15_000 });
    await page.waitForTimeout(250); // the toast slides in
    await wb.screenshot('create-progress');
    await row('ui-box').waitFor({ timeout: 60_000 });
    assert.ok((await sim.engine.listInstances()).some((i) => i.name === 'px-ui-box'));
  });
});

test('Destroy… asks in a modal that names the sandbox and its checkpoints, then removes it', async () => {
  await step('confirm-modal', async () => {
    // Let the refresh that follows the create (server events, debounced) land before opening the menu.
    await page.waitForTimeout(1500);
    await wb.contextMenu(row('ui-box'), 'Destroy Sandbox…');
    const dialog = await wb.dialog();
    const text = await dialog.innerText();
    assert.match(text, /Destroy sandbox "ui-box"\?/);
    assert.match(text, /no checkpoints|checkpoint/);
    await page.waitForTimeout(300); // the dialog fades in
    // The safe choice has the focus: Enter keeps the sandbox.
    assert.equal(await dialog.locator('.monaco-button:focus').innerText(), 'Keep "ui-box"');
    await wb.screenshot('confirm-modal');
    await dialog.locator('.monaco-button', { hasText: 'Destroy' }).first().click();
    await row('ui-box').waitFor({ state: 'detached', timeout: 60_000 });
    assert.ok(!(await sim.engine.listInstances()).some((i) => i.name === 'px-ui-box'));
  });
});

test('Restore Checkpoint… names the newer checkpoints it would destroy; Cancel changes nothing', async () => {
  await step('restore-modal', async () => {
    const checkpoints = page.locator('.part.sidebar .monaco-list-row', { hasText: /^px-\d{8}-\d{6}/ });
    const older = checkpoints.nth(1); // web's older checkpoint (rows are newest first)
    const newerLabel = /px-\d{8}-\d{6}/.exec(await checkpoints.nth(0).innerText())?.[0] ?? '?';
    await wb.contextMenu(older, 'Restore Checkpoint…');
    const dialog = await wb.dialog();
    const text = await dialog.innerText();
    assert.match(text, /Restore "web" to checkpoint/);
    assert.ok(text.includes(newerLabel), `the dialog names the newer checkpoint ${newerLabel}: ${text}`);
    await page.waitForTimeout(300);
    assert.equal(await dialog.locator('.monaco-button:focus').innerText(), 'Keep Current State');
    await wb.screenshot('restore-modal');
    const snapshotsBefore = (await sim.engine.listSnapshots()).length;
    await dialog.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal((await sim.engine.listSnapshots()).length, snapshotsBefore);
  });
});

test('server down: the view says so, with Retry and Show Logs, and the reason in a notification', async () => {
  await step('unreachable', async () => {
    await sim.close();
    simClosed = true;
    await wb.runCommand('Pixels: Refresh');
    const welcome = page.locator('.part.sidebar .welcome-view-content', { hasText: 'could not be reached' });
    await welcome.waitFor({ timeout: 30_000 });
    await welcome.locator('.monaco-button', { hasText: 'Retry' }).waitFor();
    await welcome.locator('.monaco-button', { hasText: 'Show Logs' }).waitFor();
    // (not the earlier "created" toast, which names the server too and offers Open Terminal)
    await page
      .locator('.notifications-toasts .notification-toast', { hasText: 'Simulator' })
      .filter({ hasNotText: 'Open Terminal' })
      .waitFor({ timeout: 10_000 });
    await page.mouse.move(1000, 400);
    await page.waitForTimeout(300);
    await wb.screenshot('unreachable');
  });
});

test('with no server, the welcome view offers "Add Server…"', async () => {
  await step('welcome', async () => {
    await wb.runCommand('Pixels: Remove Server');
    const welcome = page.locator('.part.sidebar .welcome-view-content', {
      hasText: 'No Pixels server is configured',
    });
    await welcome.waitFor({ timeout: 20_000 });
    await welcome.locator('.monaco-button', { hasText: 'Add Server…' }).waitFor();
    await page.mouse.move(900, 600);
    await wb.screenshot('welcome');
  });
});
