// When the tree reloads: on server events (debounced), on a slow backup poll, and on manual Refresh. Nothing
// happens while the view is hidden; changes seen meanwhile are loaded once when it shows again.
import type * as vscode from 'vscode';
import type { Backend, BackendChange } from '../core/backend';
import type { Log } from './log';
import type { ServerRegistry } from './servers';
import type { SandboxStore } from './store';

export const EVENT_DEBOUNCE_MS = 300;

export class RefreshController implements vscode.Disposable {
  private readonly debounce = new Map<string, NodeJS.Timeout>();
  private readonly dirty = new Set<string>();
  private readonly subscriptions: { dispose(): void }[] = [];
  private poll: NodeJS.Timeout | undefined;
  private visible = false;

  constructor(
    private readonly registry: ServerRegistry,
    private readonly store: SandboxStore,
    private readonly log: Log,
  ) {
    this.subscriptions.push(registry.onDidCreateBackend((b) => this.watch(b)));
    this.subscriptions.push(
      registry.onDidChangeServers(() => {
        this.store.prune();
        this.restartPoll();
        if (this.visible) void this.store.load();
        else for (const s of this.registry.servers()) this.dirty.add(s.id);
      }),
    );
  }

  /** Attaches to a tree view's visibility. */
  attach(view: vscode.TreeView<unknown>): void {
    this.subscriptions.push(view.onDidChangeVisibility((e) => this.setVisible(e.visible)));
    this.setVisible(view.visible);
  }

  setVisible(visible: boolean): void {
    if (visible === this.visible) return;
    this.visible = visible;
    this.log.trace(`view ${visible ? 'shown' : 'hidden'}`);
    if (visible) {
      const stale = [...this.dirty];
      this.dirty.clear();
      for (const id of stale) void this.store.load(id);
    }
    this.restartPoll();
  }

  /** Manual Refresh: immediate, even for a hidden view. */
  refreshNow(serverId?: string): Promise<void> {
    if (serverId) this.dirty.delete(serverId);
    else this.dirty.clear();
    return this.store.load(serverId);
  }

  private watch(backend: Backend): void {
    const serverId = backend.serverId;
    this.subscriptions.push(backend.onDidChange((change) => this.onChange(serverId, change)));
  }

  private onChange(serverId: string, change: BackendChange): void {
    this.log.trace(`server ${serverId}: ${change.kind} changed${change.name ? ` (${change.name})` : ''}`);
    if (!this.visible) {
      this.dirty.add(serverId);
      return;
    }
    clearTimeout(this.debounce.get(serverId));
    this.debounce.set(
      serverId,
      setTimeout(() => {
        this.debounce.delete(serverId);
        void this.store.load(serverId);
      }, EVENT_DEBOUNCE_MS),
    );
  }

  private restartPoll(): void {
    clearInterval(this.poll);
    this.poll = undefined;
    if (!this.visible || this.registry.servers().length === 0) return;
    const ms = this.registry.settings.refreshIntervalSeconds * 1000;
    this.poll = setInterval(() => void this.store.load(), ms);
  }

  dispose(): void {
    clearInterval(this.poll);
    for (const t of this.debounce.values()) clearTimeout(t);
    for (const s of this.subscriptions) s.dispose();
  }
}
