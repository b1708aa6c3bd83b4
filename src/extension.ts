// Entry point. Builds the services, registers views and commands; nothing else lives here. Activation is
// cheap: no server is contacted and neither the backends nor ssh2 are loaded until the view is shown.
import type * as vscode from 'vscode';
import { Services } from './vscode/services';
import { registerServerCommands } from './vscode/commands/server';
import { registerCertificateCommands } from './vscode/commands/certificate';
import { registerSandboxCommands } from './vscode/commands/sandbox';
import { registerCreateAndOpenCommand } from './vscode/commands/createAndOpen';
import { registerCheckpointCommands } from './vscode/commands/checkpoint';
import { registerCloneCommands } from './vscode/commands/clone';
import { registerBaseCommands } from './vscode/commands/bases';
import { registerSshCommands } from './vscode/commands/ssh';
import { registerSessionCommands } from './vscode/commands/sessions';
import { registerWorkCommands } from './vscode/commands/work';
import { registerSandboxFiles } from './vscode/sandboxFiles';
import { registerJumpHostCommands } from './vscode/commands/jumpHost';
import { registerProvisionCommands } from './vscode/commands/provision';
import { registerEgressCommands } from './vscode/commands/egress';
import { registerSandboxWindowCommands } from './vscode/sandboxWindow';
import { registerDetailsCommand } from './vscode/resources';
import { createApi, type PixelsApi } from './vscode/api';
import { registerAgentFeatures } from './vscode/agent';

let services: Services | undefined;

export function activate(context: vscode.ExtensionContext): PixelsApi {
  const started = performance.now();
  services = new Services(context);
  context.subscriptions.push(services);
  registerServerCommands(services);
  registerCertificateCommands(services);
  registerSandboxCommands(services);
  registerCreateAndOpenCommand(services);
  registerCheckpointCommands(services);
  registerCloneCommands(services);
  registerBaseCommands(services);
  registerSshCommands(services);
  registerSessionCommands(services);
  registerWorkCommands(services);
  registerSandboxFiles(services);
  registerJumpHostCommands(services);
  registerProvisionCommands(services);
  registerEgressCommands(services);
  registerSandboxWindowCommands(services);
  registerDetailsCommand(services);
  // The agent lifecycle policy, every minute; it contacts a server only when that server has agent sandboxes.
  services.bases.start();
  const agent = registerAgentFeatures(services);
  const activationMs = performance.now() - started;
  services.log.info(`activated in ${activationMs.toFixed(1)} ms`);
  return createApi(services, activationMs, agent);
}

export function deactivate(): void {
  services = undefined; // disposed through context.subscriptions, in reverse order of creation
}
