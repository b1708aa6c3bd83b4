// The provisioning settings (pixels.provision.*, pixels.egress.agentExtraDomains) as src/workflows/provisioning
// takes them.
import * as vscode from 'vscode';
import type { DownloadSources, ToolSpec } from '../guest/index';
import type { ProvisionInputs } from '../workflows/provisioning';
import type { ServerRegistry } from './servers';

/** `node@lts`, `npm:@openai/codex@latest`, `npm:opencode-ai` (version `latest`). */
export function parseToolSetting(entry: string): ToolSpec {
  const at = entry.lastIndexOf('@');
  const versioned = at > 0 && entry[at - 1] !== ':' && entry[at - 1] !== '/';
  return versioned
    ? { name: entry.slice(0, at), version: entry.slice(at + 1) }
    : { name: entry, version: 'latest' };
}

type ProvisionSettings = Omit<ProvisionInputs, 'allow' | 'imageEnv'>;

export function readProvisionSettings(): ProvisionSettings {
  const c = vscode.workspace.getConfiguration('pixels');
  const sources: Partial<DownloadSources> = {};
  const url = (key: string) => c.get<string>(key)?.trim() || undefined;
  const mise = url('provision.miseInstallerUrl');
  if (mise) sources.miseInstallerUrl = mise;
  const npm = url('provision.npmRegistry');
  if (npm) sources.npmRegistry = npm;
  const node = url('provision.nodeMirror');
  if (node) sources.nodeMirror = node;
  const apt = url('provision.aptMirror');
  if (apt) sources.aptMirror = apt;
  const seconds = c.get<Record<string, number>>('provision.stepTimeoutSeconds') ?? {};
  const timeouts: Record<string, number> = {};
  for (const [id, s] of Object.entries(seconds)) timeouts[id] = s * 1000;
  return {
    tools: (c.get<string[]>('provision.tools') ?? []).map(parseToolSetting),
    packages: c.get<string[] | null>('provision.packages') ?? undefined,
    setupScript: c.get<string>('provision.setupScript')?.trim() || undefined,
    timeouts,
    sources,
    agentExtra: c.get<string[]>('egress.agentExtraDomains') ?? [],
  };
}

/** What provisioning installs, from the settings and the pixels configuration (read at each run). */
export function provisionInputs(registry: ServerRegistry): ProvisionInputs {
  const s = readProvisionSettings();
  return { ...s, allow: registry.settings.defaults.allow, imageEnv: registry.settings.env.image };
}
