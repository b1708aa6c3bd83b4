// Headless Debian Chromium driven by playwright-core, and a small vocabulary for the VS Code workbench
// (open a view, run a palette command, take a screenshot). Selectors follow ../shared/docs/vscode-harness.md.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { harness } from '../../scripts/harness-env.mjs';

export const SCREENSHOT_DIR = path.join(harness.repoRoot, 'test-results', 'screenshots');

/** Offline-friendly flags; the profile directory is given to launchPersistentContext, never as a flag. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export interface BrowserOptions {
  /** Keep the profile (e.g. to test that secrets survive a reload); a fresh temporary one by default. */
  profileDir?: string;
  viewport?: { width: number; height: number };
}

export interface Browser {
  readonly context: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

export async function launchBrowser(options: BrowserOptions = {}): Promise<Browser> {
  const ownProfile = !options.profileDir;
  const profileDir = options.profileDir ?? mkdtempSync(path.join(tmpdir(), 'pixels-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: harness.chromium,
    headless: true,
    viewport: options.viewport ?? { width: 1400, height: 850 },
    args: CHROMIUM_ARGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      if (ownProfile) rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

/** URL of the workbench for a folder, with an optional `payload` (only read with the smoke-test driver on). */
export function workbenchUrl(serverUrl: string, folder: string, payload?: [string, string][]): string {
  let url = `${serverUrl}/?folder=${encodeURIComponent(folder)}`;
  if (payload) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  return url;
}

/** A workbench page and the things UI tests do with it. */
export class Workbench {
  constructor(readonly page: Page) {}

  /** Loads the workbench and waits until its parts are there (about 5-10 s on 2 cores). */
  async open(url: string, timeoutMs = 90_000): Promise<void> {
    await this.page.goto(url);
    await this.page.locator('.monaco-workbench').waitFor({ timeout: timeoutMs });
    await this.page.locator('.activitybar, .part.activitybar').first().waitFor({ timeout: timeoutMs });
    await this.page.locator('.part.statusbar').waitFor({ timeout: timeoutMs });
  }

  /** Clicks the activity-bar entry whose label starts with `title` and waits for its side bar pane. */
  async openView(title: string, timeoutMs = 30_000): Promise<void> {
    const item = this.page.locator(`.activitybar [aria-label^="${title}"]`).first();
    await item.waitFor({ timeout: timeoutMs });
    const checked = await item.getAttribute('aria-checked');
    if (checked !== 'true') await item.click();
    // hasText is case-insensitive: the title bar shows the container's title in capitals.
    await this.page
      .locator('.part.sidebar .composite.title', { hasText: title })
      .first()
      .waitFor({ timeout: timeoutMs });
  }

  /** Runs a command from the palette by its full title ("Pixels: Refresh"). */
  async runCommand(title: string, timeoutMs = 30_000): Promise<void> {
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget input');
    await input.waitFor({ timeout: timeoutMs });
    await input.fill(`>${title}`);
    const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ timeout: timeoutMs });
    await this.page.keyboard.press('Enter');
  }

  /** The first row of the side bar's tree (or list) whose text contains `text`. */
  treeRow(text: string): Locator {
    return this.page.locator('.part.sidebar .monaco-list-row', { hasText: text }).first();
  }

  /**
   * Right-clicks `target` and picks the context-menu entry whose title contains `item`, with the keyboard: a mouse
   * click that lands soon after the menu opened (or while the tree re-renders) is sometimes ignored by the workbench.
   */
  async contextMenu(target: Locator, item: string, timeoutMs = 10_000): Promise<void> {
    await target.click({ button: 'right' });
    const menu = this.page.locator('.context-view .monaco-menu');
    await menu.waitFor({ timeout: timeoutMs });
    // Arrow keys move over the enabled entries only (separators are disabled entries).
    const titles = await menu.locator('.action-item:not(.disabled)').allInnerTexts();
    const index = titles.findIndex((title) => title.includes(item));
    if (index === -1) {
      await this.page.keyboard.press('Escape');
      throw new Error(`context menu has no "${item}": ${titles.map((t) => `"${t}"`).join(', ')}`);
    }
    for (let i = 0; i <= index; i++) await this.page.keyboard.press('ArrowDown');
    const focused = await menu.locator(':focus').innerText({ timeout: timeoutMs });
    if (!focused.includes(item)) throw new Error(`context menu: focus is on "${focused}", not "${item}"`);
    await this.page.keyboard.press('Enter');
    await menu.waitFor({ state: 'detached', timeout: timeoutMs });
  }

  /** The modal dialog once it is shown (its text: `innerText()`, its buttons: `.monaco-button`). */
  async dialog(timeoutMs = 10_000): Promise<Locator> {
    const dialog = this.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: timeoutMs });
    return dialog;
  }

  /** Saves test-results/screenshots/<name>.png and returns its path. */
  async screenshot(name: string): Promise<string> {
    return screenshot(this.page, name);
  }
}

export async function screenshot(page: Page, name: string): Promise<string> {
  if (!/^[\w.-]+$/.test(name))
    throw new Error(`screenshot name "${name}": use letters, digits, '.', '-', '_'`);
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
