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
