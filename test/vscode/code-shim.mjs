#!/usr/bin/env node
// Stands in for the VS Code executable in @vscode/test-electron's runTests({ vscodeExecutablePath }) on machines
// where desktop VS Code cannot be downloaded. It turns the desktop command line into a real VS Code: code-server
// (the VS Code server with its Node extension host) plus the workbench in headless Debian Chromium, opened with a
// `payload` that names the extension under development and its test runner -- the mechanism VS Code's own web
// integration tests use (it needs `--vscode-option enable-smoke-test-driver`). The workbench reports the mocha run's
// end through window.codeAutomationExit(code); this process exits with that code. Everything it starts dies with it.
//
// Understood:  --extensionDevelopmentPath=<dir> (repeatable)  --extensionTestsPath=<file>  --user-data-dir=<dir>
//              --extensions-dir=<dir>  [folder]
// Ignored:     the other desktop flags (--no-sandbox, --disable-updates, --skip-welcome, ...).
// Environment: PIXELS_VSCODE_TEST_TIMEOUT_MS (default 20 min); everything else reaches the extension host.
import {
  closeSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { format } from 'node:util';
import { require as requireTs } from 'tsx/cjs/api';

// The server and browser helpers are the TypeScript ones the browser UI tests use.
const { startCodeServer } = requireTs('../e2e/code-server.ts', import.meta.url);
const { launchBrowser, workbenchUrl, screenshot } = requireTs('../e2e/browser.ts', import.meta.url);

const TIMEOUT_MS = Number(process.env.PIXELS_VSCODE_TEST_TIMEOUT_MS || 20 * 60_000);

function parseArgs(argv) {
  const parsed = {
    devPaths: [],
    testsPath: undefined,
    userDataDir: undefined,
    extensionsDir: undefined,
    folder: undefined,
  };
  for (const arg of argv) {
    const flag = /^--([^=]+)(?:=(.*))?$/.exec(arg);
    if (!flag) {
      parsed.folder = path.resolve(arg);
      continue;
    }
    const [, name, value] = flag;
    if (value === undefined) continue; // a desktop switch
    if (name === 'extensionDevelopmentPath') parsed.devPaths.push(path.resolve(value));
    else if (name === 'extensionTestsPath') parsed.testsPath = path.resolve(value);
    else if (name === 'user-data-dir') parsed.userDataDir = path.resolve(value);
    else if (name === 'extensions-dir') parsed.extensionsDir = path.resolve(value);
  }
  return parsed;
}

const args = parseArgs(process.argv.slice(2));
if (!args.testsPath || args.devPaths.length === 0) {
  console.error('code-shim: --extensionDevelopmentPath=<dir> and --extensionTestsPath=<file> are required');
  process.exit(2);
}

const workDir = mkdtempSync(path.join(tmpdir(), 'pixels-vscode-test-'));
const folder = args.folder ?? path.join(workDir, 'workspace');
mkdirSync(folder, { recursive: true });
const workbenchLog = path.join(workDir, 'workbench.log');
const logStream = createWriteStream(workbenchLog);

let server;
let browser;
async function cleanUp() {
  clearInterval(printer);
  printTestOutput();
  await browser?.close();
  await server?.stop();
  logStream.end();
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.error(`code-shim: ${signal}, stopping`);
    cleanUp().finally(() => process.exit(130));
  });
}

// codeAutomationLog gets every workbench log line, the extension host's console among them with nothing to tell them
// apart; so the test runner (suite/index.ts) mirrors its console into this file, and we print that as it grows.
const testOutput = path.join(workDir, 'test-output.log');
writeFileSync(testOutput, '');
let printed = 0;
function printTestOutput() {
  const fd = openSync(testOutput, 'r');
  const buffer = Buffer.alloc(64 * 1024);
  for (let n; (n = readSync(fd, buffer, 0, buffer.length, printed)) > 0; printed += n) {
    process.stdout.write(buffer.subarray(0, n));
  }
  closeSync(fd);
}
const printer = setInterval(printTestOutput, 250);

let code;
try {
  const started = Date.now();
  server = await startCodeServer({
    workDir,
    userDataDir: args.userDataDir,
    extensionsDir: args.extensionsDir,
    vsix: false,
    smokeTestDriver: true,
    env: { PIXELS_VSCODE_TEST_OUTPUT: testOutput },
  });
  // PIXELS_KEEP: the Chromium profile (the workbench's localStorage and IndexedDB) stays with the logs, for the
  // secret-canary scan of test/reliability/concurrency.test.ts.
  browser = await launchBrowser(
    process.env.PIXELS_KEEP ? { profileDir: path.join(workDir, 'chromium') } : {},
  );
  const { page } = browser;
  let finish;
  const exited = new Promise((resolve) => (finish = resolve));
  await page.exposeFunction('codeAutomationLog', (type, logArgs) => {
    const line = format(...(Array.isArray(logArgs) ? logArgs : [logArgs]));
    logStream.write(`[${type}] ${line}\n`);
  });
  await page.exposeFunction('codeAutomationExit', (exitCode) => finish(exitCode));
  // Do not wait for the timeout when the run can no longer report.
  page.on('crash', () => finish('the workbench page crashed'));
  server.exited.then((c) => finish(`code-server exited (${c})`));
  page.on('pageerror', (error) => logStream.write(`[pageerror] ${error}\n`));

  const authority = new URL(server.url).host;
  const remote = (p) => `vscode-remote://${authority}${p}`;
  const payload = [
    ...args.devPaths.map((p) => ['extensionDevelopmentPath', remote(p)]),
    ['extensionTestsPath', remote(args.testsPath)],
    ['skipWelcome', 'true'],
  ];
  await page.goto(workbenchUrl(server.url, folder, payload));
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), TIMEOUT_MS)));
  code = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (code === 'timeout') {
    await screenshot(page, 'vscode-test-timeout').catch(() => {});
    console.error(`code-shim: no result from the extension host after ${TIMEOUT_MS / 1000} s`);
    code = 124;
  } else if (typeof code !== 'number') {
    console.error(`code-shim: ${code}`);
    code = 3;
  }
  console.log(
    `code-shim: extension host exited with ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
} catch (error) {
  console.error('code-shim:', error instanceof Error ? error.message : error);
  code = 3;
} finally {
  await cleanUp();
}
if (!process.env.PIXELS_KEEP && code === 0 && !args.userDataDir?.startsWith(workDir))
  rmSync(workDir, { recursive: true, force: true });
else console.error(`code-shim: logs in ${workDir} (workbench.log, code-server.log, test-output.log)`);
process.exit(typeof code === 'number' ? code : 1);
