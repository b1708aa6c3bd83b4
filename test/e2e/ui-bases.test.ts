// Bases as a user sees them, in a real browser against the Incus lab: a base from the pixels config built with
// "Pixels: Build Base…" (progress, then "ready"), the Bases group with each base's status, and an agent sandbox's
// lifecycle countdown on its row. Screenshot: test-results/screenshots/bases.png (docs/images/bases.png).
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { IncusBackend } from '../../src/backends/incus/index';
import { labBackend, removeTestInstances } from '../integration/incus/helpers';
import type { Lab } from '../lab/lab';
import {
  failureScreenshot,
  labSettings,
  widenSidebar,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  type WorkbenchSession,
} from './harness';

const prefix = `x${randomBytes(3).toString('hex')}`;
const agentName = `${prefix}-agent`;
let lab: Lab;
let backend: IncusBackend;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;
let workDir: string;

before(async () => {
  ({ lab, backend } = await labBackend());
  workDir = mkdtempSync(path.join(tmpdir(), 'pixels-ui-bases-'));
  // The pixels config (code-server's XDG_CONFIG_HOME is <workDir>/xdg): one base of our own beside the built-ins.
  mkdirSync(path.join(workDir, 'xdg', 'pixels'), { recursive: true });
  writeFileSync(
    path.join(workDir, 'web.sh'),
    'set -eu\necho "installing the web toolchain"\nmkdir -p /opt/web\n',
  );
  writeFileSync(
    path.join(workDir, 'xdg', 'pixels', 'config.toml'),
    [
      '[mcp]',
      `base_prefix = "${prefix}-b-"`,
      '',
      '[mcp.bases.web]',
      `parent_image = "${lab.image}"`,
      `setup_script = "${path.join(workDir, 'web.sh')}"`,
      'description = "lab image + our web toolchain"',
      '',
    ].join('\n'),
  );
  // A sandbox an agent made (through the tools) an hour and a quarter ago, last active 48 minutes ago.
  await backend.create({ name: agentName, image: lab.image, cpu: '1', memoryMiB: 256, start: true });
  const storage = path.join(workDir, 'user-data', 'User', 'globalStorage', 'pixels-dev.pixels-vscode');
  mkdirSync(storage, { recursive: true });
  const now = Date.now();
  writeFileSync(
    path.join(storage, 'agent-sandboxes.json'),
    JSON.stringify({
      version: 1,
      servers: {
        lab: [
          { name: agentName, createdAt: now - 75 * 60_000, lastActivityAt: now - 48 * 60_000, by: 'agent' },
        ],
      },
    }),
  );
  server = await startCodeServer({
    workDir,
    settings: labSettings(lab),
    env: { PIXELS_SSH_DIR: path.join(workDir, 'ssh'), PIXELS_SSH_USER: 'root' },
  });
  wb = await openWorkbench(server, { viewport: { width: 1280, height: 800 } });
  page = wb.page;
});

after(async () => {
  await wb?.close();
  await server?.stop();
  backend?.dispose();
  if (lab) await removeTestInstances(lab, prefix);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const row = (label: string | RegExp) =>
  page.locator('.part.sidebar .monaco-list-row', { hasText: label }).first();

test('Build Base… from the palette; the Bases group shows each base; the agent sandbox counts down', async () => {
  try {
    await wb.openView('Pixels');
    await row('Incus lab').waitFor({ timeout: 30_000 });
    // A wider side bar, so the rows' descriptions show whole.
    await widenSidebar(page, 420);
    await row(agentName).waitFor({ timeout: 30_000 });
    await row(/by agent · stops in 1[12] min · destroyed in 23 h/).waitFor({ timeout: 15_000 });
    await wb.runCommand('Pixels: Build Base…');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'web' }).first().click();
    await page
      .locator('.notifications-toasts .notification-toast', { hasText: 'Base "web" is ready' })
      .waitFor({ timeout: 180_000 });
    await row('Bases').click();
    await row(/^web.*ready · built just now/).waitFor({ timeout: 15_000 });
    await row(/^dev.*not built/).waitFor();
    await page.mouse.move(1000, 400);
    await page.waitForTimeout(400);
    await wb.screenshot('bases');
  } catch (error) {
    await failureScreenshot(page, 'bases');
    throw error;
  }
});
