// Add Server… → Incus with a trust token, as a new user meets it in a real browser against the lab's HTTPS Incus:
// a garbled paste is refused as you type; a token whose addresses do not answer from here leads to an address step;
// the lab's address joins it, and the server is in settings by file paths only (no key, no token).
// Screenshots: test-results/screenshots/{add-server-token,add-server-token-address}.png
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { IncusRestClient } from '../../src/backends/incus/rest-client';
import { requireLab, type Lab } from '../lab/lab';
import {
  failureScreenshot,
  openWorkbench,
  startCodeServer,
  type CodeServer,
  type WorkbenchSession,
} from './harness';

const name = `px-e2etok${Math.random().toString(16).slice(2, 8)}`;
let lab: Lab;
let admin: IncusRestClient;
let server: CodeServer;
let wb: WorkbenchSession;
let page: Page;

before(async () => {
  lab = await requireLab();
  admin = new IncusRestClient({ socketPath: lab.socket });
  server = await startCodeServer({ settings: { 'workbench.colorTheme': 'Default Dark Modern' } });
  wb = await openWorkbench(server, { viewport: { width: 1280, height: 800 } });
  page = wb.page;
});

after(async () => {
  await wb?.close();
  await server?.stop();
  if (admin) {
    const certs = await admin
      .call<{ name: string; fingerprint: string }[]>('GET', '/1.0/certificates', {
        query: { recursion: '1' },
      })
      .catch(() => undefined);
    for (const c of certs?.metadata ?? [])
      if (c.name === name)
        await admin.call('DELETE', `/1.0/certificates/${c.fingerprint}`).catch(() => undefined);
    try {
      execFileSync('incus', ['config', 'trust', 'revoke-token', name], { stdio: 'pipe' });
    } catch {
      // redeemed
    }
    admin.close();
  }
});

const quickInput = () => page.locator('.quick-input-widget');
const input = () => page.locator('.quick-input-widget input');
const message = (text: string | RegExp) =>
  page.locator('.quick-input-widget .quick-input-message', { hasText: text });

test("Add Server… → Incus: a trust token, an address step when the token's do not answer, joined", async () => {
  try {
    const token = execFileSync('incus', ['config', 'trust', 'add', name], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!
      .trim();
    // As if the host listened on an address this machine cannot reach (a NAT'd or internal one).
    const fields = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, unknown>;
    const unreachable = Buffer.from(JSON.stringify({ ...fields, addresses: ['127.0.0.1:1'] })).toString(
      'base64',
    );

    await wb.openView('Pixels');
    await wb.runCommand('Pixels: Add Server…');
    await quickInput().locator('.quick-input-title', { hasText: 'Add Server' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Incus' }).click();

    await quickInput().getByText(/2\/2/).waitFor();
    await input().fill(unreachable.slice(0, 50));
    await message('not an Incus trust token').waitFor();
    await input().fill(unreachable);
    await page.waitForTimeout(300);
    await wb.screenshot('add-server-token');
    await page.keyboard.press('Enter');

    await quickInput().getByText(/3\/3/).waitFor({ timeout: 20_000 });
    await input().fill(lab.httpsAddress!);
    await page.waitForTimeout(300);
    await wb.screenshot('add-server-token-address');
    await page.keyboard.press('Enter');

    // Joined: the last question is how to reach the sandboxes; "Directly" keeps this test off SSH.
    await page
      .locator('.quick-input-list .monaco-list-row', { hasText: 'Directly' })
      .click({ timeout: 30_000 });
    const settingsFile = path.join(server.userDataDir, 'User', 'settings.json');
    let saved: Record<string, unknown>[] = [];
    for (let i = 0; i < 100 && saved.length === 0; i++) {
      await page.waitForTimeout(200);
      try {
        saved =
          (
            JSON.parse(readFileSync(settingsFile, 'utf8')) as { 'pixels.servers'?: Record<string, unknown>[] }
          )['pixels.servers'] ?? [];
      } catch {
        saved = [];
      }
    }
    assert.equal(saved.length, 1);
    assert.equal(saved[0].url, `https://${lab.httpsAddress}`);
    assert.equal(statSync(saved[0].clientKey as string).mode & 0o777, 0o600);
    const text = readFileSync(settingsFile, 'utf8');
    assert.ok(
      !text.includes('PRIVATE KEY') && !text.includes(token.slice(0, 40)),
      'no key or token in settings',
    );
    const certs = await admin.call<{ name: string }[]>('GET', '/1.0/certificates', {
      query: { recursion: '1' },
    });
    assert.ok(
      certs.metadata.some((c) => c.name === name),
      'the lab trusts the new client',
    );
  } catch (error) {
    await failureScreenshot(page, 'add-server-token');
    throw error;
  }
});
