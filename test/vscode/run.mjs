#!/usr/bin/env node
// `npm run test:vscode [-- --grep <pattern>]`: the extension-host suite in a real VS Code.
// 1. bundles the extension (dist/extension.js, production build: what ships) and the suites
//    (test/vscode/suite/**/*.ts -> out/vscode-tests/<pid>/**/*.js, one self-contained bundle each, `vscode` and
//    mocha external; a folder per run so that two runs at once do not delete each other's bundles);
// 2. runs them with @vscode/test-electron's runTests. Desktop VS Code cannot be downloaded offline, so unless
//    VSCODE_EXECUTABLE names a real one, the executable is test/vscode/code-shim.mjs (code-server + headless Chromium).
// PIXELS_* variables are handed to the extension host (extensionTestsEnv).
// Options: --grep <pattern>; --suite workers runs test/vscode/workers/** instead (suites that other tests start,
// such as one "window" of test/reliability/concurrency.test.ts; never part of the normal run); --no-build uses the
// dist/extension.js already built (a caller that starts several runs at once builds it once, before them);
// --profile <dir> puts the user-data dir, extensions and workspace there and leaves them for the caller to inspect.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { runTests } from '@vscode/test-electron';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const argv = process.argv.slice(2);
const option = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const grep = option('--grep');
const suiteName = option('--suite') ?? 'suite';
if (!['suite', 'workers'].includes(suiteName)) {
  console.error(`--suite: "${suiteName}" is neither "suite" nor "workers"`);
  process.exit(2);
}
const suiteDir = path.join(here, suiteName);
const outRoot = path.join(root, 'out', 'vscode-tests');
const outDir = path.join(outRoot, String(process.pid));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function sources(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const file = path.join(dir, entry);
      if (statSync(file).isDirectory()) return sources(file);
      return file.endsWith('.ts') && !file.endsWith('.d.ts') ? [file] : [];
    });
}

if (!argv.includes('--no-build')) {
  const build = spawnSync(process.execPath, ['esbuild.mjs', '--production'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

// Folders of runs that are gone (killed before they could clean up).
for (const entry of existsSync(outRoot) ? readdirSync(outRoot) : []) {
  if (/^\d+$/.test(entry) && !alive(Number(entry)))
    rmSync(path.join(outRoot, entry), { recursive: true, force: true });
}
rmSync(outDir, { recursive: true, force: true });
await esbuild.build({
  entryPoints: sources(suiteDir),
  outdir: outDir,
  outbase: suiteDir,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // Self-contained like the extension's own bundle: a suite that uses ssh2 or ws must not put node_modules/ssh2 in
  // the shared require.cache (mocha loads every suite before the first test runs, and the activation test checks
  // that the extension itself loads no ssh2). `vscode` comes from the host, mocha is the runner's, native parts stay out.
  external: ['vscode', 'mocha', 'cpu-features', '*.node'],
  sourcemap: 'inline',
  logLevel: 'warning',
});

const extensionTestsEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => key.startsWith('PIXELS_')),
);
if (grep) extensionTestsEnv.PIXELS_VSCODE_TEST_GREP = grep;

const keptProfile = option('--profile');
const profile = keptProfile ?? mkdtempSync(path.join(tmpdir(), 'pixels-vscode-profile-'));
const workspace = path.join(profile, 'workspace');
mkdirSync(workspace, { recursive: true });
const started = Date.now();
let code = 0;
try {
  await runTests({
    vscodeExecutablePath: process.env.VSCODE_EXECUTABLE || path.join(here, 'code-shim.mjs'),
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(outDir, 'index.js'),
    extensionTestsEnv,
    launchArgs: [
      `--user-data-dir=${path.join(profile, 'user-data')}`,
      `--extensions-dir=${path.join(profile, 'extensions')}`,
      '--disable-extensions', // only the extension under development (desktop VS Code; code-server has no others)
      workspace,
    ],
  });
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  code = 1;
}
if (!keptProfile) rmSync(profile, { recursive: true, force: true });
rmSync(outDir, { recursive: true, force: true });
console.log(
  `test:vscode ${code === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
process.exit(code);
