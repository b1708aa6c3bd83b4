// The editor as an agent host: the configured servers, their backends, commands as root over SSH (host key
// pinned here) or the Incus exec API, and the shared sandbox workflows (src/workflows), run with the user's
// defaults and never asking: the LM tool's confirmation or the MCP client's approval came first. Each phase shows
// as a notification, so the user sees what an agent does; the tool call's cancellation reaches cancellable phases.
import * as vscode from 'vscode';
import { BACKEND_PRODUCT } from '../core/backend';
import { UnsupportedError } from '../core/errors';
import { agentBases, agentLifecycle } from '../agent/bases';
import type { AgentHost, AgentWorkflows, CallContext, SandboxRef } from '../agent/host';
import { backendRunner, sshRunner, type SandboxRunner } from '../agent/runner';
import { cloneSandbox } from '../workflows/clone';
import type { RunPhase } from '../workflows/context';
import { createSandbox } from '../workflows/create';
import { destroySandbox } from '../workflows/destroy';
import { restoreCheckpoint } from '../workflows/restore';
import { withProgress } from './progress';
import type { Services } from './services';
import { workflowContext } from './workflowContext';

/**
 * A notification per phase (not cancellable from it); the tool call's own signal stops cancellable ones, and each
 * phase, step and job report also goes to the call's progress sink (an MCP client's notifications/progress).
 */
function toolRunPhase(call: CallContext | undefined): RunPhase {
  const tell = call?.progress;
  return (title, cancellable, task, quiet) => {
    tell?.(title);
    return withProgress(
      `Agent: ${title}`,
      false,
      (op, step) =>
        task(
          {
            signal: cancellable ? call?.signal : undefined,
            onProgress: (r) => {
              op.onProgress?.(r);
              if (r.description) tell?.(`${title}: ${r.description}`);
            },
          },
          (message) => {
            step(message);
            tell?.(`${title}: ${message}`);
          },
        ),
      quiet ? vscode.ProgressLocation.Window : vscode.ProgressLocation.Notification,
    );
  };
}

function workflows(services: Services): AgentWorkflows {
  const ctx = (serverId: string, call?: CallContext) =>
    workflowContext(services, serverId, toolRunPhase(call));
  return {
    create: async (serverId, name, image, call) => {
      const d = services.registry.settings.defaults;
      return createSandbox(await ctx(serverId, call), {
        name,
        image: image ?? d.image,
        cpu: d.cpu,
        memoryMiB: d.memoryMiB,
        egress: d.egress,
        provision: d.provision,
      });
    },
    clone: async (source, checkpoint, newName, call) =>
      cloneSandbox(await ctx(source.serverId, call), { source: source.name, checkpoint, name: newName }),
    restore: async (ref, checkpoint, call) => {
      // Sandboxes cloned from a later state are not destroyed for an agent: DependentClonesError goes back to it.
      await restoreCheckpoint(await ctx(ref.serverId, call), { name: ref.name, label: checkpoint });
    },
    destroy: async (ref, call) => destroySandbox(await ctx(ref.serverId, call), { name: ref.name }),
  };
}

export function editorAgentHost(services: Services): AgentHost {
  return {
    servers: () => services.registry.servers().map((s) => ({ id: s.id, label: s.label })),
    backend: (serverId) => services.registry.backend(serverId),
    async runner(ref: SandboxRef, signal?: AbortSignal): Promise<SandboxRunner> {
      const backend = await services.registry.backend(ref.serverId);
      if (await services.ssh.hostKey(ref.serverId, ref.name)) {
        const target = await services.ssh.readyTarget(backend, ref.serverId, ref.name, signal, 'root');
        return sshRunner(await services.ssh.pool(), target);
      }
      if (backend.exec) return backendRunner(backend, ref.name, backend.exec);
      throw new UnsupportedError(
        `Sandbox "${ref.name}" has no SSH access from this editor, and ${BACKEND_PRODUCT[backend.kind]} cannot run commands without it. Ask the user to run "Pixels: Set Up SSH Access…" on "${ref.name}", then try again.`,
      );
    },
    workflows: workflows(services),
    bases: agentBases(services.bases.service),
    lifecycle: agentLifecycle(() => services.bases.agents()),
    changed: (serverId) => void services.refresh.refreshNow(serverId).catch(() => undefined),
  };
}
