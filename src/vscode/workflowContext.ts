// The editor's WorkflowContext: the services behind the workflows (src/workflows), progress as a notification
// (or the status bar for quick phases), and the tree refreshed when a workflow changed the server's sandboxes.
import * as vscode from 'vscode';
import type { RunPhase, WorkflowContext } from '../workflows/context';
import { withProgress } from './progress';
import { readProvisionSettings } from './provisioning';
import { sshConfigPath } from './remoteSsh';
import type { Services } from './services';
import { removeGitRemotes } from './commands/work';

export const notificationRunPhase: RunPhase = (title, cancellable, task, quiet) =>
  withProgress(
    title,
    cancellable,
    task,
    quiet ? vscode.ProgressLocation.Window : vscode.ProgressLocation.Notification,
  );

/**
 * The workflows' dependencies for one server. `run` replaces the notification (a tool reports its progress to
 * its caller and passes its own cancellation: see plainRunPhase in src/workflows/progress.ts).
 */
export async function workflowContext(
  services: Services,
  serverId: string,
  run: RunPhase = notificationRunPhase,
): Promise<WorkflowContext> {
  const backend = await services.registry.backend(serverId);
  return {
    serverId,
    serverLabel: services.registry.server(serverId).label,
    backend,
    ssh: services.ssh,
    egress: services.egress,
    egressStatus: services.egressStatus,
    provisioning: services.provisioning,
    log: services.log,
    run,
    sshConfigPath: sshConfigPath(services),
    egressInputs: () => ({
      allow: services.registry.settings.defaults.allow,
      agentExtra: readProvisionSettings().agentExtra,
      defaultMode: services.registry.settings.defaults.egress,
    }),
    links: {
      destroyed: async (id, name) => {
        await services.sessions.forget(id, name);
        await removeGitRemotes(services, id, name);
      },
    },
    changed: () => services.refresh.refreshNow(serverId),
  };
}
