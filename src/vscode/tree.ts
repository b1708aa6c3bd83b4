// The sidebar tree: server -> sandboxes -> checkpoints. Rows are built from the SandboxStore only; this file
// never talks to a server except to list a sandbox's checkpoints when the backend did not include them.
import * as vscode from 'vscode';
import type { ServerConfig } from '../core/config';
import type { Checkpoint, Sandbox, SandboxStatus } from '../core/sandbox';
import { userMessage } from '../core/errors';
import { CommandIds } from './commandIds';
import { checkpointsText, formatAge, formatBytes, formatDate, formatMemory } from './format';
import type { ServerRegistry } from './servers';
import { sortCheckpoints, type SandboxStore } from './store';
import type { EgressMemory } from './egressMemory';
import type { EgressTracker } from '../workflows/egressTracker';
import type { Provisioning } from '../workflows/provisioning';
import type { StepView } from '../guest/index';
import type { ResourceMonitor } from './resources';
import type { BaseInfo } from '../bases/index';
import { baseItem, basesGroupItem } from './baseItems';
import type { SessionInfo } from '../guest/sessions';
import type { SessionService } from './sessions';

export interface ServerNode {
  type: 'server';
  serverId: string;
}
export interface SandboxNode {
  type: 'sandbox';
  serverId: string;
  sandbox: Sandbox;
  /** From the local cache: the server has not answered yet this session. */
  stale?: boolean;
}
export interface CheckpointNode {
  type: 'checkpoint';
  serverId: string;
  sandbox: string;
  checkpoint: Checkpoint;
  /** Labels of the checkpoints newer than this one (they go when it is restored). */
  newer: string[];
}
export interface InfoNode {
  type: 'info';
  serverId: string;
  message: string;
  kind: 'error' | 'empty';
}
/** One provisioning step, shown under its sandbox while it provisions (and after a failure). */
export interface StepNode {
  type: 'step';
  serverId: string;
  sandbox: string;
  step: StepView;
  index: number;
  total: number;
}

/** A cluster member of a server, when the tree groups sandboxes by member (setting pixels.tree.groupByMember). */
export interface MemberNode {
  type: 'member';
  serverId: string;
  member: string;
}

/** The "Bases" group under a server. */
export interface BasesNode {
  type: 'bases';
  serverId: string;
}
export interface BaseNode {
  type: 'base';
  serverId: string;
  base: BaseInfo;
}

/** What the tree shows of bases and agent sandboxes (src/vscode/bases.ts). */
export interface BasesView {
  infos(serverId: string): BaseInfo[];
  /** "by agent · stops in 12 min · destroyed in 3 h" for an agent sandbox. */
  lifecycleText(serverId: string, sandbox: Sandbox): string | undefined;
}

/** A persistent session (tmux) inside a running sandbox. */
export interface SessionNode {
  type: 'session';
  serverId: string;
  sandbox: string;
  session: SessionInfo;
}

export type PixelsNode =
  | ServerNode
  | MemberNode
  | SandboxNode
  | CheckpointNode
  | InfoNode
  | StepNode
  | BasesNode
  | BaseNode
  | SessionNode;

export type ViewState = 'noServers' | 'loading' | 'unreachable' | 'empty' | 'ok';

/** Sandboxes of a cluster without a member (none on a healthy cluster), grouped under this label. */
const UNPLACED = '(no member)';

function groupByMember(): boolean {
  return vscode.workspace.getConfiguration('pixels').get<boolean>('tree.groupByMember', false);
}

const STATUS_ICON: Record<SandboxStatus, [string, string | undefined]> = {
  running: ['vm-running', 'charts.green'],
  stopped: ['vm-outline', 'disabledForeground'],
  starting: ['vm-active', 'charts.yellow'],
  stopping: ['vm-active', 'charts.yellow'],
  frozen: ['debug-pause', 'charts.blue'],
  error: ['vm', 'charts.red'],
  unknown: ['question', 'disabledForeground'],
};

/** The egress mode the backend reports for a sandbox, if any (kept with the instance by the guest layer). */
export function egressOf(sandbox: Sandbox): string | undefined {
  return (
    sandbox.labels?.['pixels.egress'] ?? sandbox.labels?.['user.pixels.egress'] ?? sandbox.labels?.egress
  );
}

export class SandboxTreeProvider implements vscode.TreeDataProvider<PixelsNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<PixelsNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private filterText = '';
  private viewState: ViewState | undefined;
  private reasonText: string | undefined;
  private readonly subscriptions: { dispose(): void }[] = [];
  /** Bases and agent sandboxes; set once the bases feature is built. */
  basesView: BasesView | undefined;
  /** Shown above the tree (the active filter); set by the view owner. */
  onMessage: (message: string | undefined) => void = () => undefined;

  /** One node object per server: VS Code matches refreshed elements by identity. */
  private readonly serverNodes = new Map<string, ServerNode>();
  /** Per server, what decides the root level (reachable, has sandboxes), to refresh only what changed. */
  private readonly rootShape = new Map<string, string>();

  constructor(
    private readonly registry: ServerRegistry,
    private readonly store: SandboxStore,
    private readonly egress: EgressMemory,
    private readonly egressStatus: EgressTracker,
    private readonly provisioning: Provisioning,
    private readonly resources: ResourceMonitor,
    private readonly sessions: SessionService,
  ) {
    this.subscriptions.push(sessions.onDidChange(() => this.emitter.fire(undefined)));
    this.subscriptions.push(store.onDidChange((serverId) => this.onStoreChange(serverId)));
    // Both fire rarely (a policy read, a step changing state), so a full refresh is cheap.
    this.subscriptions.push(egressStatus.onDidChange(() => this.emitter.fire(undefined)));
    this.subscriptions.push(provisioning.onDidChange(() => this.emitter.fire(undefined)));
    this.subscriptions.push(registry.onDidChangeServers(() => this.emitter.fire(undefined)));
    this.subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('pixels.tree.groupByMember')) this.emitter.fire(undefined);
      }),
    );
  }

  private serverNode(serverId: string): ServerNode {
    let node = this.serverNodes.get(serverId);
    if (!node) {
      node = { type: 'server', serverId };
      this.serverNodes.set(serverId, node);
    }
    return node;
  }

  private shape(serverId: string): string {
    const state = this.store.state(serverId);
    return `${state.status === 'error'}:${this.visible(this.store.sandboxes(serverId)).length > 0}`;
  }

  /** A server's data changed: refresh its subtree, or the whole tree when the root level changes. */
  private onStoreChange(serverId: string | undefined): void {
    const node = serverId ? this.serverNodes.get(serverId) : undefined;
    if (
      !serverId ||
      !node ||
      this.rootShape.get(serverId) !== this.shape(serverId) ||
      this.viewState !== 'ok'
    ) {
      this.emitter.fire(undefined);
      return;
    }
    this.emitter.fire(node);
  }

  get filter(): string {
    return this.filterText;
  }

  /** Redraws every row (a base build moved on, the lifecycle countdowns). */
  refreshAll(): void {
    this.emitter.fire(undefined);
  }

  setFilter(text: string): void {
    this.filterText = text.trim();
    void vscode.commands.executeCommand('setContext', 'pixels.filtered', this.filterText !== '');
    this.emitter.fire(undefined);
  }

  get state(): ViewState | undefined {
    return this.viewState;
  }

  /** Why the servers cannot be listed, while the view is in the 'unreachable' state. */
  get reason(): string | undefined {
    return this.reasonText;
  }

  /** Fires when the view turns 'unreachable', with the reason (the welcome text itself is static). */
  onUnreachable: (reason: string) => void = () => undefined;

  private setState(state: ViewState, message?: string, reason?: string): void {
    // A message above the tree would hide the welcome content, so it is only used for the filter.
    this.onMessage(message);
    this.reasonText = reason;
    if (state === this.viewState) return;
    this.viewState = state;
    void vscode.commands.executeCommand('setContext', 'pixels.state', state);
    if (state === 'unreachable' && reason) this.onUnreachable(reason);
  }

  private visible(sandboxes: Sandbox[]): Sandbox[] {
    if (!this.filterText) return sandboxes;
    const f = this.filterText.toLowerCase();
    return sandboxes.filter((s) => s.name.toLowerCase().includes(f));
  }

  async getChildren(node?: PixelsNode): Promise<PixelsNode[]> {
    if (!node) return this.roots();
    if (node.type === 'server') return this.serverChildren(node.serverId);
    if (node.type === 'member') return this.memberChildren(node);
    if (node.type === 'sandbox')
      return [...this.stepNodes(node), ...this.sessionNodes(node), ...(await this.checkpointNodes(node))];
    if (node.type === 'bases')
      return (this.basesView?.infos(node.serverId) ?? []).map((base) => ({
        type: 'base',
        serverId: node.serverId,
        base,
      }));
    return [];
  }

  private async roots(): Promise<PixelsNode[]> {
    const servers = this.registry.servers();
    if (servers.length === 0) {
      this.setState('noServers');
      return [];
    }
    await this.store.cacheReady();
    if (servers.every((s) => this.store.state(s.id).status === 'idle' && !this.store.isStale(s.id)))
      this.setState('loading');
    // With last session's lists at hand, rows show at once (marked cached) and the answers replace them.
    const loaded = this.store.ensureLoaded();
    if (!servers.every((s) => this.store.canShowNow(s.id))) await loaded;
    const states = servers.map((s) => this.store.state(s.id));
    const errors = states.filter((s) => s.status === 'error');
    if (errors.length === servers.length) {
      const first = errors[0];
      this.setState(
        'unreachable',
        undefined,
        first.status === 'error' ? `${servers[0].label}: ${first.message}` : undefined,
      );
      return [];
    }
    const total = servers.reduce((n, s) => n + this.visible(this.store.sandboxes(s.id)).length, 0);
    // A server with no sandboxes still has rows to show when it has a Bases group: the welcome view would hide it.
    if (total === 0 && errors.length === 0 && !servers.some((s) => this.showsBases(s.id))) {
      this.setState('empty');
      return [];
    }
    this.setState('ok', this.filterText ? `Filter: "${this.filterText}"` : undefined);
    for (const s of servers) this.rootShape.set(s.id, this.shape(s.id));
    return servers.map((s) => this.serverNode(s.id));
  }

  /**
   * The Bases group shows once bases mean something on this server: one is configured, or one was built (or is
   * being built); the built-ins alone stay in the palette's Build Base… rather than add a row to every server.
   */
  private showsBases(serverId: string): boolean {
    return (this.basesView?.infos(serverId) ?? []).some((b) => !b.builtin || b.status !== 'missing');
  }

  private serverChildren(serverId: string): PixelsNode[] {
    const state = this.store.state(serverId);
    if (state.status === 'error') return [{ type: 'info', serverId, message: state.message, kind: 'error' }];
    const sandboxes = this.visible(this.store.sandboxes(serverId));
    const bases: PixelsNode[] = this.showsBases(serverId) ? [{ type: 'bases', serverId }] : [];
    if (sandboxes.length === 0)
      return [
        ...bases,
        {
          type: 'info',
          serverId,
          message: this.filterText ? 'No sandbox matches the filter' : 'No sandboxes yet',
          kind: 'empty',
        },
      ];
    const stale = this.store.isStale(serverId) || undefined;
    if (groupByMember() && sandboxes.some((s) => s.location)) {
      const members = [...new Set(sandboxes.map((s) => s.location ?? UNPLACED))].sort();
      return [...bases, ...members.map((member) => this.memberNode(serverId, member))];
    }
    return [
      ...bases,
      ...sandboxes.map((sandbox): PixelsNode => ({ type: 'sandbox', serverId, sandbox, stale })),
    ];
  }

  /** One node object per member (VS Code matches refreshed elements by identity). */
  private readonly memberNodes = new Map<string, MemberNode>();
  private memberNode(serverId: string, member: string): MemberNode {
    const key = `${serverId}/${member}`;
    let node = this.memberNodes.get(key);
    if (!node) {
      node = { type: 'member', serverId, member };
      this.memberNodes.set(key, node);
    }
    return node;
  }

  private memberChildren(node: MemberNode): PixelsNode[] {
    const stale = this.store.isStale(node.serverId) || undefined;
    return this.visible(this.store.sandboxes(node.serverId))
      .filter((s) => (s.location ?? UNPLACED) === node.member)
      .map((sandbox) => ({ type: 'sandbox', serverId: node.serverId, sandbox, stale }));
  }

  private memberItem(node: MemberNode): vscode.TreeItem {
    const item = new vscode.TreeItem(node.member, vscode.TreeItemCollapsibleState.Expanded);
    item.id = `member:${node.serverId}/${node.member}`;
    const sandboxes = this.store
      .sandboxes(node.serverId)
      .filter((s) => (s.location ?? UNPLACED) === node.member);
    const away = sandboxes.find((s) => s.memberAway)?.memberAway;
    item.iconPath = new vscode.ThemeIcon(
      away ? 'debug-disconnect' : 'server',
      away ? new vscode.ThemeColor('list.warningForeground') : undefined,
    );
    const counted = `${sandboxes.length} sandbox${sandboxes.length === 1 ? '' : 'es'}`;
    item.description = away ? `${counted} · away` : counted;
    item.tooltip = away ? `Cluster member ${node.member}: ${away}` : `Cluster member ${node.member}`;
    item.contextValue = away ? 'member+away' : 'member';
    return item;
  }

  private stepNodes(node: SandboxNode): StepNode[] {
    const run = this.provisioning.run(node.serverId, node.sandbox.name);
    if (!run || (!run.active && !run.failed)) return [];
    return run.steps.map((step, index) => ({
      type: 'step',
      serverId: node.serverId,
      sandbox: node.sandbox.name,
      step,
      index,
      total: run.steps.length,
    }));
  }

  private sessionNodes(node: SandboxNode): SessionNode[] {
    if (node.stale) return [];
    return (this.sessions.peek(node.serverId, node.sandbox) ?? []).map((session) => ({
      type: 'session',
      serverId: node.serverId,
      sandbox: node.sandbox.name,
      session,
    }));
  }

  /** How many members a server's list of sandboxes spans, per list (a new answer is a new list). */
  private readonly memberCounts = new WeakMap<readonly Sandbox[], number>();

  /**
   * The member to name on a row: only when this server's sandboxes sit on more than one member (on a one-member
   * cluster, or with everything on one member, it is the same word on every row) and the rows are not already
   * grouped by member. The tooltip always names it.
   */
  private memberOnRow(serverId: string, sandbox: Sandbox): string | undefined {
    if (!sandbox.location || groupByMember()) return undefined;
    const list = this.store.sandboxes(serverId);
    // Counted once per list, not once per row (a 1,000-sandbox cluster draws 1,000 rows).
    let count = this.memberCounts.get(list);
    if (count === undefined) {
      count = new Set(list.map((s) => s.location)).size;
      this.memberCounts.set(list, count);
    }
    return count > 1 ? sandbox.location : undefined;
  }

  /** What the row says about provisioning and egress: "provisioning", the real mode read from the sandbox. */
  private sandboxFacts(node: SandboxNode): SandboxFacts {
    const { serverId, sandbox } = node;
    const run = this.provisioning.run(serverId, sandbox.name);
    // A cached row asks nothing of its sandbox: the server has not said yet that it still exists.
    const status = node.stale ? undefined : this.egressStatus.get(serverId, sandbox);
    const guard = this.egressStatus.hostGuard(serverId, sandbox.name);
    return {
      hostGuard:
        guard?.mode === 'network'
          ? `on (${guard.network}) · ${guard.exceptions.length ? `except ${guard.exceptions.join(', ')}` : 'no exceptions'}`
          : undefined,
      provisioning: run?.active ? 'provisioning' : run?.failed ? 'provisioning failed' : undefined,
      lifecycle: node.stale ? undefined : this.basesView?.lifecycleText(serverId, sandbox),
      sessions: node.stale ? undefined : this.sessions.peek(serverId, sandbox)?.length,
      member: this.memberOnRow(serverId, sandbox),
      crowded: this.store.sandboxes(serverId).length > EXPANDED_UP_TO,
      egress: status?.policy.mode ?? egressOf(sandbox) ?? this.egress.get(serverId, sandbox.name),
      egressDetail: status
        ? `${status.policy.mode === 'unrestricted' ? 'unrestricted' : `${status.policy.mode} · ${status.effective.length} allowed`}${status.enforced ? '' : ' · NOT enforced'}`
        : undefined,
    };
  }

  private async checkpointNodes(node: SandboxNode): Promise<PixelsNode[]> {
    // One row with the reason, not an error per sandbox (TrueNAS 26 RC.1 refuses container snapshots).
    const unavailable = node.sandbox.checkpointsUnavailable;
    if (unavailable) return [{ type: 'info', serverId: node.serverId, message: unavailable, kind: 'empty' }];
    let checkpoints = node.sandbox.checkpoints;
    if (!checkpoints) {
      try {
        const backend = await this.registry.backend(node.serverId);
        checkpoints = sortCheckpoints(await backend.listCheckpoints(node.sandbox.name));
      } catch (err) {
        return [{ type: 'info', serverId: node.serverId, message: userMessage(err), kind: 'error' }];
      }
    }
    return checkpoints.map((checkpoint, i) => ({
      type: 'checkpoint',
      serverId: node.serverId,
      sandbox: node.sandbox.name,
      checkpoint,
      newer: checkpoints.slice(0, i).map((c) => c.label),
    }));
  }

  getTreeItem(node: PixelsNode): vscode.TreeItem {
    switch (node.type) {
      case 'server':
        return this.serverItem(
          this.registry.servers().find((s) => s.id === node.serverId),
          node.serverId,
        );
      case 'member':
        return this.memberItem(node);
      case 'sandbox':
        return sandboxItem(node, this.sandboxFacts(node));
      case 'step':
        return stepItem(node);
      case 'checkpoint':
        return checkpointItem(node);
      case 'session':
        return sessionItem(node);
      case 'info':
        return infoItem(node);
      case 'bases':
        return basesGroupItem(node.serverId, this.basesView?.infos(node.serverId) ?? []);
      case 'base':
        return baseItem(node.serverId, node.base);
    }
  }

  /**
   * On hover only: a running sandbox's tooltip gets its current CPU, memory and disk use (one state read), so
   * nothing is read for rows nobody looks at.
   */
  async resolveTreeItem(item: vscode.TreeItem, node: PixelsNode): Promise<vscode.TreeItem> {
    if (node.type !== 'sandbox' || node.sandbox.status !== 'running') return item;
    try {
      const sample = await this.resources.sample(node.serverId, node.sandbox);
      if (!sample || !(item.tooltip instanceof vscode.MarkdownString)) return item;
      const t = sample.text;
      const rows = [
        t.cpu && `| CPU use | ${escapeMd(t.cpu)} |`,
        t.memory && `| Memory use | ${escapeMd(t.memory)} |`,
        t.disk && `| Disk use | ${escapeMd(t.disk)} |`,
      ].filter(Boolean);
      // The rows go into the table, before its last row (the instance name).
      const lines = item.tooltip.value.split('\n');
      lines.splice(lines.length - 1, 0, ...(rows as string[]));
      item.tooltip = new vscode.MarkdownString(lines.join('\n'));
    } catch {
      // A hover is no place for an error: the tooltip stays as it was.
    }
    return item;
  }

  private serverItem(server: ServerConfig | undefined, serverId: string): vscode.TreeItem {
    const item = new vscode.TreeItem(server?.label ?? serverId, vscode.TreeItemCollapsibleState.Expanded);
    item.id = `server:${serverId}`;
    const state = this.store.state(serverId);
    const where =
      server?.kind === 'truenas'
        ? `TrueNAS · ${server.host}`
        : `Incus · ${server?.url ?? server?.socketPath ?? 'local'}`;
    if (state.status === 'error') {
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('charts.red'));
      item.description = 'unreachable';
      item.tooltip = new vscode.MarkdownString(
        `**${escapeMd(item.label as string)}** — ${escapeMd(where)}\n\n${escapeMd(state.message)}`,
      );
      item.contextValue = 'server+error';
    } else {
      const stale = this.store.isStale(serverId);
      item.iconPath = new vscode.ThemeIcon(
        stale ? 'history' : server?.kind === 'incus' ? 'server-environment' : 'server',
      );
      const count = this.store.sandboxes(serverId).length;
      const counted = `${count} sandbox${count === 1 ? '' : 'es'}`;
      item.description = stale ? `${counted} (cached)` : state.status === 'ok' ? counted : '';
      item.tooltip = new vscode.MarkdownString(
        `**${escapeMd(item.label as string)}** — ${escapeMd(where)}` +
          (stale ? '\n\nShowing the last known sandboxes until the server answers.' : ''),
      );
      item.contextValue = 'server';
    }
    return item;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.emitter.dispose();
  }
}

interface SandboxFacts {
  provisioning?: string;
  egress?: string;
  egressDetail?: string;
  /** The host-side layer, when it is on for this sandbox's network. */
  hostGuard?: string;
  /** An agent sandbox under the lifecycle policy: "by agent · stops in 12 min · destroyed in 3 h". */
  lifecycle?: string;
  /** How many persistent sessions it has (as last listed). */
  sessions?: number;
  /** The cluster member, when naming it on the row tells something (see memberOnRow). */
  member?: string;
  /** Its server has so many sandboxes that rows start collapsed (see EXPANDED_UP_TO). */
  crowded?: boolean;
}

/**
 * Up to this many sandboxes on a server, a sandbox's checkpoints (and sessions) show at once; beyond it rows start
 * collapsed: 1,000 sandboxes × 20 checkpoints opened would be 21,000 rows to scroll past to find a sandbox.
 */
const EXPANDED_UP_TO = 50;

const STEP_ICON: Record<StepView['state'], [string, string | undefined]> = {
  pending: ['circle-outline', 'disabledForeground'],
  running: ['sync~spin', 'charts.yellow'],
  done: ['pass', 'charts.green'],
  failed: ['error', 'charts.red'],
};

function stepItem(node: StepNode): vscode.TreeItem {
  const s = node.step;
  const item = new vscode.TreeItem(s.title, vscode.TreeItemCollapsibleState.None);
  item.id = `step:${node.serverId}/${node.sandbox}/${s.id}`;
  const [icon, color] = STEP_ICON[s.state];
  item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
  const took =
    s.durationMs !== undefined && !s.alreadyDone ? ` · ${Math.round(s.durationMs / 100) / 10} s` : '';
  item.description = `${s.alreadyDone ? 'done earlier' : s.state}${took} · ${node.index + 1}/${node.total}`;
  item.tooltip = s.error ?? `${s.title}: ${s.state}`;
  item.contextValue = `step+${s.state}`;
  item.command = { command: CommandIds.showLogs, title: 'Show Logs' };
  return item;
}

function sandboxItem(node: SandboxNode, facts: SandboxFacts): vscode.TreeItem {
  const s = node.sandbox;
  const egress = facts.egress;
  // Checkpoints listed with the sandboxes (both backends do) show at once, as in the README, unless the server is
  // crowded; a backend that needs a call per sandbox for them starts collapsed. VS Code remembers what the user
  // collapses. Provisioning always shows its steps.
  const hasChildren = (s.checkpoints?.length ?? 0) > 0 || (facts.sessions ?? 0) > 0;
  const state =
    facts.provisioning || (hasChildren && !facts.crowded)
      ? vscode.TreeItemCollapsibleState.Expanded
      : hasChildren || s.checkpoints === undefined || s.checkpointsUnavailable
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None;
  const item = new vscode.TreeItem(s.name, state);
  // A different id while provisioning, and once it has sessions: VS Code keeps a known row's collapsed state (a row
  // that had no children shows collapsed when it gets some), and the step rows and a new session must show.
  item.id = `sandbox:${node.serverId}/${s.name}${facts.provisioning ? '#provisioning' : facts.sessions ? '#sessions' : ''}`;
  const [icon, color] = STATUS_ICON[s.status] ?? STATUS_ICON.unknown;
  // A cached row is grey whatever its last state: it may not be true any more.
  const shade = node.stale ? 'disabledForeground' : color;
  item.iconPath = s.memberAway
    ? // Its member is away: the sandbox is not broken, it cannot be reached (and its last state is unknown).
      new vscode.ThemeIcon('debug-disconnect', new vscode.ThemeColor('list.warningForeground'))
    : new vscode.ThemeIcon(icon, shade ? new vscode.ThemeColor(shade) : undefined);
  const parts = [
    s.memberAway ? 'unreachable (member away)' : s.status === 'running' ? (s.ipv4 ?? 'no IP yet') : s.status,
  ];
  if (node.stale) parts.unshift('(cached)');
  if (facts.member) parts.push(facts.member);
  if (facts.provisioning) parts.push(facts.provisioning);
  if (egress) parts.push(egress);
  if (facts.lifecycle) parts.push(facts.lifecycle);
  item.description = parts.join(' · ');
  const rows = [
    `**${escapeMd(s.name)}** — ${s.status}`,
    '',
    `| | |`,
    `|---|---|`,
    `| Image | ${escapeMd(s.image ?? 'unknown')} |`,
    `| CPU | ${escapeMd(s.cpu ?? 'default')} |`,
    `| Memory | ${s.memoryMiB ? formatMemory(s.memoryMiB) : 'default'} |`,
    `| IP | ${escapeMd([s.ipv4, s.ipv6].filter(Boolean).join(', ') || 'none')} |`,
  ];
  if (egress) rows.push(`| Egress | ${escapeMd(facts.egressDetail ?? egress)} |`);
  if (facts.hostGuard) rows.push(`| Host guard | ${escapeMd(facts.hostGuard)} |`);
  if (facts.provisioning) rows.push(`| Provisioning | ${escapeMd(facts.provisioning)} |`);
  if (facts.lifecycle) rows.push(`| Lifecycle | ${escapeMd(facts.lifecycle)} |`);
  if (facts.sessions) rows.push(`| Sessions | ${facts.sessions} |`);
  if (s.checkpointsUnavailable) rows.push(`| Checkpoints | unavailable on this server |`);
  else if (s.checkpoints) rows.push(`| Checkpoints | ${escapeMd(checkpointsText(s.checkpoints))} |`);
  if (s.createdAt) rows.push(`| Created | ${formatDate(s.createdAt)} (${formatAge(s.createdAt)}) |`);
  if (s.location)
    rows.push(`| Member | ${escapeMd(s.memberAway ? `${s.location}: ${s.memberAway}` : s.location)} |`);
  // Inside a code span Markdown escapes are shown literally (`px\-agent`); instance names have no backticks.
  rows.push(`| Instance | \`${s.instanceName}\` |`);
  item.tooltip = new vscode.MarkdownString(rows.join('\n'));
  item.contextValue = `sandbox+${s.status}${s.ipv4 ? '+ip' : ''}${facts.provisioning === 'provisioning' ? '+provisioning' : ''}${facts.lifecycle ? '+agent' : ''}`;
  item.accessibilityInformation = {
    label: `Sandbox ${s.name}, ${[s.status, s.ipv4, egress].filter(Boolean).join(', ')}`,
  };
  return item;
}

function sessionItem(node: SessionNode): vscode.TreeItem {
  const s = node.session;
  const item = new vscode.TreeItem(s.name, vscode.TreeItemCollapsibleState.None);
  item.id = `session:${node.serverId}/${node.sandbox}/${s.name}`;
  const icon = s.kind === 'terminal' ? 'terminal' : s.kind === 'agent' ? 'hubot' : 'terminal-tmux';
  item.iconPath = s.running
    ? new vscode.ThemeIcon(icon, new vscode.ThemeColor('charts.green'))
    : new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('disabledForeground'));
  const state = s.running ? 'running' : `exited${s.exitCode !== undefined ? ` (code ${s.exitCode})` : ''}`;
  item.description = [
    state,
    s.command,
    `started ${formatAge(s.createdAt)}`,
    s.attached ? `${s.attached} attached` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  item.tooltip = new vscode.MarkdownString(
    [
      `**${escapeMd(s.name)}** — session in ${escapeMd(node.sandbox)}, ${state}`,
      '',
      s.command ? `Runs \`${s.command.replace(/`/g, "'")}\`` : '',
      '',
      `Started ${formatDate(s.createdAt)}. Closing its terminal or the window only detaches it; click to attach.`,
    ].join('\n'),
  );
  item.contextValue = `session+${s.running ? 'running' : 'exited'}`;
  item.command = { command: CommandIds.attachSession, title: 'Attach', arguments: [node] };
  item.accessibilityInformation = { label: `Session ${s.name}, ${state}` };
  return item;
}

function checkpointItem(node: CheckpointNode): vscode.TreeItem {
  const c = node.checkpoint;
  const item = new vscode.TreeItem(c.label, vscode.TreeItemCollapsibleState.None);
  item.id = `checkpoint:${node.serverId}/${node.sandbox}@${c.label}`;
  item.iconPath = new vscode.ThemeIcon('git-commit');
  const size = c.sizeBytes !== undefined ? formatBytes(c.sizeBytes) : undefined;
  // Age first: it is what tells checkpoints apart when the sidebar is narrow.
  item.description = [formatAge(c.createdAt), size].filter(Boolean).join(' · ');
  item.tooltip = new vscode.MarkdownString(
    [
      `**${escapeMd(c.label)}** — checkpoint of ${escapeMd(node.sandbox)}`,
      '',
      `Created ${formatDate(c.createdAt)}${size ? ` · ${size}` : ''}`,
      node.newer.length
        ? `\n\nRestoring it removes ${node.newer.length} newer checkpoint${node.newer.length === 1 ? '' : 's'}.`
        : '',
    ].join('\n'),
  );
  item.contextValue = 'checkpoint';
  item.accessibilityInformation = { label: `Checkpoint ${c.label}, ${item.description}` };
  return item;
}

function infoItem(node: InfoNode): vscode.TreeItem {
  const item = new vscode.TreeItem(node.message, vscode.TreeItemCollapsibleState.None);
  item.id = `info:${node.serverId}:${node.kind}`;
  if (node.kind === 'error') {
    item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));
    item.tooltip = `${node.message}\nClick to retry.`;
    item.command = {
      command: CommandIds.refresh,
      title: 'Retry',
      arguments: [{ type: 'server', serverId: node.serverId }],
    };
  } else {
    item.iconPath = new vscode.ThemeIcon('info');
    item.command = {
      command: CommandIds.createSandbox,
      title: 'Create Sandbox…',
      arguments: [{ type: 'server', serverId: node.serverId }],
    };
  }
  item.contextValue = 'info';
  return item;
}

export function escapeMd(text: string): string {
  return text.replace(/([\\`*_{}[\]()#+\-.!|<>])/g, '\\$1');
}
