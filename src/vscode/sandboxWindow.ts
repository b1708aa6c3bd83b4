// Inside a sandbox window (Remote-SSH to one of our aliases): a status bar item with the sandbox's name, egress
// mode and newest checkpoint's age; a click offers Checkpoint Now / Restore… / Show Egress Policy without going
// back to the local window. Which sandbox the window is decides sandboxOfRemoteAuthority() (src/core).
import * as vscode from 'vscode';
import { NotFoundError } from '../core/errors';
import { defaultCheckpointLabel } from '../core/names';
import { sandboxOfRemoteAuthority } from '../core/sandbox-alias';
import { CommandIds } from './commandIds';
import { sandboxWindowText } from './format';
import { registerCommand } from './commands/register';
import type { Services } from './services';
import { egressOf } from './tree';

/** Ages change by the minute at most (formatAge), so a minute is the finest refresh worth doing. */
const REFRESH_MS = 60_000;

export interface SandboxWindowState {
  serverId: string;
  name: string;
  text: string;
  tooltip: string;
}

/**
 * The window's remote authority: from the workspace (a Remote-SSH window's folders are vscode-remote URIs).
 * PIXELS_WINDOW_AUTHORITY stands in for it where a real Remote-SSH window cannot be opened (code-server in the
 * browser tests intercepts the switch).
 */
export function windowAuthority(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.PIXELS_WINDOW_AUTHORITY) return env.PIXELS_WINDOW_AUTHORITY;
  if (vscode.env.remoteName !== 'ssh-remote') return undefined;
  const uri = vscode.workspace.workspaceFile ?? vscode.workspace.workspaceFolders?.[0]?.uri;
  return uri?.scheme === 'vscode-remote' ? uri.authority : undefined;
}

export class SandboxWindowStatus implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private timer: NodeJS.Timeout | undefined;
  private current: SandboxWindowState | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly services: Services,
    private readonly authority: () => string | undefined = windowAuthority,
  ) {
    this.item = vscode.window.createStatusBarItem(
      'pixels.sandboxWindow',
      vscode.StatusBarAlignment.Left,
      100,
    );
    this.item.name = 'Pixels Sandbox';
    this.item.command = CommandIds.sandboxWindowActions;
    this.subscriptions.push(services.registry.onDidChangeServers(() => void this.update()));
    this.subscriptions.push(services.egressStatus.onDidChange(() => void this.update()));
    this.subscriptions.push(services.store.onDidChange(() => void this.update()));
  }

  /** Which sandbox this window is, if any (undefined in every other window). */
  target(): { serverId: string; name: string } | undefined {
    return sandboxOfRemoteAuthority(
      this.authority(),
      this.services.registry.servers().map((s) => s.id),
    );
  }

  /** What the item shows now (the tests read it through the API). */
  get state(): SandboxWindowState | undefined {
    return this.current;
  }

  /** Reads the sandbox and its checkpoints (two calls) and redraws; hides the item in other windows. */
  async update(): Promise<SandboxWindowState | undefined> {
    const target = this.target();
    void vscode.commands.executeCommand('setContext', 'pixels.inSandboxWindow', target !== undefined);
    if (!target) {
      this.current = undefined;
      this.item.hide();
      this.stopTimer();
      return undefined;
    }
    const { serverId, name } = target;
    const server = this.services.registry.server(serverId);
    try {
      const backend = await this.services.registry.backend(serverId);
      const [sandbox, checkpoints] = await Promise.all([backend.get(name), backend.listCheckpoints(name)]);
      const egress =
        this.services.egressStatus.get(serverId, sandbox)?.policy.mode ??
        egressOf(sandbox) ??
        this.services.egress.get(serverId, name);
      const newest = checkpoints.map((c) => c.createdAt).sort((a, b) => b.getTime() - a.getTime())[0];
      this.current = {
        serverId,
        name,
        text: sandboxWindowText(name, egress, newest),
        tooltip: `Pixels sandbox "${name}" on ${server.label} (${sandbox.status}). Click for Checkpoint Now, Restore… and Show Egress Policy.`,
      };
    } catch (err) {
      this.current = {
        serverId,
        name,
        text: `$(vm) ${name} · $(warning) ${err instanceof NotFoundError ? 'not found' : 'unreachable'}`,
        tooltip: `Pixels sandbox "${name}" on ${server.label}: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    this.item.text = this.current.text;
    this.item.tooltip = this.current.tooltip;
    this.item.show();
    this.startTimer();
    return this.current;
  }

  /** The click: the three things worth doing to the box from inside it. */
  async actions(choice?: string): Promise<unknown> {
    const target = this.target();
    if (!target) return undefined;
    const items = [
      { label: '$(git-commit) Checkpoint Now', id: 'checkpoint' },
      { label: '$(history) Restore…', id: 'restore' },
      { label: '$(shield) Show Egress Policy', id: 'egress' },
    ];
    const id =
      choice ??
      (
        await vscode.window.showQuickPick(items, {
          title: `Sandbox "${target.name}"`,
          placeHolder: 'What to do with this sandbox?',
        })
      )?.id;
    const answers = { server: target.serverId, name: target.name };
    let result: unknown;
    if (id === 'checkpoint')
      result = await vscode.commands.executeCommand(CommandIds.createCheckpoint, {
        ...answers,
        label: defaultCheckpointLabel(),
      });
    else if (id === 'restore')
      result = await vscode.commands.executeCommand(CommandIds.restoreCheckpoint, answers);
    else if (id === 'egress')
      result = await vscode.commands.executeCommand(CommandIds.showEgressPolicy, answers);
    await this.update();
    return result;
  }

  private startTimer(): void {
    this.timer ??= setInterval(() => {
      // Only a focused window's item is looked at: a background window does not poll its server.
      if (vscode.window.state.focused) void this.update();
    }, REFRESH_MS);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stopTimer();
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}

/** The item's click target; also shows the item when this window is a sandbox's. */
export function registerSandboxWindowCommands(services: Services): void {
  registerCommand(services, CommandIds.sandboxWindowActions, 'Sandbox action', (arg) =>
    services.sandboxWindow.actions(typeof arg === 'string' ? arg : undefined),
  );
  void services.sandboxWindow.update();
}
