// The bases' BaseWorkflows over the shared sandbox workflows (src/workflows): the same create (→ SSH access →
// egress → provisioning), clone (→ identity → egress re-check) and destroy the commands and tools run. vscode-free;
// the editor passes its WorkflowContext factory, and progress goes to the caller's callback.
import { loadGuest } from '../workflows/lazy';
import type { EgressMode } from '../core/sandbox';
import type { Executor } from '../guest/executor';
import { cloneSandbox, createSandbox, destroySandbox, plainRunPhase } from '../workflows/index';
import type { RunPhase, WorkflowContext } from '../workflows/context';
import type { BaseRunOptions, BaseWorkflows } from './bases';

export interface WorkflowAdapterDeps {
  /** The workflow context of a server, with `run` as its progress. */
  context(serverId: string, run: RunPhase): Promise<WorkflowContext>;
  /** Size and egress of a base's sandbox (the defaults of a new sandbox). */
  createDefaults(): { cpu: string; memoryMiB: number; egress: EgressMode };
}

function runPhaseOf(options: BaseRunOptions): RunPhase {
  return plainRunPhase(options.signal, (event) => options.progress?.(event.message ?? event.phase));
}

export function baseWorkflowsOf(deps: WorkflowAdapterDeps): BaseWorkflows {
  return {
    backend: async (serverId) => (await deps.context(serverId, plainRunPhase())).backend,
    async create(serverId, request, options) {
      const ctx = await deps.context(serverId, runPhaseOf(options));
      const d = deps.createDefaults();
      await createSandbox(ctx, {
        name: request.name,
        image: request.image,
        cpu: d.cpu,
        memoryMiB: d.memoryMiB,
        egress: d.egress,
        provision: true,
      });
    },
    async clone(serverId, source, newName, options) {
      const ctx = await deps.context(serverId, runPhaseOf(options));
      return cloneSandbox(ctx, { source: source.sandbox, checkpoint: source.checkpoint, name: newName });
    },
    async executor(serverId, name): Promise<Executor> {
      const ctx = await deps.context(serverId, plainRunPhase());
      const guest = await loadGuest();
      // Over SSH as root where the key is pinned (output streams line by line), else the exec API (Incus).
      if (await ctx.ssh.hostKey(serverId, name)) {
        const target = await ctx.ssh.readyTarget(ctx.backend, serverId, name, undefined, 'root');
        return guest.sshExecutor(await ctx.ssh.pool(), target);
      }
      return guest.executorFor(ctx.backend, name);
    },
    async destroy(serverId, name) {
      const ctx = await deps.context(serverId, plainRunPhase());
      await destroySandbox(ctx, { name });
    },
  };
}
