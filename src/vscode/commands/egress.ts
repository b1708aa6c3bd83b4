// Egress policy commands: Show Egress Policy (a read-only document of what the sandbox itself says), Set Egress
// Mode…, Allow Domain…, Deny Domain…. Each runs one src/guest call in the sandbox and updates the tree's cache.
import * as vscode from 'vscode';
import type { HostGuardState } from '../../core/backend';
import { CancelledError, ValidationError } from '../../core/errors';
import type { EgressMode } from '../../core/sandbox';
import type { EgressStatus } from '../../guest/index';
import { CommandIds } from '../commandIds';
import { changeExecutor } from '../../workflows/egressTracker';
import {
  allowEgress,
  denyEgress,
  readEgress,
  setEgress,
  type EgressReport,
} from '../../workflows/egressPolicy';
import { workflowContext } from '../workflowContext';
import { loadGuest } from '../../workflows/lazy';
import { answersOf, resolveSandbox } from '../pick';
import { readProvisionSettings } from '../provisioning';
import type { Services } from '../services';
import { registerCommand } from './register';

const SCHEME = 'pixels-egress';

/** Read-only documents: the content of each egress report, by URI. */
class EgressDocuments implements vscode.TextDocumentContentProvider {
  private readonly docs = new Map<string, string>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  put(uri: vscode.Uri, text: string): void {
    this.docs.set(uri.toString(), text);
    this.emitter.fire(uri);
  }
  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? '';
  }
}

export function describeStatus(
  name: string,
  status: EgressStatus,
  guard?: HostGuardState,
  guardProblem?: string,
): string {
  const p = status.policy;
  const lines = [
    `# Egress policy of ${name}`,
    '',
    `- Mode: **${p.mode}**${status.missingPolicy ? ' (no policy file in the sandbox: nothing restricts it)' : ''}`,
    `- Enforced: ${status.enforced ? 'yes — the rules in the sandbox match the policy' : '**no — the rules do not match the policy**'}`,
  ];
  if (guard) lines.push(`- Host guard (${guard.mode}): ${guard.summary}`);
  if (guardProblem) lines.push(`- Host guard: **could not be put in line** — ${guardProblem}`);
  if (p.mode !== 'unrestricted') {
    lines.push(`- Addresses resolved from allowed domains: ${status.resolvedAddresses}`);
    if (status.provisioningSources > 0)
      lines.push(
        `- **Provisioning sources allowed for now: ${status.provisioningSources}** (provisioning is running, or stopped without closing them; they expire by themselves)`,
      );
    lines.push(
      `- DNS resolvers: ${p.resolvers.length ? p.resolvers.join(', ') : "the sandbox's resolv.conf"}`,
    );
    lines.push('', `## Allowed (${status.effective.length})`, '');
    if (p.mode === 'agent' && p.preset.length) {
      lines.push('### Agent preset', '', ...p.preset.map((e) => `- ${e}`), '');
    }
    lines.push('### Your entries', '', ...(p.allow.length ? p.allow.map((e) => `- ${e}`) : ['(none)']));
  }
  return `${lines.join('\n')}\n`;
}

async function target(services: Services, arg: unknown, placeHolder: string) {
  const a = answersOf(arg);
  const t = await resolveSandbox(services, a, { placeHolder, states: ['running'] });
  const backend = await services.registry.backend(t.serverId);
  return { a, ...t, backend };
}

export async function showEgressPolicy(
  services: Services,
  docs: EgressDocuments,
  arg: unknown,
): Promise<EgressReport> {
  const t = await target(services, arg, 'Show the egress policy of which sandbox?');
  const report = await readEgress(await workflowContext(services, t.serverId), t.name);
  if (t.a.open !== false) {
    const uri = vscode.Uri.from({ scheme: SCHEME, path: `/${t.serverId}/${t.name}-egress.md` });
    docs.put(uri, describeStatus(t.name, report, report.hostGuard, report.hostGuardProblem));
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(doc, 'markdown');
    await vscode.window.showTextDocument(doc, { preview: true });
  }
  return report;
}

async function pickMode(current: EgressMode | undefined, extra: string[]): Promise<EgressMode> {
  const guest = await loadGuest();
  const preset = guest.AGENT_PRESET.map((g) => `${g.label}: ${g.entries.join(', ')}`).join(' · ');
  const items: (vscode.QuickPickItem & { mode: EgressMode })[] = [
    { label: 'unrestricted', description: 'No restrictions', mode: 'unrestricted' },
    {
      label: 'agent',
      description: 'AI APIs, package registries, git hosts and tool installers',
      detail: `${preset}${extra.length ? ` · Your extra domains (pixels.egress.agentExtraDomains): ${extra.join(', ')}` : ''}`,
      mode: 'agent',
    },
    { label: 'allowlist', description: 'Only the domains and addresses you allow', mode: 'allowlist' },
  ];
  for (const i of items) if (i.mode === current) i.description = `${i.description ?? ''} (current)`;
  const chosen = await vscode.window.showQuickPick(items, {
    title: 'Set Egress Mode',
    placeHolder: 'Egress mode for the sandbox',
    matchOnDetail: true,
  });
  if (!chosen) throw new CancelledError();
  return chosen.mode;
}

export async function setEgressMode(services: Services, arg: unknown): Promise<EgressStatus> {
  const t = await target(services, arg, 'Set the egress mode of which sandbox?');
  const mode =
    typeof t.a.mode === 'string'
      ? t.a.mode
      : await pickMode(services.egress.get(t.serverId, t.name), readProvisionSettings().agentExtra);
  return setEgress(await workflowContext(services, t.serverId), t.name, mode);
}

export async function allowDomain(services: Services, arg: unknown): Promise<EgressStatus> {
  const t = await target(services, arg, 'Allow a domain for which sandbox?');
  const guest = await loadGuest();
  let entry = typeof t.a.entry === 'string' ? t.a.entry : undefined;
  if (entry === undefined) {
    entry = await vscode.window.showInputBox({
      title: `Allow Domain for "${t.name}"`,
      prompt: 'A domain (example.com, *.example.com), an address or a CIDR range',
      placeHolder: 'e.g. api.example.com or 203.0.113.0/24',
      validateInput: (v) => (v.trim() ? guest.egressEntryProblem(v.trim()) : undefined),
      ignoreFocusOut: true,
    });
    if (entry === undefined) throw new CancelledError();
  }
  return allowEgress(await workflowContext(services, t.serverId), t.name, entry);
}

export async function denyDomain(services: Services, arg: unknown): Promise<EgressStatus> {
  const t = await target(services, arg, 'Deny a domain for which sandbox?');
  let entry = typeof t.a.entry === 'string' ? t.a.entry : undefined;
  if (entry === undefined) {
    // Offer what the sandbox allows now (its own entries first); typing another entry is validated too.
    const guest = await loadGuest();
    const current = await guest.showEgress(await changeExecutor(t.backend, t.serverId, t.name, services.ssh));
    const items = [
      ...current.policy.allow.map((e) => ({ label: e, description: 'your entry' })),
      ...current.policy.preset.map((e) => ({ label: e, description: 'agent preset' })),
    ];
    if (items.length === 0)
      throw new ValidationError(`"${t.name}" allows nothing beyond its mode (${current.policy.mode}).`);
    const chosen = await vscode.window.showQuickPick(items, {
      title: `Deny Domain for "${t.name}"`,
      placeHolder: 'Remove which entry from the allow list?',
    });
    if (!chosen) throw new CancelledError();
    entry = chosen.label;
  }
  return denyEgress(await workflowContext(services, t.serverId), t.name, entry);
}

export function registerEgressCommands(services: Services): void {
  const docs = new EgressDocuments();
  services.context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(SCHEME, docs));
  registerCommand(services, CommandIds.showEgressPolicy, 'Show egress policy', (arg) =>
    showEgressPolicy(services, docs, arg),
  );
  registerCommand(services, CommandIds.setEgressMode, 'Set egress mode', (arg) =>
    setEgressMode(services, arg),
  );
  registerCommand(services, CommandIds.allowDomain, 'Allow domain', (arg) => allowDomain(services, arg));
  registerCommand(services, CommandIds.denyDomain, 'Deny domain', (arg) => denyDomain(services, arg));
}
