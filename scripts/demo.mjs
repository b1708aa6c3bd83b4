#!/usr/bin/env node
// `npm run demo [-- --port 8080] [--sim-version 25.04|25.10]`: builds and packages the extension, starts the TrueNAS
// simulator with a few seeded sandboxes and checkpoints, and a real VS Code (code-server on Node 24) with the .vsix
// installed and pointed at the simulator. Prints the URL to open; Ctrl-C stops everything it started.
// Needs `bash scripts/setup.sh` once (Node 24, code-server, Chromium are cached in $PIXELS_CACHE_DIR).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { require as requireTs } from 'tsx/cjs/api';
import { harness } from './harness-env.mjs';

const { freePort } = requireTs('../test/e2e/code-server.ts', import.meta.url);
const { startDemo } = requireTs('../test/e2e/demo.ts', import.meta.url);

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  if (at === -1) return fallback;
  const value = process.argv[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

let port;
let simVersion;
try {
  const portText = option('--port', '8080');
  if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
    throw new Error(`--port must be 1-65535, not ${portText}`);
  port = Number(portText);
  simVersion = option('--sim-version', '25.10');
  if (!['25.04', '25.10'].includes(simVersion))
    throw new Error(`--sim-version must be 25.04 or 25.10, not ${simVersion}`);
} catch (error) {
  console.error(`demo: ${error.message}`);
  process.exit(2);
}

// The build's and vsce's chatter (file lists, "extension.js is large") reads like trouble to a newcomer: it is
// shown only when packaging fails.
console.log('demo: building and packaging the extension...');
const packaged = spawnSync('npm', ['run', '--silent', 'package'], {
  cwd: harness.repoRoot,
  encoding: 'utf8',
  env: { ...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false' },
});
if (packaged.status !== 0) {
  process.stderr.write(`${packaged.stdout ?? ''}${packaged.stderr ?? ''}`);
  console.error('demo: `npm run package` failed (its output is above)');
  process.exit(1);
}
console.log('demo: starting the TrueNAS simulator and VS Code (code-server)...');

// The default port may be taken (another demo, another server): then any free one.
if (!process.argv.includes('--port')) {
  const probe = await import('node:net').then(
    ({ createServer }) =>
      new Promise((resolve) => {
        const s = createServer()
          .once('error', () => resolve(false))
          .listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
      }),
  );
  if (!probe) port = await freePort();
}

let demo;
try {
  // The simulator's sandboxes run no sshd, so guest provisioning (which works over SSH) is off in the demo.
  demo = await startDemo({ port, simVersion, settings: { 'pixels.defaults.provision': false } });
} catch (error) {
  console.error(`demo: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}

let stopping = false;
async function stop(signal, exitCode = 0) {
  if (stopping) return;
  stopping = true;
  console.log(`\ndemo: ${signal}, stopping code-server and the simulator...`);
  await demo.stop();
  console.log('demo: stopped');
  process.exit(exitCode);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
demo.server.exited.then((code) => {
  if (stopping) return;
  const log = readFileSync(demo.server.logFile, 'utf8').split('\n').slice(-20).join('\n');
  console.error(`demo: code-server exited unexpectedly (${code}); its log ends with:\n${log}`);
  stop('code-server gone', 1);
});

console.log(`
Pixels demo is running.
  TrueNAS simulator ${simVersion}: ${demo.simUrl} (seeded; server "Simulator" in the Pixels view)
  VS Code (code-server ${harness.codeServerVersion}, log ${demo.server.logFile})

  Open:  ${demo.url}

Press Ctrl-C to stop.`);
