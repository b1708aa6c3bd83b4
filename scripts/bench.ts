// `npm run bench`: every benchmark, one after the other, each in its own process (`npm run bench:<name>` runs one).
// Their full output streams through; at the end, one line per figure (`<figure>: <value>`), or the reason a
// benchmark could not run. BENCH_ONLY=list,tree narrows the set.
import { spawn } from 'node:child_process';

/** Name -> script, in the order they run; the figures each prints are listed in README.md (Benchmarks). */
export const BENCHMARKS: Record<string, string> = {
  list: 'scripts/bench-list.ts',
  'incus-list': 'scripts/bench-incus-list.ts',
  tree: 'scripts/bench-tree.ts',
  size: 'scripts/bench-size.ts', // also packages the .vsix that bench:chromium installs
  chromium: 'scripts/bench-chromium.ts',
  exec: 'scripts/bench-exec.ts',
  clone: 'scripts/bench-clone.ts',
  cluster: 'scripts/bench-cluster.ts',
  base: 'scripts/bench-base.ts',
};

/** The figures the summary keeps (README.md, Benchmarks, lists each with its target). */
export const FIGURES = [
  'list round trips',
  'list speedup vs pixels pattern',
  'incus list round trips',
  'activation',
  'view shown to 1,000 sandbox rows',
  'expand to checkpoint rows',
  'tree heap growth after 50 refreshes',
  'chromium view shown to sandbox rows',
  'chromium expand to checkpoint rows',
  'cached tree vs cold tree',
  'event-to-tree p50',
  'event-to-tree vs polling interval',
  'API calls per minute, view hidden',
  'API calls per minute, view shown and idle',
  'bundle',
  'vsix',
  'exec speedup',
  'clone-to-ssh ratio',
  'cluster members',
  'cluster list round trips',
  'cross-member clone-to-ssh ratio',
  'base-vs-create ratio',
];

function isFigure(line: string): boolean {
  return FIGURES.some((f) => line.startsWith(`${f}: `) || line.startsWith(`${f} (`));
}

function runOne(name: string, script: string): Promise<{ figures: string[]; code: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const figures: string[] = [];
    let tail = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (isFigure(line.trim())) figures.push(line.trim());
    });
    child.stderr.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString()).slice(-400);
    });
    child.on('close', (code) => {
      if (isFigure(pending.trim())) figures.push(pending.trim());
      resolve({ figures, code: code ?? 1, tail: `${name}: ${tail.trim().split('\n').pop() ?? ''}` });
    });
  });
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
  const summary: string[] = [];
  let failed = 0;
  for (const [name, script] of Object.entries(BENCHMARKS)) {
    if (only && !only.includes(name)) continue;
    console.log(`\n=== bench:${name} (${script})`);
    const result = await runOne(name, script);
    summary.push(...result.figures);
    if (result.code !== 0) {
      failed++;
      summary.push(`(bench:${name} failed: ${result.tail})`);
    }
  }
  console.log('\n=== results');
  for (const line of summary) console.log(line);
  process.exit(failed ? 1 : 0);
}

void main();
