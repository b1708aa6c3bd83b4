// What activate() returns: a small API for the extension-host tests (and other extensions) to inspect the tree
// data and seed an API key without a password prompt. No secret ever comes back out of it.
import * as vscode from 'vscode';
import type { AgentFeatures } from './agent';
import { lastReportedError } from './errors';
import { loadedLayers } from '../workflows/lazy';
import { detailsPanels } from './resources';
import type { Services } from './services';
import type { PixelsNode, ViewState } from './tree';

export interface PixelsApi {
  /** How long activate() took, in ms. */
  readonly activationMs: number;
  /** Which lazy layers ('truenas', 'incus', 'ssh') have been loaded so far. */
  loadedLayers(): string[];
  /** Stores a server's API key in SecretStorage. */
  setApiKey(serverId: string, apiKey: string): Promise<void>;
  /** Whether SecretStorage holds an API key for the server (the key itself never comes out). */
  hasApiKey(serverId: string): Promise<boolean>;
  /** The tree's children of `node` (root when absent), exactly what the view shows. */
  treeChildren(node?: PixelsNode): Promise<PixelsNode[]>;
  /** The tree row for a node: label, description, contextValue, icon id and colour. */
  treeItem(node: PixelsNode): {
    label: string;
    description?: string;
    contextValue?: string;
    icon?: string;
    color?: string;
    tooltip?: string;
    /** 0 none, 1 collapsed, 2 expanded (vscode.TreeItemCollapsibleState). */
    collapsible?: number;
  };
  /** The welcome state the view is in. */
  viewState(): ViewState | undefined;
  /** Why the view is 'unreachable' (server label and reason), if it is. */
  viewReason(): string | undefined;
  /** The last failure a command reported to the user. */
  lastError(): { action: string; message: string } | undefined;
  /** Problems found in the settings, the pixels TOML file and PIXELS_* variables ("file:line (key): message"). */
  configProblems(): string[];
  /** Whether the tree view is visible. */
  viewVisible(): boolean;
  /** The last or current provisioning run of a sandbox in this session: step states and notification headlines. */
  provisionRun(
    serverId: string,
    name: string,
  ):
    | {
        steps: Array<{ id: string; title: string; state: string; alreadyDone: boolean }>;
        headlines: string[];
        active: boolean;
        failed?: string;
      }
    | undefined;
  /** Where the last known sandboxes per server are kept (the tree shows them until a server answers). */
  sandboxCacheFile(): string;
  /** Egress policy reads done for the tree so far, and the warnings shown after restore/clone re-checks. */
  egressReads(): number;
  egressWarnings(): string[];
  /** Re-decides which sandbox this window is (PIXELS_WINDOW_AUTHORITY or the Remote-SSH folder) and returns what its status bar item shows. */
  /** The tooltip a hover shows (with the resource use VS Code asks for on hover). */
  hoverTooltip(node: PixelsNode): Promise<string | undefined>;
  /** The open "Show Details" panels and what they show; resource reads done so far. */
  detailsPanels(): {
    serverId: string;
    name: string;
    visible: boolean;
    rows: { label: string; value: string }[];
  }[];
  resourceReads(): number;
  /** Session listing calls made to sandboxes so far (one per sandbox per look, never one per session). */
  sessionListCalls(): number;
  sandboxWindow(): Promise<{ serverId: string; name: string; text: string; tooltip: string } | undefined>;
  /** What a registered language model tool's prepareInvocation returns for `input` (its confirmation, if any). */
  prepareToolInvocation(
    tool: string,
    input: object,
  ): Promise<{ invocationMessage?: string; title?: string; message?: string } | undefined>;
  /** Where the MCP server listens, once started (the token never comes out of here). */
  mcpUrl(): Promise<string>;
}

export function createApi(services: Services, activationMs: number, agent: AgentFeatures): PixelsApi {
  return {
    activationMs,
    loadedLayers,
    setApiKey: (serverId, apiKey) => services.keys.store(serverId, apiKey),
    hasApiKey: async (serverId) => (await services.keys.get(serverId)) !== undefined,
    treeChildren: (node) => services.tree.getChildren(node),
    treeItem: (node) => {
      const item = services.tree.getTreeItem(node);
      const icon = item.iconPath as { id?: string; color?: { id?: string } } | undefined;
      const tooltip = item.tooltip;
      return {
        label: typeof item.label === 'string' ? item.label : (item.label?.label ?? ''),
        description: typeof item.description === 'string' ? item.description : undefined,
        contextValue: item.contextValue,
        icon: icon?.id,
        color: icon?.color?.id,
        tooltip: typeof tooltip === 'string' ? tooltip : tooltip?.value,
        collapsible: item.collapsibleState,
      };
    },
    viewState: () => services.tree.state,
    viewReason: () => services.tree.reason,
    lastError: lastReportedError,
    viewVisible: () => services.view.visible,
    configProblems: () => services.registry.problemLines(),
    provisionRun: (serverId, name) => {
      const run = services.provisioning.run(serverId, name);
      if (!run) return undefined;
      return {
        steps: run.steps.map(({ id, title, state, alreadyDone }) => ({ id, title, state, alreadyDone })),
        headlines: [...run.headlines],
        active: run.active,
        failed: run.failed,
      };
    },
    sandboxCacheFile: () => services.cachePath,
    egressReads: () => services.egressStatus.reads,
    egressWarnings: () => [...services.egressStatus.warnings],
    sandboxWindow: () => services.sandboxWindow.update(),
    sessionListCalls: () => services.sessions.listCalls,
    hoverTooltip: async (node) => {
      const item = await services.tree.resolveTreeItem(services.tree.getTreeItem(node), node);
      const tooltip = item.tooltip;
      return typeof tooltip === 'string' ? tooltip : tooltip?.value;
    },
    detailsPanels,
    resourceReads: () => services.resources.reads,
    prepareToolInvocation: async (tool, input) => {
      const impl = agent.lmTools.get(tool);
      if (!impl?.prepareInvocation) throw new Error(`No language model tool ${tool} with prepareInvocation.`);
      const token = new vscode.CancellationTokenSource().token;
      const prepared = await impl.prepareInvocation({ input }, token);
      if (!prepared) return undefined;
      const text = (v: string | vscode.MarkdownString | undefined) => (typeof v === 'string' ? v : v?.value);
      return {
        invocationMessage: text(prepared.invocationMessage),
        title: prepared.confirmationMessages?.title,
        message: text(prepared.confirmationMessages?.message),
      };
    },
    mcpUrl: () => agent.mcp.start(),
  };
}
