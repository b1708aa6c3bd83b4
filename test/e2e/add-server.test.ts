// Add Server… as a new user meets it, in a real browser against a NAS with a self-signed certificate (the
// simulator over TLS): the step counter, an invalid port refused as you type, a refused connection that keeps the
// wizard open naming host, port and transport, the certificate prompt (subject, issuer, validity, SHA-256), then
// user and key, and the NAS in the tree with its certificate pinned in settings.
// Screenshots: test-results/screenshots/{add-server-port,add-server-refused,cert-prompt,add-server-done}.png
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { makeSelfSignedCert, type TestCert } from '../lab/tls';
import { startSimulator, type SimServer } from '../sim/index';
import {
  failureScreenshot,
  freePort,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  type WorkbenchSession,
} from './harness';

const API_KEY = '7-' + 'k'.repeat(64);
let dir: string;
let cert: TestCert;
let sim: SimServer;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pixels-ui-addsrv-'));
  cert = makeSelfSignedCert(dir, 'nas', { cn: 'truenas.local', san: 'DNS:truenas.local' });
  sim = await startSimulator({
    version: '25.10',
    apiKey: API_KEY,
    seed: true,
    username: 'truenas_admin',
    tls: { key: cert.key, cert: cert.cert },
  });
  server = await startCodeServer({
    settings: { 'workbench.colorTheme': 'Default Dark Modern' },
    env: { PIXELS_SSH_DIR: path.join(dir, 'ssh') },
  });
  wb = await openWorkbench(server, { viewport: { width: 1280, height: 800 } });
  page = wb.page;
});

after(async () => {
  await wb?.close();
  await server?.stop();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    await failureScreenshot(page, name);
    throw error;
  }
}

const quickInput = () => page.locator('.quick-input-widget');
const input = () => page.locator('.quick-input-widget input');
const message = (text: string | RegExp) =>
  page.locator('.quick-input-widget .quick-input-message', { hasText: text });

test('Add Server… against a self-signed NAS: refused connection, certificate prompt, key, pinned', async () => {
  await step('add-server', async () => {
    await wb.openView('Pixels');
    await wb.runCommand('Pixels: Add Server…');
    await quickInput().locator('.quick-input-title', { hasText: 'Add Server' }).waitFor();
    assert.match(await quickInput().innerText(), /1\/4/);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'TrueNAS SCALE' }).click();

    // (2/4) the address: an invalid port is refused as you type
    await quickInput().getByText(/2\/4/).waitFor();
    await input().fill('nas.lan:99999');
    await message('Port 99999 is out of range').waitFor();
    await page.waitForTimeout(300);
    await wb.screenshot('add-server-port');

    // nothing listens there: the step stays open, naming host, port and transport
    const closed = await freePort();
    await input().fill(`127.0.0.1:${closed}`);
    await page.keyboard.press('Enter');
    await message(`Cannot connect to wss://127.0.0.1:${closed} (TLS): connection refused`).waitFor({
      timeout: 20_000,
    });
    assert.match(await quickInput().innerText(), /2\/4/, 'still at the address step');
    await page.waitForTimeout(300);
    await wb.screenshot('add-server-refused');

    // the NAS: its certificate is shown before anything else is sent
    await input().fill(`https://127.0.0.1:${sim.port}`);
    await page.keyboard.press('Enter');
    const dialog = await wb.dialog(20_000);
    const text = await dialog.innerText();
    assert.match(text, new RegExp(`Trust the certificate of 127\\.0\\.0\\.1:${sim.port}\\?`));
    assert.match(text, /Subject: CN=truenas\.local/);
    assert.match(text, /Issuer: itself \(self-signed\)/);
    assert.match(text, /Valid: \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d/);
    assert.ok(text.includes(`SHA-256: ${cert.fingerprint}`), text);
    assert.equal(sim.callCount(), 0, 'no call, so no key, before the certificate is trusted');
    await page.mouse.move(1200, 780);
    await page.waitForTimeout(400); // the dialog fades in
    await wb.screenshot('cert-prompt');
    await dialog.locator('.monaco-button', { hasText: /^Trust$/ }).click();

    // (3/4) the user, 25.04+'s administrator by default
    await quickInput().getByText(/3\/4/).waitFor({ timeout: 20_000 });
    assert.equal(await input().inputValue(), 'truenas_admin');
    await page.keyboard.press('Enter');

    // (4/4) the key: a mangled one is refused as you type, then the real one logs in
    await quickInput().getByText(/4\/4/).waitFor();
    await input().fill('k'.repeat(64));
    await message('starts with its number and a hyphen').waitFor();
    await input().fill(API_KEY);
    await page.keyboard.press('Enter');
    await wb.treeRow('127.0.0.1').waitFor({ timeout: 30_000 });
    for (const name of ['web', 'agent', 'old']) await wb.treeRow(name).waitFor({ timeout: 30_000 });
    await page.mouse.move(1000, 700);
    await wb.screenshot('add-server-done');

    const settings = JSON.parse(
      readFileSync(path.join(server.userDataDir, 'User', 'settings.json'), 'utf8'),
    ) as {
      'pixels.servers'?: Record<string, unknown>[];
    };
    const saved = settings['pixels.servers'] ?? [];
    assert.equal(saved.length, 1);
    assert.equal(saved[0].tlsFingerprint, cert.fingerprint);
    assert.equal(saved[0].username, 'truenas_admin');
    assert.ok(!JSON.stringify(settings).includes(API_KEY.slice(2, 20)), 'the key is not in settings');
  });
});
