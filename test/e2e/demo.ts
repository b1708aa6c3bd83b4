// The demo setup, as a function: the TrueNAS simulator (seeded) + code-server with the packaged extension installed
// and pointed at it. `npm run demo` (scripts/demo.mjs) runs it until Ctrl-C; browser UI tests run against it.
// The API key is random per run and reaches the extension only through PIXELS_DEMO_API_KEY (which the extension
// honours for loopback hosts only); it is never written to settings or printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { harness } from '../../scripts/harness-env.mjs';
import { startCodeServer, type CodeServer } from './code-server';
import { workbenchUrl } from './browser';

export type SimVersion = '25.04' | '25.10' | '26';

export interface DemoOptions {
  /** code-server port; a free one by default. */
  port?: number;
  simVersion?: SimVersion;
  /** Extra user settings (merged over the demo's). */
  settings?: Record<string, unknown>;
  /** Extra environment for the extension host. */
  env?: Record<string, string>;
}

export interface Demo {
  readonly server: CodeServer;
  /** Workbench URL with the demo folder open. */
  readonly url: string;
  readonly folder: string;
  readonly simUrl: string; // ws://127.0.0.1:<p>/api/current
  readonly simPort: number;
  /** The settings entry of the simulator server. */
  readonly serverEntry: Readonly<Record<string, unknown>>;
  /** Stops code-server and the simulator (their process groups) and removes the demo's folders. */
  stop(): Promise<void>;
}

interface Sim {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const SIM_READY = /^truenas-sim listening on (ws:\/\/127\.0\.0\.1:(\d+)\/api\/current)$/;

function stopGroup(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    const pid = child.pid;
    if (!pid || child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** Starts `npm run sim` in its own process group and waits for its one "listening" line. */
export async function startSimulatorProcess(version: SimVersion, apiKey: string): Promise<Sim> {
  const child = spawn(
    'npm',
    ['run', '--silent', 'sim', '--', '--port', '0', '--version', version, '--seed'],
    {
      cwd: harness.repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TRUENAS_SIM_API_KEY: apiKey }, // not on the command line, where `ps` would show it
    },
  );
  const killOnExit = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  process.on('exit', killOnExit);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the simulator did not start within 60 s:\n${stderr}`)),
      60_000,
    );
    lines.on('line', (line) => {
      const match = SIM_READY.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the simulator exited with ${code} before it was ready:\n${stderr}`));
    });
  }).catch(async (error: unknown) => {
    await stopGroup(child);
    throw error;
  });
  // From now on its stdout is drained by `lines` and its complaints go to ours.
  child.stderr?.removeAllListeners('data');
  child.stderr?.pipe(process.stderr);
  return {
    url: ready[1],
    port: Number(ready[2]),
    async stop() {
      process.off('exit', killOnExit);
      await stopGroup(child);
    },
  };
}

export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const apiKey = `1-${randomBytes(32).toString('hex')}`;
  const workDir = mkdtempSync(path.join(tmpdir(), 'pixels-demo-'));
  const folder = path.join(workDir, 'workspace');
  mkdirSync(folder);
  const sim = await startSimulatorProcess(options.simVersion ?? '25.10', apiKey);
  const serverEntry = {
    id: 'sim',
    kind: 'truenas',
    label: 'Simulator',
    host: '127.0.0.1',
    port: sim.port,
    secure: false,
    username: 'truenas_admin',
  };
  let server: CodeServer;
  try {
    server = await startCodeServer({
      workDir,
      port: options.port,
      settings: { 'pixels.servers': [serverEntry], ...options.settings },
      env: { ...options.env, PIXELS_DEMO_API_KEY: apiKey },
    });
  } catch (error) {
    await sim.stop();
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
  return {
    server,
    url: workbenchUrl(server.url, folder),
    folder,
    simUrl: sim.url,
    simPort: sim.port,
    serverEntry,
    async stop() {
      await Promise.all([server.stop(), sim.stop()]);
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
