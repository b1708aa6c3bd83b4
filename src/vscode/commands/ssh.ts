// Access: Open in Sandbox (current or new window), Open Folder in Sandbox…, Open Terminal, Run Command…,
// Install Remote-SSH.
import * as vscode from 'vscode';
import { CancelledError } from '../../core/errors';
import { confirmSetupSsh } from '../confirm';
import { withProgress } from '../progress';
import type { Sandbox } from '../../core/sandbox';
import type { SshTarget } from '../../ssh/index';
import { CommandIds } from '../commandIds';
import { answersOf, resolveSandbox, type Answers } from '../pick';
import { installRemoteSsh, openInSandbox } from '../remoteSsh';
import { loadSsh } from '../../workflows/lazy';
import type { Services } from '../services';
import { SandboxTerminal } from '../terminal';
import { checkCanSetUpSsh, setUpSshAccess } from '../../workflows/sshSetup';
import { workflowContext } from '../workflowContext';
import { registerCommand } from './register';
import { openPersistentTerminal, persistentTerminals, sessionVariables } from './sessions';

/** The walkthrough's "Open it in the editor" step completes on a real open, not on the command being run. */
function markOpened(): void {
  void vscode.commands.executeCommand('setContext', 'pixels.openedSandbox', true);
}

function names(vars: Record<string, string>): string {
  return Object.keys(vars).sort().join(', ');
}

async function runningSandbox(
  services: Services,
  a: Answers,
  placeHolder: string,
): Promise<{ serverId: string; sandbox: Sandbox }> {
  const target = await resolveSandbox(services, a, { placeHolder, states: ['running'] });
  // Fresh state: the IP may have changed since the tree loaded.
  const sandbox = await (await services.registry.backend(target.serverId)).get(target.name);
  return { serverId: target.serverId, sandbox };
}

/**
 * Right after a boot the sandbox may have no IP yet and sshd may not answer: wait (bounded, cancellable, shown in
 * the status bar) until it answers with the pinned key and our login works. Returns the fresh target.
 */
async function readyTarget(services: Services, serverId: string, name: string): Promise<SshTarget> {
  const backend = await services.registry.backend(serverId);
  return withProgress(
    `Waiting for SSH on "${name}"`,
    true,
    (op) => services.ssh.readyTarget(backend, serverId, name, op.signal),
    vscode.ProgressLocation.Window,
  );
}

async function open(services: Services, arg: unknown, newWindow: boolean, askPath: boolean): Promise<string> {
  const a = answersOf(arg);
  const { serverId, sandbox } = await runningSandbox(services, a, 'Open which sandbox?');
  let path = typeof a.path === 'string' ? a.path : undefined;
  if (path === undefined && askPath) {
    path = await vscode.window.showInputBox({
      title: `Open Folder in "${sandbox.name}"`,
      prompt: 'Absolute path inside the sandbox',
      value: `/home/${services.ssh.user}`,
      validateInput: (v) => (v.startsWith('/') ? undefined : 'Enter an absolute path, starting with /.'),
      ignoreFocusOut: true,
    });
    if (path === undefined) throw new CancelledError();
  }
  const withAddress = sandbox.ipv4
    ? sandbox
    : await withProgress(
        `Waiting for an IP address of "${sandbox.name}"`,
        true,
        async (op) =>
          services.ssh.waitForAddress(await services.registry.backend(serverId), sandbox.name, op.signal),
        vscode.ProgressLocation.Window,
      );
  const uri = await openInSandbox(services, serverId, withAddress, {
    path,
    newWindow: typeof a.newWindow === 'boolean' ? a.newWindow : newWindow,
    requireRemoteSsh: a.requireRemoteSsh === false ? false : true,
  });
  markOpened();
  return uri.toString(true);
}

async function openTerminal(services: Services, arg: unknown): Promise<vscode.Terminal> {
  const a = answersOf(arg);
  const { serverId, sandbox } = await runningSandbox(services, a, 'Open a terminal in which sandbox?');
  const ssh = await loadSsh();
  const target = await readyTarget(services, serverId, sandbox.name);
  // Setting (or a test's answer): the terminal is a tmux session that outlives the editor.
  if (typeof a.persistent === 'boolean' ? a.persistent : persistentTerminals()) {
    const terminal = await openPersistentTerminal(services, serverId, sandbox, target, a);
    markOpened();
    return terminal;
  }
  const vars = await sessionVariables(services);
  const pool = await services.ssh.pool();
  if (Object.keys(vars).length)
    services.log.info(`terminal ${sandbox.name}: session variables ${names(vars)}`);
  const terminal = vscode.window.createTerminal({
    name: `Pixels: ${sandbox.name}`,
    // Always a login shell like pixels console; with variables it is started through `env K=V … bash -l`.
    pty: new SandboxTerminal(
      pool,
      target,
      services.log,
      Object.keys(vars).length ? ssh.loginShellWithEnv(vars) : undefined,
    ),
    iconPath: new vscode.ThemeIcon('vm-running'),
  });
  terminal.show();
  markOpened();
  return terminal;
}

async function runCommand(services: Services, arg: unknown): Promise<number | undefined> {
  const a = answersOf(arg);
  const { serverId, sandbox } = await runningSandbox(services, a, 'Run a command in which sandbox?');
  let command = typeof a.command === 'string' ? a.command : undefined;
  if (command === undefined) {
    command = await vscode.window.showInputBox({
      title: `Run Command in "${sandbox.name}"`,
      prompt: `Runs as ${services.ssh.user} in a login shell; output goes to the Pixels log`,
      placeHolder: 'e.g. git status',
      validateInput: (v) => (v.trim() ? undefined : 'Enter a command.'),
      ignoreFocusOut: true,
    });
    if (command === undefined) throw new CancelledError();
  }
  const ssh = await loadSsh();
  const vars = await sessionVariables(services);
  const target = await readyTarget(services, serverId, sandbox.name);
  const pool = await services.ssh.pool();
  // Values are never logged (they may be tokens), only their names.
  const withVars = Object.keys(vars).length ? ` (session variables ${names(vars)})` : '';
  services.log.info(`${sandbox.name}$ ${command}${withVars}`);
  const line = ssh.loginCommandWithEnv(command, vars);
  if (a.showLogs !== false) services.log.show();
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: `Running in ${sandbox.name}` },
    () =>
      pool.exec(target, line, {
        onStdout: (chunk: Buffer) => services.log.append(chunk.toString('utf8')),
        onStderr: (chunk: Buffer) => services.log.append(chunk.toString('utf8')),
      }),
  );
  const code = result.exitCode;
  services.log.info(
    `${sandbox.name}: "${command}" exited with ${code ?? `signal ${result.signal ?? 'unknown'}`}`,
  );
  const message = `"${command}" in ${sandbox.name} exited with code ${code ?? 'none'}.`;
  if (code === 0) void vscode.window.showInformationMessage(message);
  else void vscode.window.showWarningMessage(message, 'Show Logs').then((c) => c && services.log.show());
  return code ?? undefined;
}

/** Gives a sandbox that was not created here (pixels CLI, another machine) a pinned host key and our user key. */
async function setupSsh(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, { placeHolder: 'Set up SSH access to which sandbox?' });
  const ctx = await workflowContext(services, target.serverId);
  await checkCanSetUpSsh(ctx);
  const running = (target.sandbox ?? (await ctx.backend.get(target.name))).status === 'running';
  if (!(await confirmSetupSsh(target.name, running, a.confirm))) return false;
  await setUpSshAccess(ctx, target.name, running);
  return true;
}

export function registerSshCommands(services: Services): void {
  registerCommand(services, CommandIds.openInSandbox, 'Open in sandbox', (arg) =>
    open(services, arg, false, false),
  );
  registerCommand(services, CommandIds.openInSandboxNewWindow, 'Open in sandbox', (arg) =>
    open(services, arg, true, false),
  );
  registerCommand(services, CommandIds.openFolderInSandbox, 'Open folder in sandbox', (arg) =>
    open(services, arg, false, true),
  );
  registerCommand(services, CommandIds.openTerminal, 'Open terminal', (arg) => openTerminal(services, arg));
  registerCommand(services, CommandIds.runCommand, 'Run command', (arg) => runCommand(services, arg));
  registerCommand(services, CommandIds.setupSsh, 'Set up SSH access', (arg) => setupSsh(services, arg));
  registerCommand(services, CommandIds.installRemoteSsh, 'Install Remote-SSH', () => installRemoteSsh());
}
