// Provisioning as a user sees it, in a real browser: code-server with the packaged .vsix pointed at the Incus
// lab, Create Sandbox… through the quick input with provisioning on (fake installers served from a listener on
// the lab bridge, a setup script slow enough to be seen), the progress notification naming the current step and
// the step rows under the sandbox. Screenshot: test-results/screenshots/provisioning.png. Needs the lab.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { FAKE_MISE_INSTALLER } from '../integration/guest/fake-mise';
import { NET, startInternet, type Internet } from '../integration/guest/internet';
import { removeTestInstances } from '../integration/incus/helpers';
import { requireLab, type Lab } from '../lab/lab';
import {
  failureScreenshot,
  labSettings,
  widenSidebar,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  type WorkbenchSession,
} from './harness';

const prefix = `u${randomBytes(3).toString('hex')}`;
const name = `${prefix}-ui`;
let lab: Lab;
let net: Internet;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;
let workDir: string;

before(async () => {
  lab = await requireLab();
  net = await startInternet(lab.bridge, lab.bridgeIpv4, lab.bridgeIpv6);
  const base = `http://${NET.allowedV4}:${net.port}`;
  net.route('/mise-install.sh', FAKE_MISE_INSTALLER);
  for (const p of ['/node/index.json', '/npm/@openai/codex']) net.route(p, '{}');
  workDir = mkdtempSync(path.join(tmpdir(), 'pixels-ui-guest-'));
  const setup = path.join(workDir, 'setup.sh');
  writeFileSync(setup, 'echo "setting up the workspace"\nsleep 8\necho done\n');
  server = await startCodeServer({
    settings: labSettings(lab, {
      'pixels.defaults.provision': true,
      // Installers from the fake internet on the lab bridge.
      'pixels.provision.tools': ['node@lts', 'npm:@openai/codex'],
      'pixels.provision.miseInstallerUrl': `${base}/mise-install.sh`,
      'pixels.provision.npmRegistry': `${base}/npm`,
      'pixels.provision.nodeMirror': `${base}/node`,
      'pixels.provision.setupScript': setup,
    }),
    env: { PIXELS_SSH_DIR: path.join(workDir, 'ssh'), PIXELS_SSH_USER: 'root' },
  });
  wb = await openWorkbench(server, { viewport: { width: 1280, height: 800 } });
  page = wb.page;
});

after(async () => {
  await wb?.close();
  await server?.stop();
  if (lab) await removeTestInstances(lab, prefix);
  await net?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const row = (label: string | RegExp) =>
  page.locator('.part.sidebar .monaco-list-row', { hasText: label }).first();

test('Create Sandbox… with provisioning: the notification names the step, step rows under the sandbox', async () => {
  try {
    await wb.openView('Pixels');
    // The lab may hold other sandboxes (the server row) or none (the "No sandboxes yet" welcome).
    await page
      .locator('.part.sidebar')
      .getByText(/Incus lab|No sandboxes yet/)
      .first()
      .waitFor({ timeout: 30_000 });
    await widenSidebar(page);
    await wb.runCommand('Pixels: Create Sandbox…');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(name);
    await page.keyboard.press('Enter');
    for (const expected of ['Image', 'CPU', 'Memory']) {
      await page.locator('.quick-input-widget', { hasText: expected }).waitFor();
      await page.keyboard.press('Enter');
    }
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'unrestricted' }).waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'No provisioning' }).waitFor();
    await page.keyboard.press('Enter'); // Provision (the default here)
    // The setup script sleeps, so the notification and the rows show it running.
    const toast = page.locator('.notifications-toasts .notification-toast', {
      hasText: `Provisioning ${name}`,
    });
    await toast.filter({ hasText: 'Run setup script (7/8)' }).waitFor({ timeout: 120_000 });
    // The rows follow the notification within a moment (the tree re-renders on each step change).
    await row(/Run setup script\s*running · 7\/8/).waitFor({ timeout: 10_000 });
    await row(/Install mise\s*done/).waitFor({ timeout: 10_000 });
    assert.match(await row(name).innerText(), /provisioning/);
    await page.mouse.move(1000, 700);
    await page.waitForTimeout(300);
    await wb.screenshot('provisioning');
    // Done: the step rows go and the row no longer says "provisioning".
    await row('Run setup script').waitFor({ state: 'detached', timeout: 60_000 });
    // The row re-renders on the tree's next update (the end of the run is one more event): wait for it, bounded.
    await page
      .locator('.part.sidebar .monaco-list-row', { hasText: name })
      .filter({ hasText: 'provisioning' })
      .waitFor({ state: 'detached', timeout: 10_000 });
    assert.doesNotMatch(await row(name).innerText(), /provisioning/);
  } catch (error) {
    await failureScreenshot(page, 'provisioning');
    throw error;
  }
});
