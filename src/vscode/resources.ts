// CPU, memory and disk use of running sandboxes, read only when someone looks: a sandbox row's tooltip when it is
// hovered, and the "Show Details" view every few seconds while it is visible. Two samples give the CPU share.
import * as vscode from 'vscode';
import type { Sandbox, SandboxUsage } from '../core/sandbox';
import { userMessage } from '../core/errors';
import { CommandIds } from './commandIds';
import { registerCommand } from './commands/register';
import { checkpointsText, cpuPercent, formatDate, formatMemory, usageText, type UsageText } from './format';
import { answersOf, resolveSandbox } from './pick';
import type { Services } from './services';
import { egressOf } from './tree';

const DETAILS_REFRESH_MS = 3000;

export class ResourceMonitor {
  private readonly last = new Map<string, SandboxUsage>();
  /** Usage reads so far (the tests prove that a hidden view reads nothing). */
  reads = 0;

  constructor(private readonly services: Services) {}

  /** One sample, with the CPU share since the previous sample of the same sandbox; undefined where unsupported. */
  async sample(
    serverId: string,
    sandbox: Sandbox,
  ): Promise<{ usage: SandboxUsage; text: UsageText } | undefined> {
    if (sandbox.status !== 'running') return undefined;
    const backend = await this.services.registry.backend(serverId);
    if (!backend.usage) return undefined;
    const key = `${serverId}/${sandbox.name}`;
    this.reads++;
    const usage = await backend.usage(sandbox.name);
    const percent = cpuPercent(this.last.get(key), usage);
    this.last.set(key, usage);
    return { usage, text: usageText(usage, percent, sandbox.memoryMiB) };
  }
}

export interface DetailRow {
  label: string;
  value: string;
}

/** Everything the details view shows about a sandbox, freshly read. */
export async function sandboxDetails(
  services: Services,
  serverId: string,
  name: string,
): Promise<DetailRow[]> {
  const backend = await services.registry.backend(serverId);
  const [sandbox, checkpoints] = await Promise.all([backend.get(name), backend.listCheckpoints(name)]);
  const rows: DetailRow[] = [
    { label: 'Server', value: services.registry.server(serverId).label },
    { label: 'Status', value: sandbox.status },
    { label: 'Image', value: sandbox.image ?? 'unknown' },
    { label: 'CPU limit', value: sandbox.cpu ?? 'default' },
    { label: 'Memory limit', value: sandbox.memoryMiB ? formatMemory(sandbox.memoryMiB) : 'default' },
    { label: 'IP', value: [sandbox.ipv4, sandbox.ipv6].filter(Boolean).join(', ') || 'none' },
    {
      label: 'Egress',
      value:
        services.egressStatus.get(serverId, sandbox)?.policy.mode ??
        egressOf(sandbox) ??
        services.egress.get(serverId, name) ??
        'unknown',
    },
    { label: 'Checkpoints', value: checkpointsText(checkpoints) },
  ];
  if (sandbox.createdAt) rows.push({ label: 'Created', value: formatDate(sandbox.createdAt) });
  if (sandbox.status === 'running') {
    try {
      const sample = await services.resources.sample(serverId, sandbox);
      if (!sample)
        rows.push({ label: 'Use', value: `${services.registry.server(serverId).label} does not report it` });
      else {
        const t = sample.text;
        rows.push({ label: 'CPU use', value: t.cpu ?? 'not reported' });
        rows.push({ label: 'Memory use', value: t.memory ?? 'not reported' });
        rows.push({ label: 'Disk use', value: t.disk ?? 'not reported by this storage pool' });
        if (t.processes) rows.push({ label: 'Processes', value: t.processes });
      }
    } catch (err) {
      rows.push({ label: 'Use', value: `could not be read: ${userMessage(err)}` });
    }
  }
  return rows;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function detailsHtml(name: string, rows: DetailRow[], updated: Date): string {
  const body = rows
    .map((r) => `<tr><th>${escapeHtml(r.label)}</th><td>${escapeHtml(r.value)}</td></tr>`)
    .join('');
  return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<style>
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 12px 20px; }
th { text-align: left; font-weight: 600; padding: 4px 24px 4px 0; color: var(--vscode-descriptionForeground); }
td { padding: 4px 0; font-variant-numeric: tabular-nums; }
.updated { color: var(--vscode-descriptionForeground); margin-top: 12px; font-size: 90%; }
</style></head><body>
<h2>${escapeHtml(name)}</h2><table>${body}</table>
<div class="updated">Updated ${escapeHtml(updated.toLocaleTimeString())}; refreshed every ${DETAILS_REFRESH_MS / 1000} s while visible.</div>
</body></html>`;
}

/** One panel per sandbox; it reads the server only while it is visible. */
class DetailsPanel {
  private timer: NodeJS.Timeout | undefined;
  rows: DetailRow[] = [];

  constructor(
    private readonly services: Services,
    readonly serverId: string,
    readonly name: string,
    readonly panel: vscode.WebviewPanel,
    onDispose: () => void,
  ) {
    panel.onDidChangeViewState(() => this.schedule());
    panel.onDidDispose(() => {
      this.stop();
      onDispose();
    });
  }

  async render(): Promise<void> {
    try {
      this.rows = await sandboxDetails(this.services, this.serverId, this.name);
    } catch (err) {
      this.rows = [{ label: 'Error', value: userMessage(err) }];
    }
    this.panel.webview.html = detailsHtml(this.name, this.rows, new Date());
  }

  schedule(): void {
    if (!this.panel.visible) return this.stop();
    this.timer ??= setInterval(() => void this.render(), DETAILS_REFRESH_MS);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

const panels = new Map<string, DetailsPanel>();

/** The open details panels (the tests read their rows through the API). */
export function detailsPanels(): { serverId: string; name: string; visible: boolean; rows: DetailRow[] }[] {
  return [...panels.values()].map((p) => ({
    serverId: p.serverId,
    name: p.name,
    visible: p.panel.visible,
    rows: p.rows,
  }));
}

async function showDetails(services: Services, arg: unknown): Promise<DetailRow[]> {
  const target = await resolveSandbox(services, answersOf(arg), { placeHolder: 'Details of which sandbox?' });
  const key = `${target.serverId}/${target.name}`;
  let panel = panels.get(key);
  if (panel) panel.panel.reveal();
  else {
    const webview = vscode.window.createWebviewPanel(
      'pixels.details',
      `Sandbox ${target.name}`,
      vscode.ViewColumn.Active,
      { enableScripts: false },
    );
    panel = new DetailsPanel(services, target.serverId, target.name, webview, () => panels.delete(key));
    panels.set(key, panel);
  }
  await panel.render();
  panel.schedule();
  return panel.rows;
}

export function registerDetailsCommand(services: Services): void {
  registerCommand(services, CommandIds.showDetails, 'Show details', (arg) => showDetails(services, arg));
}
