// The bases (src/bases) as the agent tools see them: list_bases rows, and create_sandbox with `base` as a clone of
// the base's newest checkpoint put under the agent lifecycle policy. The agent sandbox list is touched on every
// call in a sandbox, so the idle time counts from an agent's last action.
import type { AgentSandboxStore, BaseService } from '../bases/index';
import type { AgentBases, AgentLifecycle } from './host';

export function agentBases(service: BaseService): AgentBases {
  return {
    list: async (serverId) =>
      (await service.list(serverId)).map((b) => ({
        serverId,
        name: b.name,
        description: b.description,
        status: b.status,
        error: b.status === 'incomplete' ? 'its sandbox has no checkpoint: rebuild it' : b.error,
        lastCheckpoint: b.lastCheckpoint?.label,
      })),
    createFrom: (serverId, base, name, call) =>
      service.createFromBase(serverId, base, {
        name,
        agent: true,
        signal: call?.signal,
        progress: call?.progress,
      }),
  };
}

export function agentLifecycle(store: () => Promise<AgentSandboxStore>): AgentLifecycle {
  return {
    created: async (serverId, name) => {
      await (await store()).mark(serverId, name, { by: 'agent' });
    },
    touched: async (serverId, name) => {
      await (await store()).touch(serverId, name);
    },
    destroyed: async (serverId, name) => {
      await (await store()).forget(serverId, name);
    },
  };
}
