// Tree rows of the "Bases" group: one row per base with its status (not built / building · step / ready · built
// 3 h ago / failed · reason / incomplete), and the context values the base commands' menus match.
import * as vscode from 'vscode';
import type { BaseInfo } from '../bases/index';
import { formatAge, formatDate } from './format';

const ICONS: Record<BaseInfo['status'], [string, string | undefined]> = {
  missing: ['circle-large-outline', 'disabledForeground'],
  building: ['sync~spin', 'charts.yellow'],
  ready: ['layers-active', 'charts.green'],
  incomplete: ['warning', 'list.warningForeground'],
  failed: ['error', 'charts.red'],
};

function statusText(b: BaseInfo): string {
  switch (b.status) {
    case 'missing':
      return 'not built';
    case 'building':
      return `building · ${b.step ?? 'starting'}`;
    case 'ready':
      return b.lastCheckpoint ? `ready · built ${formatAge(b.lastCheckpoint.createdAt)}` : 'ready';
    case 'incomplete':
      return 'incomplete: no checkpoint (rebuild it)';
    case 'failed':
      return `failed · ${firstLine(b.error ?? 'unknown reason')}`;
  }
}

function firstLine(text: string): string {
  const line = text.split('\n')[0];
  return line.length > 120 ? `${line.slice(0, 117)}…` : line;
}

export function basesGroupItem(serverId: string, infos: BaseInfo[]): vscode.TreeItem {
  const item = new vscode.TreeItem('Bases', vscode.TreeItemCollapsibleState.Collapsed);
  item.id = `bases:${serverId}`;
  item.iconPath = new vscode.ThemeIcon('layers');
  const ready = infos.filter((b) => b.status === 'ready').length;
  const building = infos.filter((b) => b.status === 'building').length;
  item.description = [`${ready}/${infos.length} ready`, building ? `${building} building` : '']
    .filter(Boolean)
    .join(' · ');
  item.tooltip =
    'Bases are sandboxes built once (provisioning and a setup script, then a checkpoint) that new sandboxes are cloned from, ready in seconds. Defined by [mcp.bases.<name>] in the pixels config, plus the built-ins dev, python and node.';
  item.contextValue = 'bases';
  return item;
}

export function baseItem(serverId: string, b: BaseInfo): vscode.TreeItem {
  const item = new vscode.TreeItem(b.name, vscode.TreeItemCollapsibleState.None);
  // The id changes with the status so VS Code redraws the row's icon and description at once.
  item.id = `base:${serverId}/${b.name}`;
  const [icon, color] = ICONS[b.status];
  item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
  item.description = statusText(b);
  const from = b.parentImage ? `image ${b.parentImage}` : `base ${b.from}`;
  const rows = [
    `**${b.name}**${b.builtin ? ' (built-in)' : ''} — ${statusText(b)}`,
    '',
    b.description ?? '',
    '',
    `Built from ${from}; sandbox \`px-${b.sandboxName}\`.`,
  ];
  if (b.lastCheckpoint)
    rows.push(`\nCheckpoint \`${b.lastCheckpoint.label}\` of ${formatDate(b.lastCheckpoint.createdAt)}.`);
  if (b.status === 'failed' && b.error) rows.push('\n```\n' + b.error.replace(/```/g, "'''") + '\n```');
  item.tooltip = new vscode.MarkdownString(rows.join('\n'));
  item.contextValue = `base+${b.status}`;
  item.accessibilityInformation = { label: `Base ${b.name}, ${statusText(b)}` };
  return item;
}
