// Agent sessions as a user sees them, in a real browser against the Incus lab. "Start Agent in Sandbox…" from the
// palette runs a stand-in agent (the lab has no internet) in a tmux session: its terminal shows the agent, the row
// under the sandbox says running and when it started. Closing the terminal only detaches (row and `tmux ls` inside
// the container); closing the whole window with the session attached does too. A second window (a new page: its
// own extension host) re-attaches from its tree and sees what the agent printed while nobody watched; when the
// agent exits, that window's row turns "exited (code 3)" by itself. Every wait is on a state of the page or of the
// container, never a fixed sleep. Screenshots: test-results/screenshots/{agent-session,sessions-tree}.png
// (docs/images). The sandbox is made beforehand with the workflow layer (SSH access, no provisioning: the create
// flow has its own browser tests), while code-server starts. Needs the lab.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import type { IncusBackend } from '../../src/backends/incus/index';
import { backendExecutor, type Executor } from '../../src/guest/index';
import { setUpSshAccess } from '../../src/workflows/sshSetup';
import { labBackend, removeTestInstances } from '../integration/incus/helpers';
import { workflowHarness, type Harness } from '../integration/workflows/context';
import type { Lab } from '../lab/lab';
import {
  screenshotOnFailure,
  widenSidebar,
  launchBrowser,
  startCodeServer,
  type Browser,
  type CodeServer,
  Workbench,
  workbenchUrl,
} from './harness';

const prefix = `u${randomBytes(3).toString('hex')}`;
const name = `${prefix}-work`;
const NOTE = '/tmp/agent-note';
const STOP = '/tmp/agent-stop';
/**
 * Looks like an agent's first screen and answers typed lines; prints what the test leaves in NOTE (output made
 * while no terminal is attached) and ends with code 3 once STOP exists.
 */
const STAND_IN = [
  'printf "\\033[1mEcho agent\\033[0m (lab stand-in for Claude Code) in %s\\n\\n> " "$PWD"',
  `until [ -e ${STOP} ]; do`,
  '  if IFS= read -r -t 0.3 line; then printf "  you said: %s\\n> " "$line"; fi',
  `  if [ -e ${NOTE} ]; then printf "\\r  note: %s\\n> " "$(cat ${NOTE})"; rm -f ${NOTE}; fi`,
  'done',
  'printf "\\ragent finished\\n"; exit 3',
].join('\n');

let lab: Lab;
let backend: IncusBackend;
let h: Harness;
let root: Executor;
let server: CodeServer;
let browser: Browser;

before(async () => {
  ({ lab, backend } = await labBackend());
  h = workflowHarness(backend, lab.socket);
  const sandbox = (async () => {
    await backend.create({ name, image: lab.image, cpu: '1', memoryMiB: 256, start: false });
    await setUpSshAccess(h.ctx, name, false);
    await h.ssh.readyTarget(backend, 'lab', name);
  })();
  const editor = (async () => {
    server = await startCodeServer({
      settings: {
        'pixels.servers': [{ id: 'lab', kind: 'incus', label: 'Incus lab', socketPath: lab.socket }],
        'pixels.ssh.identityFile': join(h.sshDir, 'id_test'),
        'pixels.agentCommands': [{ label: 'Echo agent (stand-in)', command: STAND_IN }],
        'workbench.colorTheme': 'Default Dark Modern',
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
      },
      // The key and pinned host key the workflow layer used; the sandbox has no `pixel` user (not provisioned).
      env: { PIXELS_SSH_DIR: h.sshDir, PIXELS_SSH_USER: 'root' },
    });
    browser = await launchBrowser({ viewport: { width: 1280, height: 800 } });
  })();
  await Promise.all([sandbox, editor]);
  root = backendExecutor(backend, name);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (lab) await removeTestInstances(lab, prefix);
  backend?.dispose();
  h?.dispose();
});

/** `tmux ls` inside the container (through Incus, not through the extension): "name attached dead status". */
async function tmuxList(): Promise<string> {
  const r = await root(
    "tmux -L pixels ls -F '#{session_name} #{session_attached} #{pane_dead} #{@pixels_exit}' 2>&1 || true",
    { timeoutMs: 20_000 },
  );
  return r.output.trim();
}

async function paneText(): Promise<string> {
  return (await root('tmux -L pixels capture-pane -p -t =echo: 2>&1 || true', { timeoutMs: 20_000 })).output;
}

/** Polls the container until `check` holds (bounded); the browser side waits with locators instead. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A window on the workbench with the Pixels view open, this test's sandbox only, and a wider side bar. */
async function openWindow(page: Page): Promise<Workbench> {
  const wb = new Workbench(page);
  const folder = join(server.workDir, 'workspace');
  mkdirSync(folder, { recursive: true });
  await wb.open(workbenchUrl(server.url, folder));
  await wb.openView('Pixels');
  await page.locator('.part.sidebar').getByText('Incus lab').first().waitFor({ timeout: 30_000 });
  // Other engineers' sandboxes share the lab: show this test's only.
  await wb.runCommand('Pixels: Filter…');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor();
  await input.fill(prefix);
  await page.keyboard.press('Enter');
  await page.locator('.part.sidebar').getByText(`Filter: "${prefix}"`).waitFor();
  await widenSidebar(page, 220);
  return wb;
}

const sessionRow = (page: Page, state: RegExp | string = ''): Locator =>
  page
    .locator('.part.sidebar .monaco-list-row', { hasText: 'Echo agent (stand-in)' })
    .filter({ hasText: state })
    .first();
const terminalText = (page: Page, text: string | RegExp): Locator =>
  page.locator('.xterm-rows', { hasText: text }).first();

const step = screenshotOnFailure;

test('an agent session: started from the palette, detached by closing its terminal and its window, re-attached from another window, exited', async () => {
  const page = browser.page;
  let second: Page | undefined;
  await page.locator('body').waitFor();
  await step(page, 'agent-session', async () => {
    const wb = await openWindow(page);
    await wb.page.locator('.part.sidebar .monaco-list-row', { hasText: name }).first().waitFor();
    await wb.runCommand('Pixels: Start Agent in Sandbox…');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Echo agent (stand-in)' }).click();
    // Which sandbox: the running ones of the lab (others' too), narrowed by typing.
    const input = page.locator('.quick-input-widget input');
    await page
      .locator('.quick-input-widget input[placeholder="Start the agent in which sandbox?"]')
      .waitFor();
    await input.fill(name);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget', { hasText: 'Session name' }).waitFor({ timeout: 30_000 });
    assert.equal(await input.inputValue(), 'echo', 'the suggested session name');
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget', { hasText: 'Working folder' }).waitFor();
    await page.keyboard.press('Enter'); // ~
    await terminalText(page, 'Echo agent').waitFor({ timeout: 30_000 });
    await page.locator('.xterm', { hasText: 'Echo agent' }).first().click();
    await page.keyboard.type('fix the failing test in src/\n', { delay: 15 });
    await terminalText(page, 'you said: fix the failing test').waitFor({ timeout: 20_000 });
    // The row under the sandbox: running, when it started, one terminal attached.
    await sessionRow(page, /running · Echo agent \(stand-in\) · started just now · 1 attached/).waitFor({
      timeout: 20_000,
    });
    await wb.runCommand('Notifications: Clear All Notifications');
    await page.mouse.move(1000, 300);
    await page.locator('.notifications-toasts .notification-toast').first().waitFor({ state: 'detached' });
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
    await wb.screenshot('agent-session');
  });

  await step(page, 'sessions-tree', async () => {
    // Closing the terminal detaches: the row drops "attached", the session runs on inside the container.
    await new Workbench(page).runCommand('Terminal: Kill the Active Terminal Instance');
    await terminalText(page, 'Echo agent').waitFor({ state: 'detached', timeout: 20_000 });
    const detached = sessionRow(page, /running · Echo agent \(stand-in\) · started/);
    await page
      .locator('.part.sidebar .monaco-list-row', { hasText: 'Echo agent (stand-in)' })
      .filter({ hasText: 'attached' })
      .waitFor({ state: 'detached', timeout: 20_000 });
    await detached.waitFor();
    await until('the session detached inside the container', async () => (await tmuxList()) === 'echo 0 0');
    await detached.hover();
    await page
      .locator('.monaco-hover', { hasText: 'Closing its terminal or the window only detaches' })
      .waitFor();
    await new Workbench(page).screenshot('sessions-tree');
    await page.mouse.move(1000, 300);
  });

  await step(page, 'close-window', async () => {
    // Attach again (a click on the row), then close the whole window with the terminal attached.
    await sessionRow(page, 'running').click();
    await terminalText(page, 'you said: fix the failing test').waitFor({ timeout: 20_000 });
    await until('the second attach inside the container', async () => (await tmuxList()) === 'echo 1 0');
    // A blank tab first keeps the browser up; it becomes the second window later.
    second = await browser.context.newPage();
    await page.close();
  });
  // With no window at all the agent goes on: it prints what it is handed.
  const note = `written while detached ${randomBytes(3).toString('hex')}`;
  assert.match(await tmuxList(), /^echo \d 0$/, 'the session runs on after its window closed');
  await root(`printf %s '${note}' > ${NOTE}`, { timeoutMs: 20_000 });
  await until('the agent to print the note', async () => (await paneText()).includes(`note: ${note}`));

  assert.ok(second);
  const other = second;
  await step(other, 'second-window', async () => {
    await openWindow(other);
    await sessionRow(other, 'running').click();
    await terminalText(other, `note: ${note}`).waitFor({ timeout: 30_000 });
    await terminalText(other, 'you said: fix the failing test').waitFor();
    // The agent ends: the terminal shows its last words and the row says so without a refresh.
    await root(`touch ${STOP}`, { timeoutMs: 20_000 });
    await terminalText(other, 'agent finished').waitFor({ timeout: 20_000 });
    await sessionRow(other, /exited \(code 3\) · Echo agent \(stand-in\) · started/).waitFor({
      timeout: 20_000,
    });
    assert.match(await tmuxList(), /^echo \d 1 3$/);
  });
});
