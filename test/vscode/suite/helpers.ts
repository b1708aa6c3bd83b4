// Shared by the Pixels extension-host suites (not a test file itself): the extension's API, settings seeding,
// and waiting for asynchronous state.
import * as vscode from 'vscode';
import type { PixelsApi } from '../../../src/vscode/api';
import type { PixelsNode } from '../../../src/vscode/tree';

export const EXTENSION_ID = 'pixels-dev.pixels-vscode';
export const API_KEY = '1-' + 'a'.repeat(64);

export async function pixelsApi(): Promise<PixelsApi> {
  const ext = vscode.extensions.getExtension<PixelsApi>(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

export interface TestServer {
  id: string;
  kind: 'truenas' | 'incus';
  label?: string;
  host?: string;
  port?: number;
  username?: string;
  secure?: boolean;
}

export async function setServers(servers: TestServer[]): Promise<void> {
  await vscode.workspace
    .getConfiguration('pixels')
    .update('servers', servers, vscode.ConfigurationTarget.Global);
  await sleep(50); // the registry reloads on onDidChangeConfiguration
}

export function simServer(port: number, id = 'sim'): TestServer {
  return {
    id,
    kind: 'truenas',
    label: 'Simulator',
    host: '127.0.0.1',
    port,
    secure: false,
    username: 'truenas_admin',
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

/** Sandbox rows under a server node, by name. */
export async function sandboxRows(api: PixelsApi, serverId: string): Promise<Map<string, PixelsNode>> {
  await vscode.commands.executeCommand('pixels.refresh', { server: serverId });
  const roots = await api.treeChildren();
  const server = roots.find((n) => n.type === 'server' && n.serverId === serverId);
  if (!server) return new Map();
  const rows = await api.treeChildren(server);
  return new Map(rows.flatMap((n) => (n.type === 'sandbox' ? [[n.sandbox.name, n] as const] : [])));
}

export async function showView(): Promise<void> {
  await vscode.commands.executeCommand('workbench.view.extension.pixels');
}

/**
 * Open Terminal on a sandbox, type one line into its shell, then press a key at the "[exit code N …]" line so the
 * terminal closes; returns the exit code VS Code kept (undefined when it did not close within 20 s).
 */
export async function terminalRoundTrip(
  server: string,
  name: string,
  line: string,
): Promise<number | undefined> {
  const api = await pixelsApi();
  const terminal = (await vscode.commands.executeCommand('pixels.openTerminal', { server, name })) as
    vscode.Terminal | undefined;
  if (!terminal) throw new Error(`Open Terminal failed: ${api.lastError()?.message}`);
  const closed = new Promise<vscode.Terminal>((resolve) => {
    const sub = vscode.window.onDidCloseTerminal((t) => {
      if (t === terminal) {
        sub.dispose();
        resolve(t);
      }
    });
  });
  await sleep(1500); // the shell's prompt
  terminal.sendText(line);
  await sleep(1500); // "[exit code N — press any key to close]"
  terminal.sendText('x', false);
  const t = await Promise.race([closed, sleep(20_000).then(() => undefined)]);
  if (!t) throw new Error('the terminal did not close after a key press');
  return t.exitStatus?.code;
}
