// The egress mode Pixels put into each sandbox it created, kept in the extension's global state, so the tree can
// show it without running a command in every sandbox. A mode the server reports itself (Incus `user.pixels.egress`)
// wins; sandboxes made elsewhere show none.
import type * as vscode from 'vscode';
import type { EgressMode } from '../core/sandbox';

const KEY = 'pixels.egressModes';

export class EgressMemory {
  constructor(private readonly state: vscode.Memento) {}

  private all(): Record<string, EgressMode> {
    return this.state.get<Record<string, EgressMode>>(KEY) ?? {};
  }

  get(serverId: string, name: string): EgressMode | undefined {
    return this.all()[`${serverId}/${name}`];
  }

  async set(serverId: string, name: string, mode: EgressMode | undefined): Promise<void> {
    const all = { ...this.all() };
    if (mode) all[`${serverId}/${name}`] = mode;
    else delete all[`${serverId}/${name}`];
    await this.state.update(KEY, all);
  }
}
