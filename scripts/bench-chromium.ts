// Benchmark in the browser: code-server with the packaged extension (dist/pixels-vscode.vsix, `npm run package`)
// in headless Chromium, pointed at a simulator with 1,000 `px-` sandboxes × 20 checkpoints. Times, in the page:
// opening the Pixels view -> the server row says "1000 sandboxes" with the first sandbox row drawn (the list
// is virtualised, so only the visible rows exist), and clicking a sandbox -> its checkpoint rows drawn.
// Lines: `chromium view shown to sandbox rows: <N> ms`, `chromium expand to checkpoint rows: <N> ms`.
//   npm run bench:chromium (packages first)
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { startSimulator } from '../test/sim/index';
import { openWorkbench, startCodeServer, VSIX } from '../test/e2e/harness';
import { figure, median, runBench } from './bench/stats';

async function main(): Promise<void> {
  if (!existsSync(VSIX)) throw new Error(`${VSIX} is missing: run npm run package first`);
  const apiKey = `1-${randomBytes(32).toString('hex')}`;
  const sim = await startSimulator({
    version: '25.10',
    apiKey,
    seedScale: { sandboxes: 1000, checkpoints: 20, others: 200 },
  });
  const server = await startCodeServer({
    settings: {
      'pixels.servers': [
        {
          id: 'scale',
          kind: 'truenas',
          label: 'Scale',
          host: '127.0.0.1',
          port: sim.port,
          secure: false,
          username: 'truenas_admin',
        },
      ],
    },
    env: { PIXELS_DEMO_API_KEY: apiKey },
  });
  try {
    const wb = await openWorkbench(server, { viewport: { width: 1280, height: 900 } });
    try {
      const page = wb.page;
      const started = performance.now();
      await wb.openView('Pixels');
      await page
        .locator('.part.sidebar .monaco-list-row', { hasText: /1000 sandboxes/ })
        .first()
        .waitFor({ timeout: 120_000 });
      await wb.treeRow('s0000').waitFor({ timeout: 60_000 });
      const shownMs = performance.now() - started;
      const rows = await page.locator('.part.sidebar .monaco-list-row').count();
      console.log(`view shown: ${rows} rows in the DOM for 1,001 tree rows (the list is virtualised)`);
      figure('chromium view shown to sandbox rows', `${Math.round(shownMs)} ms`);

      const expand: number[] = [];
      for (const name of ['s0000', 's0001', 's0002']) {
        // A single click toggles a row in VS Code's tree: once to expand, once to collapse again.
        const t = performance.now();
        await wb.treeRow(name).click();
        await wb.treeRow('cp19').waitFor({ timeout: 30_000 });
        expand.push(performance.now() - t);
        await wb.treeRow(name).click();
        await wb.treeRow('cp19').waitFor({ state: 'detached', timeout: 30_000 });
      }
      figure('chromium expand to checkpoint rows', `${Math.round(median(expand))} ms`);
    } finally {
      await wb.close();
    }
  } finally {
    await server.stop();
    await sim.close();
  }
}

runBench(main);
