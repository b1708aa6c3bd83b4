#!/usr/bin/env node
// Runs every suite in order (static checks first), streams their output, and ends with one summary line
// "tests: N passed, N failed". Exits non-zero if any suite fails. A suite that needs the lab fails
// loudly when the lab is missing; nothing is skipped here.
import { spawn } from 'node:child_process';

const suites = (
  process.env.PIXELS_SUITES ??
  'typecheck,lint,build,test:unit,test:integration,test:reliability,test:vscode,test:e2e'
).split(',');

function run(script) {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (stream) => (chunk) => {
      out += chunk.toString();
      stream.write(chunk);
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

// Counts from node:test ("ℹ pass N" / "# pass N") and mocha ("N passing" / "N failing").
function counts(out) {
  // eslint-disable-next-line no-control-regex -- strips ANSI colour codes, which start with ESC
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const last = (re) => {
    const all = [...plain.matchAll(re)];
    return all.length ? Number(all[all.length - 1][1]) : 0;
  };
  const passed = last(/^[ℹ#] pass (\d+)$/gm) + last(/^\s*(\d+) passing/gm);
  // node:test reports tests cancelled by a failing hook apart from failures: they did not pass, so count them.
  const failed = last(/^[ℹ#] fail (\d+)$/gm) + last(/^[ℹ#] cancelled (\d+)$/gm) + last(/^\s*(\d+) failing/gm);
  return { passed, failed };
}

// The failure report of a suite (node:test's "failing tests:" section, mocha's "N failing" list), at most 80 lines:
// repeated at the end, where a log that keeps only its tail still shows why.
function failureReport(out) {
  // eslint-disable-next-line no-control-regex -- strips ANSI colour codes, which start with ESC
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const at = Math.max(plain.lastIndexOf('failing tests:'), plain.search(/^\s*\d+ failing$/m));
  if (at === -1) return plain.split('\n').slice(-30).join('\n');
  const lines = plain.slice(at).split('\n');
  return (
    lines
      .slice(0, 80)
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
      .join('\n') + (lines.length > 80 ? `\n… (${lines.length - 80} more lines not shown)` : '')
  );
}

let passed = 0;
let failed = 0;
const failedSuites = [];
const reports = [];
for (const suite of suites) {
  const started = Date.now();
  console.log(`\n=== ${suite} ===`);
  const { code, out } = await run(suite);
  const c = counts(out);
  passed += c.passed;
  failed += c.failed;
  if (code !== 0) {
    failedSuites.push(suite);
    reports.push(`--- ${suite} ---\n${failureReport(out)}`);
    if (c.failed === 0) failed += 1; // a suite that crashed or a static check that failed counts as one failure
  }
  console.log(
    `=== ${suite}: exit ${code}, ${c.passed} passed, ${c.failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s ===`,
  );
}
if (failedSuites.length) {
  console.log(`\nwhy (each failed suite's report, again):\n${reports.join('\n')}`);
  console.log(`\nfailed suites: ${failedSuites.join(', ')}`);
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failedSuites.length ? 1 : 0);
