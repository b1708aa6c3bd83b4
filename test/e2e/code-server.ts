// Starts and stops a real VS Code server (code-server on Node 24, installed by scripts/setup.sh) on a free loopback
// port, in its own process group so that stopping it also ends the helpers it forks (agent host, file watcher...).
// Used by the browser UI tests, the extension-host test launcher (test/vscode/code-shim.mjs) and `npm run demo`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { harness } from '../../scripts/harness-env.mjs';

/** User settings that keep an offline, headless workbench quiet and deterministic. */
export const QUIET_SETTINGS: Readonly<Record<string, unknown>> = {
  'chat.disableAIFeatures': true,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'git.enabled': false,
  'github.gitAuthentication': false,
  'security.workspace.trust.enabled': false,
  // The DOM renderer: terminal text is in the page, so a browser test can read it (headless Chromium has no GPU).
  'terminal.integrated.gpuAcceleration': 'off',
};

export const VSIX = path.join(harness.repoRoot, 'dist', 'pixels-vscode.vsix');

export interface CodeServerOptions {
  /** Extra user settings, merged over QUIET_SETTINGS into <userDataDir>/User/settings.json. */
  settings?: Record<string, unknown>;
  /** Extra environment for the server and so for the extension host (which inherits it). */
  env?: Record<string, string>;
  /** Install this .vsix before starting (default: the packaged extension, dist/pixels-vscode.vsix). false = none. */
  vsix?: string | false;
  /** Let the workbench read the `payload` URL query (extension-host tests). Also hides notification toasts. */
  smokeTestDriver?: boolean;
  /** Folders for the profile and the server log; a fresh temporary folder by default. */
  workDir?: string;
  userDataDir?: string;
  extensionsDir?: string;
  /** Fixed port (e.g. for the demo); a free one by default. */
  port?: number;
  /** How long to wait for /healthz. */
  startTimeoutMs?: number;
}

export interface CodeServer {
  readonly url: string; // http://127.0.0.1:<port>
  readonly port: number;
  readonly pid: number; // also the process group id
  readonly workDir: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly logFile: string;
  /** Resolves when the server process exits (with its exit code, or null after a signal). */
  readonly exited: Promise<number | null>;
  /** Ends the whole process group (TERM, then KILL after a grace period). Safe to call twice. */
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function requireInstalled(): void {
  if (!existsSync(harness.codeServerComplete) || !existsSync(harness.node24)) {
    throw new Error(
      `code-server ${harness.codeServerVersion} or Node 24 is not installed under ${harness.cacheDir}: ` +
        'run `bash scripts/setup.sh` first',
    );
  }
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Writes settings.json (QUIET_SETTINGS + extra) into a user-data dir. */
export function seedSettings(userDataDir: string, settings: Record<string, unknown> = {}): void {
  const file = path.join(userDataDir, 'User', 'settings.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ ...QUIET_SETTINGS, ...settings }, null, 2) + '\n');
}

/** Installs a .vsix into an extensions dir with code-server's own CLI (about 2 s). */
export function installVsix(
  vsix: string,
  userDataDir: string,
  extensionsDir: string,
  env: NodeJS.ProcessEnv,
): void {
  if (!existsSync(vsix)) throw new Error(`${vsix} does not exist: run \`npm run package\` first`);
  const result = spawnSync(
    harness.node24,
    [
      harness.codeServerEntry,
      '--user-data-dir',
      userDataDir,
      '--extensions-dir',
      extensionsDir,
      '--install-extension',
      vsix,
      '--force',
    ],
    { env, encoding: 'utf8', timeout: 120_000 },
  );
  if (result.status !== 0) {
    throw new Error(`installing ${vsix} failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

const running = new Set<ChildProcess>();
// If this process dies without stopping its servers, do not leave them behind.
process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): boolean {
  try {
    if (child.pid) process.kill(-child.pid, signal);
    return true;
  } catch {
    return false; // the group is gone
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startCodeServer(options: CodeServerOptions = {}): Promise<CodeServer> {
  requireInstalled();
  const workDir = options.workDir ?? mkdtempSync(path.join(tmpdir(), 'pixels-code-server-'));
  mkdirSync(workDir, { recursive: true });
  const userDataDir = options.userDataDir ?? path.join(workDir, 'user-data');
  const extensionsDir = options.extensionsDir ?? path.join(workDir, 'extensions');
  mkdirSync(extensionsDir, { recursive: true });
  seedSettings(userDataDir, options.settings);
  const config = path.join(workDir, 'config.yaml');
  writeFileSync(config, 'auth: none\ncert: false\n');
  // code-server otherwise writes ~/.config/code-server/config.yaml.
  const env = { ...process.env, ...options.env, XDG_CONFIG_HOME: path.join(workDir, 'xdg') };

  const vsix = options.vsix ?? VSIX;
  if (vsix !== false) installVsix(vsix, userDataDir, extensionsDir, env);

  const port = options.port ?? (await freePort());
  const args = [
    harness.codeServerEntry,
    '--config',
    config,
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
  ];
  if (options.smokeTestDriver) args.push('--vscode-option', 'enable-smoke-test-driver');
  const logFile = path.join(workDir, 'code-server.log');
  const log = openSync(logFile, 'a');
  const child = spawn(harness.node24, args, { detached: true, stdio: ['ignore', log, log], env });
  closeSync(log);
  running.add(child);
  let exited = false;
  const exitedPromise = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exited = true;
      resolve(code);
    }),
  );

  const pid = child.pid;
  if (!pid) throw new Error('code-server did not start');
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (!running.delete(child)) return;
    killGroup(child, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (groupAlive(pid)) killGroup(child, 'SIGKILL');
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  while (!(await healthy(url))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(
        `code-server ${exited ? `exited (code ${child.exitCode})` : 'did not answer /healthz'} on ${url}; ` +
          `log ${logFile}:\n${tail(logFile)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, port, pid, workDir, userDataDir, extensionsDir, logFile, exited: exitedPromise, stop };
}
