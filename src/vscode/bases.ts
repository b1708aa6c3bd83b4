// The editor's side of bases and the agent lifecycle policy: one BaseService over the shared workflows, the list of
// agent sandboxes in the extension's storage, the policy run every minute, and what the tree shows of both.
import { join } from 'node:path';
import * as vscode from 'vscode';
import {
  AgentSandboxStore,
  BaseService,
  LifecycleEnforcer,
  describeDeadlines,
  lifecycleDeadlines,
  systemClock,
  type AgentLifecycleConfig,
  type BaseFailure,
  type BaseInfo,
  type Clock,
  type LifecycleAction,
} from '../bases/index';
import { baseWorkflowsOf } from '../bases/workflowAdapter';
import type { Sandbox } from '../core/sandbox';
import { destroySandbox, plainRunPhase } from '../workflows/index';
import type { Services } from './services';
import { workflowContext } from './workflowContext';

const ENFORCE_EVERY_MS = 60_000;

/** The policy's limits: the settings when set, else `[mcp] idle_stop_after` / `hard_destroy_after`. */
export function agentLifecycle(services: Services): AgentLifecycleConfig {
  const fromToml = services.registry.settings.bases.lifecycle;
  const c = vscode.workspace.getConfiguration('pixels.agents');
  const minutes = c.inspect<number>('idleStopMinutes');
  const hours = c.inspect<number>('maxAgeHours');
  const set = (i: typeof minutes) => i?.globalValue ?? i?.workspaceValue ?? i?.workspaceFolderValue;
  const idle = set(minutes);
  const age = set(hours);
  return {
    idleStopAfterMs: typeof idle === 'number' && idle >= 0 ? idle * 60_000 : fromToml.idleStopAfterMs,
    maxAgeMs: typeof age === 'number' && age >= 0 ? age * 3_600_000 : fromToml.maxAgeMs,
  };
}

/** Where the failed builds are kept between sessions (the extension's global state). */
const FAILURES_KEY = 'pixels.bases.failures';

/** The stored failures, or none when what is stored is not a list of them (an older or damaged entry). */
function storedFailures(value: unknown): BaseFailure[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (f): f is BaseFailure =>
      typeof f === 'object' &&
      f !== null &&
      typeof (f as BaseFailure).serverId === 'string' &&
      typeof (f as BaseFailure).base === 'string' &&
      typeof (f as BaseFailure).error === 'string' &&
      typeof (f as BaseFailure).at === 'number',
  );
}

export class BasesFeature implements vscode.Disposable {
  readonly service: BaseService;
  private store: AgentSandboxStore | undefined;
  private readonly storeReady: Promise<AgentSandboxStore>;
  private enforcerInstance: LifecycleEnforcer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: { dispose(): void }[] = [];

  constructor(
    private readonly services: Services,
    readonly clock: Clock = systemClock,
  ) {
    const workflows = baseWorkflowsOf({
      context: (serverId, run) => workflowContext(services, serverId, run),
      createDefaults: () => {
        const d = services.registry.settings.defaults;
        return { cpu: d.cpu, memoryMiB: d.memoryMiB, egress: d.egress };
      },
    });
    this.storeReady = AgentSandboxStore.open(
      join(services.context.globalStorageUri.fsPath, 'agent-sandboxes.json'),
      clock,
      (m) => services.log.warn(m),
    )
      .catch(async (err: unknown) => {
        services.log.warn(
          `the agent sandbox list could not be read (${String(err)}); it is kept in memory only`,
        );
        return AgentSandboxStore.open(undefined, clock);
      })
      .then((store) => (this.store = store));
    this.service = new BaseService({
      workflows,
      config: () => services.registry.settings.bases,
      agents: () => this.storeReady,
      clock,
      log: services.log,
      failures: {
        initial: storedFailures(services.context.globalState.get(FAILURES_KEY)),
        save: (all) => void services.context.globalState.update(FAILURES_KEY, all),
      },
    });
    this.subscriptions.push(this.service.onDidChange(() => services.tree.refreshAll()));
  }

  /** The agent sandbox list, once read. */
  agents(): Promise<AgentSandboxStore> {
    return this.storeReady;
  }

  private async enforcer(): Promise<LifecycleEnforcer> {
    const store = await this.storeReady;
    const services = this.services;
    this.enforcerInstance ??= new LifecycleEnforcer({
      store,
      clock: this.clock,
      policy: () => agentLifecycle(services),
      servers: () => services.registry.servers().map((s) => s.id),
      list: async (serverId) => (await services.registry.backend(serverId)).list(),
      stop: async (serverId, name) => (await services.registry.backend(serverId)).stop(name),
      destroy: async (serverId, name) => {
        const ctx = await workflowContext(services, serverId, plainRunPhase());
        await destroySandbox(ctx, { name, ip: services.store.find(serverId, name)?.ipv4 });
      },
      log: services.log,
    });
    return this.enforcerInstance;
  }

  /** Starts the policy: one round now, then every minute (which also moves the tree's countdowns on). */
  start(): void {
    const round = () =>
      void this.enforceNow().catch((err: unknown) => this.services.log.warn(`lifecycle: ${String(err)}`));
    round();
    this.timer = setInterval(round, ENFORCE_EVERY_MS);
  }

  /** One round of the policy now; the tree shows what it did. */
  async enforceNow(): Promise<LifecycleAction[]> {
    const actions = await (await this.enforcer()).enforce();
    for (const id of new Set(actions.filter((a) => !a.error).map((a) => a.serverId)))
      await this.services.refresh.refreshNow(id);
    // The countdowns move on; with no agent sandbox there is nothing to redraw.
    const store = await this.storeReady;
    if (this.services.registry.servers().some((s) => store.list(s.id).length > 0))
      this.services.tree.refreshAll();
    return actions;
  }

  /** Base rows for the tree, from the sandboxes already listed. */
  infos(serverId: string): BaseInfo[] {
    return this.service.describe(serverId, this.services.store.sandboxes(serverId));
  }

  /** "by agent · stops in 12 min · destroyed in 3 h" for an agent sandbox's row, else undefined. */
  lifecycleText(serverId: string, sandbox: Sandbox): string | undefined {
    const record = this.store?.get(serverId, sandbox.name);
    if (!record) return undefined;
    const when = describeDeadlines(
      lifecycleDeadlines(record, sandbox.status, agentLifecycle(this.services)),
      this.clock.now(),
    );
    // Not just "agent": that is also an egress mode, shown on the same row.
    const who = record.by === 'agent' ? 'by agent' : 'lifecycle policy';
    return when ? `${who} · ${when}` : who;
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subscriptions) s.dispose();
  }
}
