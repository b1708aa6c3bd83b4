#!/usr/bin/env node
// node:test on Node 20 has no glob support: find the *.test.ts files under the given folders and run them
// with tsx. Extra flags after `--` go to node (e.g. --test-concurrency=1, --test-name-pattern=...).
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const sep = args.indexOf('--');
const dirs = sep === -1 ? args : args.slice(0, sep);
const nodeFlags = sep === -1 ? [] : args.slice(sep + 1);

function find(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) return find(path);
      return path.endsWith('.test.ts') ? [path] : [];
    });
}

const files = dirs.flatMap(find);
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')}`);
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...nodeFlags, ...files],
  {
    stdio: 'inherit',
  },
);
child.on('close', (code) => process.exit(code ?? 1));
