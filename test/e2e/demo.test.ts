// What `npm run demo` starts, checked end to end: the seeded simulator, code-server with the packaged extension,
// the settings entry and the demo API key reaching the extension, so the Pixels view lists the seeded sandboxes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { failureScreenshot, openWorkbench, startDemo, type Demo, type WorkbenchSession } from './harness';

let demo: Demo;
let workbench: WorkbenchSession;

before(async () => {
  demo = await startDemo();
  workbench = await openWorkbench(demo.server, { folder: demo.folder });
});

after(async () => {
  await workbench?.close();
  await demo?.stop();
});

test('the demo shows the simulator and its seeded sandboxes in the Pixels view', async () => {
  const { page } = workbench;
  try {
    assert.match(demo.simUrl, /^ws:\/\/127\.0\.0\.1:\d+\/api\/current$/);
    await workbench.openView('Pixels');
    const tree = page.locator('.part.sidebar .monaco-list');
    await tree.getByText('Simulator', { exact: false }).first().waitFor({ timeout: 30_000 });
    // The server row expands to its sandboxes; the seed has these three.
    for (const name of ['agent', 'old', 'web']) {
      await tree.locator('.monaco-list-row', { hasText: name }).first().waitFor({ timeout: 30_000 });
    }
    await workbench.screenshot('demo');
  } catch (error) {
    await failureScreenshot(page, 'demo');
    throw error;
  }
});
