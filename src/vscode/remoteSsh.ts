// "Open in Sandbox": an SSH entry for the sandbox (in a file we own, included from the user's SSH config),
// remote.SSH.remotePlatform = linux for it, then vscode.openFolder on vscode-remote://ssh-remote+<alias>/<path>.
import { join } from 'node:path';
import * as vscode from 'vscode';
import { CancelledError, ValidationError } from '../core/errors';
import type { Sandbox } from '../core/sandbox';
import { loadSsh } from '../workflows/lazy';
import { pixelsSshDir } from '../workflows/sshAccess';
import type { Services } from './services';

/** Remote-SSH implementations that understand the ssh-remote authority: VS Code, VSCodium (open-remote-ssh), Cursor. */
export const REMOTE_SSH_EXTENSIONS = [
  'ms-vscode-remote.remote-ssh',
  'jeanp413.open-remote-ssh',
  'anysphere.remote-ssh',
];

export function installedRemoteSsh(): string | undefined {
  return REMOTE_SSH_EXTENSIONS.find((id) => vscode.extensions.getExtension(id) !== undefined);
}

/** VS Code's own Remote-SSH on VS Code, open-remote-ssh elsewhere (VSCodium and code-server use Open VSX). */
export function preferredRemoteSsh(): string {
  return vscode.env.appName.includes('Visual Studio Code')
    ? REMOTE_SSH_EXTENSIONS[0]
    : REMOTE_SSH_EXTENSIONS[1];
}

export async function installRemoteSsh(id = preferredRemoteSsh()): Promise<void> {
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Installing ${id}…` },
    () => Promise.resolve(vscode.commands.executeCommand('workbench.extensions.installExtension', id)),
  );
}

/** The SSH config file Remote-SSH reads: our setting, else remote.SSH.configFile, else ~/.ssh/config (writer default). */
export function sshConfigPath(services: Services): string | undefined {
  return (
    services.registry.settings.ssh.configFile ||
    vscode.workspace.getConfiguration('remote.SSH').get<string>('configFile') ||
    undefined
  );
}

export interface OpenOptions {
  path?: string;
  newWindow?: boolean;
  /** Skip the Remote-SSH check (for hosts where another extension provides ssh-remote, and for tests). */
  requireRemoteSsh?: boolean;
}

export async function openInSandbox(
  services: Services,
  serverId: string,
  sandbox: Sandbox,
  options: OpenOptions,
): Promise<vscode.Uri> {
  if ((options.requireRemoteSsh ?? true) && !installedRemoteSsh()) {
    const id = preferredRemoteSsh();
    const choice = await vscode.window.showInformationMessage(
      `Opening a sandbox in the editor needs a Remote-SSH extension (${REMOTE_SSH_EXTENSIONS.join(', ')}). Install ${id}?`,
      'Install',
    );
    if (choice === 'Install') await installRemoteSsh(id);
    throw new CancelledError('Install Remote-SSH, then open the sandbox again.');
  }
  const path = options.path ?? `/home/${services.ssh.user}`;
  if (!path.startsWith('/')) throw new ValidationError(`"${path}" is not an absolute path.`);
  const alias = await writeSshEntry(services, serverId, sandbox);

  const remote = vscode.workspace.getConfiguration('remote.SSH');
  const platforms = { ...(remote.get<Record<string, string>>('remotePlatform') ?? {}) };
  if (platforms[alias] !== 'linux') {
    platforms[alias] = 'linux';
    try {
      await remote.update('remotePlatform', platforms, vscode.ConfigurationTarget.Global);
    } catch (err) {
      // Only possible without a Remote-SSH extension (the setting is not registered then).
      services.log.warn(
        `could not set remote.SSH.remotePlatform for ${alias}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  const uri = vscode.Uri.from({ scheme: 'vscode-remote', authority: `ssh-remote+${alias}`, path });
  services.log.info(`opening ${uri.toString(true)}${options.newWindow ? ' in a new window' : ''}`);
  await vscode.commands.executeCommand('vscode.openFolder', uri, {
    forceNewWindow: options.newWindow ?? false,
  });
  return uri;
}

/**
 * Writes (or refreshes) the sandbox's entry in our SSH config file, included from the user's: what Remote-SSH,
 * `ssh` and `git` use to reach `px-<name>.<server>` with the pinned host key. Returns the alias.
 */
export async function writeSshEntry(services: Services, serverId: string, sandbox: Sandbox): Promise<string> {
  const target = await services.ssh.target(serverId, sandbox); // running, has an IP, host key known
  const alias = services.ssh.alias(serverId, sandbox.name);
  await services.ssh.pinAddress(serverId, sandbox, target.hostKey);
  const identity = await services.ssh.identity();
  const ssh = await loadSsh();
  const writer = new ssh.SshConfigWriter({
    configPath: sshConfigPath(services),
    hostsPath: join(pixelsSshDir(), 'config'),
  });
  // Behind a jump host, OpenSSH goes the same way as our own connections: ProxyJump to an entry of ours whose key
  // is pinned under its alias (HostKeyAlias), whatever address it has.
  const warnings: string[] = [];
  let proxyJump: string | undefined;
  if (target.jump) {
    proxyJump = services.ssh.jumpAlias(serverId);
    const jumpEntry = await writer.upsertHost({
      alias: proxyJump,
      hostName: target.jump.host,
      port: target.jump.port,
      user: target.jump.username,
      identityFile: identity.privateKeyPath,
      knownHostsFile: services.ssh.knownHostsPath,
      hostKeyAlias: proxyJump,
    });
    warnings.push(...jumpEntry.warnings);
  }
  const sandboxEntry = await writer.upsertHost({
    alias,
    hostName: target.host,
    user: target.username,
    identityFile: identity.privateKeyPath,
    knownHostsFile: services.ssh.knownHostsPath,
    ...(proxyJump ? { proxyJump } : {}),
  });
  warnings.push(...sandboxEntry.warnings);
  for (const w of warnings) services.log.warn(`ssh config: ${w}`);
  if (warnings.length)
    void vscode.window
      .showWarningMessage(`SSH config: ${warnings[0]}`, 'Show Logs')
      .then((c) => c && services.log.show());

  return alias;
}
