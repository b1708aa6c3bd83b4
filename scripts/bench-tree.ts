// Benchmark in a real VS Code (code-server + headless Chromium, as `npm run test:vscode`): the `bench:` suites of
// test/vscode/suite against a simulator with 1,000 sandboxes × 20 checkpoints. They print activation, the tree's
// timings, heap growth after 50 refreshes, cached vs cold first rows, event -> tree and API calls per minute
// (see test/vscode/suite/bench-tree.test.ts); this passes their output through.
//   npm run bench:tree
import { spawnSync } from 'node:child_process';
import { runBench } from './bench/stats';

async function main(): Promise<void> {
  const run = spawnSync(process.execPath, ['test/vscode/run.mjs', '--grep', 'bench:'], { stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`the bench: suites failed (exit ${run.status})`);
}

runBench(main);
