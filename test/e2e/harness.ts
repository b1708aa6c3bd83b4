// The browser UI test harness in one import:
//   const server = await startCodeServer({ settings, env });   // code-server with dist/pixels-vscode.vsix installed
//   const wb = await openWorkbench(server);                     // headless Chromium on the workbench
//   await wb.openView('Pixels'); await wb.runCommand('Pixels: Refresh'); await wb.screenshot('tree');
//   await wb.close(); await server.stop();
// or against the demo (seeded simulator, extension pointed at it):
//   const demo = await startDemo(); const wb = await openWorkbench(demo.server, { folder: demo.folder }); ...
// `npm run test:e2e` packages the extension first, then runs test/e2e/**/*.test.ts with node:test.
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import {
  launchBrowser,
  screenshot,
  Workbench,
  workbenchUrl,
  type Browser,
  type BrowserOptions,
} from './browser';
import type { CodeServer } from './code-server';

export * from './browser';
export * from './code-server';
export * from './demo';

export interface OpenWorkbenchOptions extends BrowserOptions {
  /** Folder to open; an empty folder inside the server's work dir by default. */
  folder?: string;
}

export interface WorkbenchSession extends Workbench {
  readonly browser: Browser;
  readonly folder: string;
  /** Closes the browser (not the server). */
  close(): Promise<void>;
}

export async function openWorkbench(
  server: CodeServer,
  options: OpenWorkbenchOptions = {},
): Promise<WorkbenchSession> {
  const folder = options.folder ?? mkdtempSync(path.join(server.workDir, 'workspace-'));
  mkdirSync(folder, { recursive: true });
  const browser = await launchBrowser(options);
  const workbench = new Workbench(browser.page);
  try {
    await workbench.open(workbenchUrl(server.url, folder));
  } catch (error) {
    await screenshot(browser.page, 'failure-open-workbench').catch(() => {});
    await browser.close();
    throw error;
  }
  return Object.assign(workbench, { browser, folder, close: () => browser.close() });
}

/** Screenshot named after a failed step, for `catch` blocks in tests; never throws. */
export async function failureScreenshot(page: Page, name: string): Promise<void> {
  await screenshot(page, `failure-${name}`).catch(() => {});
}

/** Runs one step of a test; when it fails, a screenshot named after it is taken before the error goes on. */
export async function screenshotOnFailure<T>(page: Page, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    await failureScreenshot(page, name);
    throw error;
  }
}

/** Drags the side bar's edge `by` pixels wider, as people do for a tree with descriptions (the default cuts them). */
export async function widenSidebar(page: Page, by = 180): Promise<void> {
  const sidebar = await page.locator('.part.sidebar').boundingBox();
  if (!sidebar) return;
  const x = sidebar.x + sidebar.width + 2;
  await page.mouse.move(x, 400);
  await page.mouse.down();
  await page.mouse.move(x + by, 400, { steps: 5 });
  await page.mouse.up();
}

/**
 * User settings with the Incus lab as the one server and small hermetic sandboxes (1 CPU, 512 MiB, unrestricted,
 * nothing to download: the lab has no internet), in the dark theme the screenshots use; `extra` wins.
 */
export function labSettings(
  lab: { socket: string; image: string },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    'pixels.servers': [{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket }],
    'pixels.defaults.image': lab.image,
    'pixels.defaults.cpu': '1',
    'pixels.defaults.memoryMiB': 512,
    'pixels.defaults.egress': 'unrestricted',
    'pixels.provision.tools': [],
    'pixels.provision.packages': [],
    'workbench.colorTheme': 'Default Dark Modern',
    ...extra,
  };
}
