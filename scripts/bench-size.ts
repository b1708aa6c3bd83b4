// Benchmark: what installing costs. Builds the production bundle and the .vsix (`npm run package`) and prints their
// sizes. Lines: `bundle: <N> KiB` (dist/extension.js, target ≤ 1024), `vsix: <N> KiB` (target ≤ 1536).
//   npm run bench:size
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { figure, runBench } from './bench/stats';

async function main(): Promise<void> {
  execFileSync('npm', ['run', '--silent', 'package'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const kib = (path: string) => (statSync(path).size / 1024).toFixed(0);
  figure('bundle', `${kib('dist/extension.js')} KiB`);
  figure('vsix', `${kib('dist/pixels-vscode.vsix')} KiB`);
}

runBench(main);
