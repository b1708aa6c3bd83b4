// CLI: npm run sim -- --port <p> --version <25.04|25.10|26|26.0.0-BETA.3|26.0.0-RC.1> --api-key <key> [--seed] [--engine memory|incus]
//   [--username <u>] [--tls-cert <pem file> --tls-key <pem file>] [--job-ms <n>] [--treat-as-remote]
//   [--network stock|static|lan-bridge] [--seed-scale <sandboxes>,<checkpoints>,<others>]
// Prints exactly one line "truenas-sim listening on ws://127.0.0.1:<p>/api/current" when ready; SIGTERM/SIGINT
// stop it cleanly (exit 0). Bad flags exit 2 with a message on stderr. Started with an IPC channel (fork), it answers
// the message {type:'call-count'} with {type:'call-count', count} (API calls served so far) and {type:'gc'} with
// {type:'gc'} after a full collection when node runs with --expose-gc (benchmarks: rounds start from a quiet heap).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { SimEngine } from './engine.js';
import {
  MemoryEngine,
  SIM_VERSIONS,
  startSimulator,
  type SimOptions,
  type SimVersionOption,
} from './index.js';

class UsageError extends Error {}

const USAGE =
  'usage: npm run sim -- --port <p> --version <25.04|25.10|26|26.0.0-BETA.3|26.0.0-RC.1> --api-key <id-secret> [--seed] [--engine memory|incus]\n' +
  '       [--username <name>] [--tls-cert <file> --tls-key <file>] [--job-ms <ms>] [--treat-as-remote]\n' +
  '       [--network stock|static|lan-bridge] [--seed-scale <sandboxes>,<checkpoints>,<others>]';

interface Cli {
  options: SimOptions;
  engine: 'memory' | 'incus';
}

function parse(argv: string[]): Cli {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const withValue = new Set([
    '--port',
    '--version',
    '--api-key',
    '--engine',
    '--username',
    '--tls-cert',
    '--tls-key',
    '--job-ms',
    '--network',
    '--seed-scale',
  ]);
  const switches = new Set(['--seed', '--treat-as-remote']);
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const [name, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    if (switches.has(name) && inline === undefined) flags.add(name);
    else if (withValue.has(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || (inline === undefined && value.startsWith('--')))
        throw new UsageError(`${name} needs a value`);
      values.set(name, value);
    } else throw new UsageError(`unknown argument: ${arg}`);
  }
  const version = values.get('--version');
  if (!version) throw new UsageError('--version is required');
  if (!SIM_VERSIONS.includes(version as SimVersionOption))
    throw new UsageError(`--version must be one of ${SIM_VERSIONS.join(', ')}, not ${version}`);
  const apiKey = values.get('--api-key') ?? process.env.TRUENAS_SIM_API_KEY;
  if (!apiKey) throw new UsageError('--api-key is required (or TRUENAS_SIM_API_KEY)');
  if (!/^\d+-.+$/.test(apiKey))
    throw new UsageError('--api-key must look like "<id>-<secret>", e.g. 1-abc...');
  const portText = values.get('--port') ?? '0';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535)
    throw new UsageError(`--port must be 0-65535, not ${portText}`);
  const engine = values.get('--engine') ?? 'memory';
  if (engine !== 'memory' && engine !== 'incus')
    throw new UsageError(`--engine must be memory or incus, not ${engine}`);
  const network = values.get('--network') ?? 'stock';
  if (network !== 'stock' && network !== 'static' && network !== 'lan-bridge')
    throw new UsageError(`--network must be stock, static or lan-bridge, not ${network}`);
  const jobText = values.get('--job-ms');
  if (jobText !== undefined && !/^\d+$/.test(jobText))
    throw new UsageError(`--job-ms must be a whole number of milliseconds, not ${jobText}`);
  const cert = values.get('--tls-cert');
  const key = values.get('--tls-key');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--tls-cert and --tls-key go together');
  const scaleText = values.get('--seed-scale');
  if (scaleText !== undefined && !/^\d+,\d+,\d+$/.test(scaleText))
    throw new UsageError(`--seed-scale must be <sandboxes>,<checkpoints>,<others>, not ${scaleText}`);
  const [sandboxes, checkpoints, others] = (scaleText ?? '').split(',').map(Number);
  let tls: SimOptions['tls'];
  if (cert && key) {
    for (const file of [cert, key]) if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
    tls = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
  }
  return {
    engine,
    options: {
      version: version as SimVersionOption,
      apiKey,
      port: Number(portText),
      username: values.get('--username'),
      seed: flags.has('--seed'),
      seedScale: scaleText === undefined ? undefined : { sandboxes, checkpoints, others },
      treatAsRemote: flags.has('--treat-as-remote'),
      jobDurationMs: jobText === undefined ? undefined : Number(jobText),
      network,
      tls,
    },
  };
}

async function makeEngine(kind: 'memory' | 'incus'): Promise<SimEngine> {
  if (kind === 'memory') return new MemoryEngine();
  // tsx runs this file as CommonJS (no "type": "module"), where __dirname exists; under ESM it does not.
  const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  const file = join(here, 'engines', 'incus.ts');
  if (!existsSync(file))
    throw new UsageError('--engine incus is not available yet (test/sim/engines/incus.ts is missing)');
  const mod = (await import(pathToFileURL(file).href)) as {
    createIncusEngine?: () => Promise<SimEngine> | SimEngine;
  };
  if (typeof mod.createIncusEngine !== 'function')
    throw new UsageError('test/sim/engines/incus.ts does not export createIncusEngine()');
  return mod.createIncusEngine();
}

async function main(): Promise<void> {
  let cli: Cli;
  try {
    cli = parse(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`truenas-sim: ${error.message}\n${USAGE}\n`);
      process.exit(2);
    }
    throw error;
  }
  let engine: SimEngine;
  try {
    engine = await makeEngine(cli.engine);
  } catch (error) {
    process.stderr.write(`truenas-sim: ${(error as Error).message}\n`);
    process.exit(2);
  }
  // Signal handlers go in before the ready line: a caller may signal as soon as it reads it, and a signal that
  // arrives before sigaction would kill the process with the default action.
  const running: { server?: Awaited<ReturnType<typeof startSimulator>> } = {};
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    (running.server ? running.server.close() : engine.close()).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`truenas-sim: error while stopping: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const server = await startSimulator({ ...cli.options, engine });
  running.server = server;
  if (stopping) {
    await server.close();
    process.exit(0);
  }
  if (process.send) {
    // A benchmark that forked this process and went away must not leave it running.
    process.on('disconnect', stop);
    process.on('message', (message: { type?: string }) => {
      if (message?.type === 'call-count') process.send?.({ type: 'call-count', count: server.callCount() });
      if (message?.type === 'gc') {
        (globalThis as { gc?: () => void }).gc?.();
        process.send?.({ type: 'gc' });
      }
    });
  }
  process.stdout.write(`truenas-sim listening on ${server.url}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`truenas-sim: ${(error as Error).message}\n`);
  process.exit(1);
});
