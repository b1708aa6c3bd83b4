// The lifecycle policy of sandboxes made by agents (pixels' reaper): a running one with no activity for
// `idleStopAfterMs` is stopped, and any older than `maxAgeMs` is destroyed. It applies only to sandboxes in the
// AgentSandboxStore (made through the agent tools, or handed over by a person on purpose), never to the rest.
// Time comes from an injected clock, so the policy is tested without waiting.
import type { Sandbox, SandboxStatus } from '../core/sandbox';
import type { AgentLifecycleConfig } from '../core/basesConfig';
import { formatRemaining } from '../core/duration';
import type { AgentSandboxRecord, AgentSandboxStore } from './agentStore';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface LifecycleDeadlines {
  /** When the sandbox is stopped unless something happens in it first (running sandboxes only). */
  stopsAt?: number;
  /** When it is destroyed. */
  destroyedAt?: number;
}

export function lifecycleDeadlines(
  record: AgentSandboxRecord,
  status: SandboxStatus,
  policy: AgentLifecycleConfig,
): LifecycleDeadlines {
  const out: LifecycleDeadlines = {};
  if (status === 'running' && policy.idleStopAfterMs > 0)
    out.stopsAt = record.lastActivityAt + policy.idleStopAfterMs;
  if (policy.maxAgeMs > 0) out.destroyedAt = record.createdAt + policy.maxAgeMs;
  return out;
}

/** What the policy does to the sandbox now: destroy wins over stop. */
export function lifecycleDue(
  record: AgentSandboxRecord,
  status: SandboxStatus,
  policy: AgentLifecycleConfig,
  now: number,
): 'destroy' | 'stop' | undefined {
  const d = lifecycleDeadlines(record, status, policy);
  if (d.destroyedAt !== undefined && now >= d.destroyedAt) return 'destroy';
  if (d.stopsAt !== undefined && now >= d.stopsAt) return 'stop';
  return undefined;
}

/** "stops in 12 min · destroyed in 3 h" for the tree (undefined when the policy does nothing to it). */
export function describeDeadlines(d: LifecycleDeadlines, now: number): string | undefined {
  const parts: string[] = [];
  if (d.stopsAt !== undefined) parts.push(`stops in ${formatRemaining(d.stopsAt - now)}`);
  if (d.destroyedAt !== undefined) parts.push(`destroyed in ${formatRemaining(d.destroyedAt - now)}`);
  return parts.length ? parts.join(' · ') : undefined;
}

export interface LifecycleAction {
  serverId: string;
  name: string;
  action: 'stop' | 'destroy';
  reason: string;
  /** Set when the action failed (it is tried again on the next round). */
  error?: string;
}

export interface LifecycleEnforcerDeps {
  store: AgentSandboxStore;
  clock: Clock;
  policy: () => AgentLifecycleConfig;
  /** The servers to look at. */
  servers: () => string[];
  /** The server's sandboxes; a failure skips that server this round (nothing is forgotten on a failed list). */
  list: (serverId: string) => Promise<Sandbox[]>;
  stop: (serverId: string, name: string) => Promise<void>;
  /** Destroys the sandbox and whatever this machine keeps for it (SSH entries, remembered state). */
  destroy: (serverId: string, name: string) => Promise<void>;
  /** A sandbox a tool call is working in right now is left alone this round. */
  isBusy?: (serverId: string, name: string) => boolean;
  log?: { info(m: string): void; warn(m: string): void };
}

/** Runs the policy over every agent sandbox once per call (the editor calls it on a timer). */
export class LifecycleEnforcer {
  private readonly lastStatus = new Map<string, SandboxStatus>();
  private running: Promise<LifecycleAction[]> | undefined;

  constructor(private readonly deps: LifecycleEnforcerDeps) {}

  /** One round; a round still going is joined rather than doubled. */
  enforce(): Promise<LifecycleAction[]> {
    this.running ??= this.round().finally(() => (this.running = undefined));
    return this.running;
  }

  private async round(): Promise<LifecycleAction[]> {
    const { store, clock, log } = this.deps;
    const policy = this.deps.policy();
    const actions: LifecycleAction[] = [];
    for (const serverId of this.deps.servers()) {
      const records = store.list(serverId);
      if (!records.length) continue;
      let sandboxes: Sandbox[];
      try {
        sandboxes = await this.deps.list(serverId);
      } catch (err) {
        log?.warn(`lifecycle: could not list the sandboxes of ${serverId}: ${message(err)}`);
        continue;
      }
      const byName = new Map(sandboxes.map((s) => [s.name, s]));
      for (const record of records) {
        const key = `${serverId}/${record.name}`;
        const sandbox = byName.get(record.name);
        if (!sandbox) {
          // Destroyed some other way: nothing left to look after.
          await store.forget(serverId, record.name);
          this.lastStatus.delete(key);
          continue;
        }
        // Started again after a stop (by a person or a tool): that is activity, the idle time starts anew.
        const before = this.lastStatus.get(key);
        this.lastStatus.set(key, sandbox.status);
        let current = record;
        if (before !== undefined && before !== 'running' && sandbox.status === 'running')
          current = (await store.touch(serverId, record.name)) ?? record;
        const now = clock.now();
        const due = lifecycleDue(current, sandbox.status, policy, now);
        if (!due || this.deps.isBusy?.(serverId, record.name)) continue;
        const reason =
          due === 'destroy'
            ? `older than the maximum age (${formatRemaining(policy.maxAgeMs)})`
            : `idle for ${formatRemaining(now - current.lastActivityAt)}`;
        const action: LifecycleAction = { serverId, name: record.name, action: due, reason };
        try {
          if (due === 'destroy') {
            await this.deps.destroy(serverId, record.name);
            await store.forget(serverId, record.name);
            this.lastStatus.delete(key);
          } else {
            await this.deps.stop(serverId, record.name);
            this.lastStatus.set(key, 'stopped');
          }
          log?.info(
            `lifecycle: ${due === 'destroy' ? 'destroyed' : 'stopped'} agent sandbox ${record.name} (${reason})`,
          );
        } catch (err) {
          action.error = message(err);
          log?.warn(`lifecycle: could not ${due} agent sandbox ${record.name}: ${action.error}`);
        }
        actions.push(action);
      }
    }
    return actions;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
