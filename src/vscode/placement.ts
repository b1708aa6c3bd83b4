// Where a new sandbox goes on an Incus cluster (Create, Clone). Nothing is asked unless the user wants to choose:
// the server's `placement` setting is 'auto' (Incus chooses, the default), a member or `@group` (always there), or
// 'ask' (a pick of the members and groups, with "let Incus choose" first).
import * as vscode from 'vscode';
import type { Backend } from '../core/backend';
import { CancelledError, ValidationError } from '../core/errors';
import type { Services } from './services';

/** `answer` is a command argument's `target` (tests, other extensions): it wins over the setting. */
export async function choosePlacement(
  services: Services,
  serverId: string,
  backend: Backend,
  answer: unknown,
  what: string,
): Promise<string | undefined> {
  const setting = typeof answer === 'string' ? answer : services.registry.server(serverId).placement;
  if (setting === undefined || setting === 'auto') return undefined;
  if (!(await backend.capabilities()).clusterMembers) {
    if (setting === 'ask') return undefined; // one host: nothing to choose
    throw new ValidationError(
      `Cannot place ${what} on "${setting}": ${services.registry.server(serverId).label} is not a cluster.`,
    );
  }
  if (setting !== 'ask') return setting;
  const info = await backend.info();
  const items: (vscode.QuickPickItem & { target?: string })[] = [
    { label: 'Let Incus choose', description: 'the member with the fewest instances' },
    ...(info.clusterMembers ?? []).map((m) => ({ label: m, description: 'cluster member', target: m })),
    ...(info.clusterGroups ?? []).map((g) => ({
      label: `@${g}`,
      description: 'member group',
      target: `@${g}`,
    })),
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: `Place ${what} on which cluster member?`,
    ignoreFocusOut: true,
  });
  if (!picked) throw new CancelledError();
  return picked.target;
}
