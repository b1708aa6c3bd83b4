// The editor as an agent host: the configured servers, their backends, commands as root over SSH (host key
// pinned here) or the Incus exec API, and the sandbox workflows the commands run (never asking: the LM tool's
// confirmation or the MCP client's approval came first).
import { BACKEND_PRODUCT } from '../core/backend';
import { UnsupportedError, ValidationError } from '../core/errors';
import type { Sandbox } from '../core/sandbox';
import type { AgentHost, AgentWorkflows, SandboxRef } from '../agent/host';
import { backendRunner, sshRunner, type SandboxRunner } from '../agent/runner';
import { cloneSandbox } from './commands/clone';
import { restoreCheckpoint } from './commands/checkpoint';
import { createSandbox, destroySandbox } from './commands/sandbox';
import type { Services } from './services';

function made(sandbox: Sandbox | undefined, what: string): Sandbox {
  if (!sandbox) throw new ValidationError(`The ${what} did not complete.`);
  return sandbox;
}

function workflows(services: Services): AgentWorkflows {
  return {
    create: async (serverId, name, image) =>
      made(await createSandbox(services, { server: serverId, name, image, announce: false }), 'create'),
    clone: async (source, checkpoint, newName) =>
      made(
        await cloneSandbox(services, {
          server: source.serverId,
          name: source.name,
          label: checkpoint,
          newName,
        }),
        'clone',
      ),
    restore: async (ref, checkpoint) => {
      // Sandboxes cloned from a later state are not destroyed for an agent: the refusal goes back to it.
      const done = await restoreCheckpoint(services, {
        server: ref.serverId,
        name: ref.name,
        label: checkpoint,
        confirm: true,
        dependents: 'refuse',
      });
      if (!done) throw new ValidationError(`Sandbox "${ref.name}" was not restored.`);
    },
    destroy: async (ref) => {
      await destroySandbox(services, { server: ref.serverId, name: ref.name, confirm: true });
    },
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
    changed: (serverId) => void services.refresh.refreshNow(serverId).catch(() => undefined),
  };
}
