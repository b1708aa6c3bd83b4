// Mocha runner loaded by VS Code as --extensionTestsPath (bundled to out/vscode-tests/index.js by test/vscode/run.mjs).
// Runs every out/vscode-tests/**/*.test.js, i.e. every test/vscode/suite/**/*.test.ts, with the `tdd` interface
// (suite / test / suiteSetup / setup ...). PIXELS_VSCODE_TEST_GREP narrows the run (`npm run test:vscode -- --grep x`).
// Under code-server the extension host's console only reaches the workbench's (noisy) automation log, so when
// PIXELS_VSCODE_TEST_OUTPUT names a file (the launcher sets it) the console is mirrored there for the launcher to print.
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { format } from 'node:util';
import Mocha from 'mocha';

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const file = path.join(dir, entry);
      if (statSync(file).isDirectory()) return testFiles(file);
      return file.endsWith('.test.js') ? [file] : [];
    });
}

type Level = 'log' | 'info' | 'warn' | 'error' | 'debug';

/**
 * Copies console output (the tests', the extension's and mocha's reporter) into `file`; returns the undo.
 * The extension host makes console's methods unassignable (it forwards them to the workbench), so this swaps the
 * global `console` for an object that writes to both.
 */
function mirrorConsole(file: string): () => void {
  const original = globalThis.console;
  const originalReporterLog = Mocha.reporters.Base.consoleLog;
  const mirror: Console = Object.create(original);
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] satisfies Level[]) {
    Object.defineProperty(mirror, level, {
      value: (...args: unknown[]) => {
        original[level](...args);
        appendFileSync(file, format(...args) + '\n');
      },
    });
  }
  globalThis.console = mirror;
  Mocha.reporters.Base.consoleLog = mirror.log; // the reporter captured console.log when mocha loaded
  return () => {
    globalThis.console = original;
    Mocha.reporters.Base.consoleLog = originalReporterLog;
  };
}

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 60_000, reporter: 'spec' });
  const grep = process.env.PIXELS_VSCODE_TEST_GREP;
  // `bench:` suites are benchmarks (npm run bench:vscode): only a --grep that names them runs them.
  if (grep) mocha.grep(grep);
  else mocha.grep('bench:').invert();
  const files = testFiles(__dirname);
  if (files.length === 0) throw new Error(`no *.test.js files under ${__dirname}`);
  for (const file of files) mocha.addFile(file);
  const output = process.env.PIXELS_VSCODE_TEST_OUTPUT;
  const restore = output ? mirrorConsole(output) : () => {};
  try {
    const failures = await new Promise<number>((resolve) => mocha.run(resolve));
    if (failures > 0) throw new Error(`${failures} test(s) failed`);
  } finally {
    restore();
  }
}
