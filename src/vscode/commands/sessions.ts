// Persistent sessions: Start Agent in Sandbox…, Attach to Session, Stop Session, and the persistent Open Terminal.
import * as vscode from 'vscode';
import { CancelledError, NotFoundError, UnsupportedError } from '../../core/errors';
import type { Sandbox } from '../../core/sandbox';
import type { SessionInfo, SessionKind } from '../../guest/sessions';
import type { SshTarget } from '../../ssh/index';
import { CommandIds } from '../commandIds';
import { confirmStopSession } from '../confirm';
import { loadGuest, loadSsh } from '../../workflows/lazy';
import { answersOf, resolveSshReady, type Answers } from '../pick';
import { withProgress } from '../progress';
import type { Services } from '../services';
import { registerCommand } from './register';

export interface AgentChoice {
  label: string;
  command: string;
}

/** The agents offered by Start Agent (setting `pixels.agentCommands`), each a command line run by a login shell. */
export function agentChoices(): AgentChoice[] {
  const raw = vscode.workspace.getConfiguration('pixels').get<unknown>('agentCommands');
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((a: unknown) => {
    const o = a as { label?: unknown; command?: unknown };
    return typeof o?.label === 'string' && typeof o.command === 'string' && o.command.trim()
      ? [{ label: o.label, command: o.command }]
      : [];
  });
}

/** The `[env]` session variables (session_only values and forwarded ones set in the editor's environment). */
export async function sessionVariables(services: Services): Promise<Record<string, string>> {
  const env = services.registry.settings.env;
  if (Object.keys(env.session).length === 0 && env.forward.length === 0) return {};
  const { expandEnv } = await loadGuest();
  return (await loadSsh()).sessionVariables(env, process.env, expandEnv);
}

/**
 * The session list, with tmux installed first when it is missing (asked, unless the answers say; shown as
 * progress with apt's output in the log).
 */
async function sessionsWithTmux(
  services: Services,
  serverId: string,
  sandbox: Sandbox,
  target: SshTarget,
  install: unknown,
): Promise<SessionInfo[]> {
  const list = await services.sessions.list(serverId, sandbox, target);
  if (list.tmux) return list.sessions;
  const go =
    typeof install === 'boolean'
      ? install
      : (await vscode.window.showInformationMessage(
          `Persistent sessions use tmux, which "${sandbox.name}" does not have. Install it now (apt, as root)?`,
          'Install tmux',
        )) === 'Install tmux';
  if (!go)
    throw new UnsupportedError(
      `tmux is not installed in "${sandbox.name}"; persistent sessions need it (provisioning installs it by default).`,
    );
  const backend = await services.registry.backend(serverId);
  await withProgress(`Installing tmux in "${sandbox.name}" (apt-get install tmux)`, true, async (op) => {
    const root = await services.ssh.readyTarget(backend, serverId, sandbox.name, op.signal, 'root');
    await services.sessions.installTmux(root, sandbox.name);
  });
  return (await services.sessions.list(serverId, sandbox, target)).sessions;
}

async function pickAgent(a: Answers): Promise<{ command: string; label: string; kind: SessionKind }> {
  if (typeof a.command === 'string')
    return {
      command: a.command,
      label: typeof a.agent === 'string' ? a.agent : a.command,
      kind: a.kind === 'command' ? 'command' : 'agent',
    };
  const other = '$(edit) Other command…';
  const items = [
    ...agentChoices().map((c) => ({ label: c.label, description: c.command, choice: c })),
    { label: other, description: 'any command line, run by a login shell', choice: undefined },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Start Agent in Sandbox',
    placeHolder: 'Which agent (or command) runs in the session?',
    ignoreFocusOut: true,
  });
  if (!picked) throw new CancelledError();
  if (picked.choice) return { ...picked.choice, kind: 'agent' };
  const command = await vscode.window.showInputBox({
    title: 'Start Agent in Sandbox',
    prompt: 'Command line run by a login shell in the session',
    placeHolder: 'e.g. claude --continue',
    validateInput: (v) => (v.trim() ? undefined : 'Enter a command.'),
    ignoreFocusOut: true,
  });
  if (command === undefined) throw new CancelledError();
  return { command, label: command, kind: 'command' };
}

async function startAgent(
  services: Services,
  arg: unknown,
): Promise<{ session: string; terminal?: vscode.Terminal } | undefined> {
  const a = answersOf(arg);
  const agent = await pickAgent(a);
  const { serverId, sandbox, target } = await resolveSshReady(
    services,
    a,
    'Start the agent in which sandbox?',
  );
  const guest = await loadGuest();
  const sessions = await sessionsWithTmux(services, serverId, sandbox, target, a.installTmux);
  const taken = sessions.map((s) => s.name);
  let session = typeof a.session === 'string' ? a.session : undefined;
  if (session === undefined) {
    session = await vscode.window.showInputBox({
      title: `Session name in "${sandbox.name}"`,
      prompt:
        'The session keeps running when the terminal or the window closes; attach to it again from the tree.',
      value: guest.suggestSessionName(agent.label.split(' ')[0] ?? 'agent', taken),
      validateInput: (v) =>
        guest.sessionNameProblem(v) ?? (taken.includes(v) ? `"${v}" is already a session here.` : undefined),
      ignoreFocusOut: true,
    });
    if (session === undefined) throw new CancelledError();
  }
  let cwd = typeof a.cwd === 'string' ? a.cwd : undefined;
  if (cwd === undefined) {
    cwd = await vscode.window.showInputBox({
      title: `Working folder in "${sandbox.name}"`,
      prompt: 'Absolute path or ~/… inside the sandbox',
      value: '~',
      validateInput: (v) =>
        v === '~' || v.startsWith('~/') || v.startsWith('/') ? undefined : 'Enter /… or ~/…',
      ignoreFocusOut: true,
    });
    if (cwd === undefined) throw new CancelledError();
  }
  await services.sessions.start(serverId, sandbox, target, {
    session,
    command: agent.command,
    cwd,
    kind: agent.kind,
    label: agent.label,
    vars: await sessionVariables(services),
  });
  if (a.attach === false) return { session };
  const terminal = await services.sessions.attach(serverId, sandbox, target, session);
  return { session, terminal };
}

/** The session named in the answers (a tree row gives it), or one picked from a fresh listing. */
async function resolveSession(
  services: Services,
  a: Answers,
  placeHolder: string,
): Promise<{
  serverId: string;
  sandbox: Sandbox;
  target: SshTarget;
  session: SessionInfo | undefined;
  name: string;
}> {
  const { serverId, sandbox, target } = await resolveSshReady(services, a, placeHolder);
  const sessions = (await services.sessions.list(serverId, sandbox, target)).sessions;
  if (typeof a.session === 'string')
    return {
      serverId,
      sandbox,
      target,
      name: a.session,
      session: sessions.find((s) => s.name === a.session),
    };
  if (sessions.length === 0) throw new NotFoundError(`"${sandbox.name}" has no sessions.`);
  const picked = await vscode.window.showQuickPick(
    sessions.map((s) => ({ label: s.name, description: sessionDescription(s), session: s })),
    { placeHolder, ignoreFocusOut: true },
  );
  if (!picked) throw new CancelledError();
  return { serverId, sandbox, target, name: picked.session.name, session: picked.session };
}

export function sessionDescription(s: SessionInfo): string {
  const state = s.running ? 'running' : `exited${s.exitCode !== undefined ? ` (code ${s.exitCode})` : ''}`;
  return [state, s.command, s.attached ? `${s.attached} attached` : undefined].filter(Boolean).join(' · ');
}

async function attachSession(services: Services, arg: unknown): Promise<vscode.Terminal> {
  const r = await resolveSession(services, answersOf(arg), 'Attach to which session?');
  if (!r.session) throw new NotFoundError(`"${r.sandbox.name}" has no session "${r.name}" (any more).`);
  return services.sessions.attach(r.serverId, r.sandbox, r.target, r.name);
}

async function stopSession(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const r = await resolveSession(services, a, 'Stop which session?');
  if (!r.session) throw new NotFoundError(`"${r.sandbox.name}" has no session "${r.name}" (any more).`);
  if (!(await confirmStopSession(r.sandbox.name, r.name, r.session.running, a.confirm))) return false;
  await services.sessions.stop(r.serverId, r.sandbox, r.target, r.name);
  return true;
}

/** Name of the session a persistent Open Terminal attaches to (created when missing), as `pixels console`. */
export const TERMINAL_SESSION = 'console';

/**
 * Open Terminal with `pixels.terminal.persistent` on: attach to the sandbox's `console` session, starting it (a
 * login shell with the session variables) when it is not there.
 */
export async function openPersistentTerminal(
  services: Services,
  serverId: string,
  sandbox: Sandbox,
  target: SshTarget,
  a: Answers,
): Promise<vscode.Terminal> {
  const sessions = await sessionsWithTmux(services, serverId, sandbox, target, a.installTmux);
  const session = typeof a.session === 'string' ? a.session : TERMINAL_SESSION;
  const existing = sessions.find((s) => s.name === session);
  if (!existing?.running) {
    if (existing) await services.sessions.stop(serverId, sandbox, target, session);
    await services.sessions.start(serverId, sandbox, target, {
      session,
      kind: 'terminal',
      label: 'terminal',
      vars: await sessionVariables(services),
    });
  }
  return services.sessions.attach(serverId, sandbox, target, session);
}

export function persistentTerminals(): boolean {
  return vscode.workspace.getConfiguration('pixels').get<boolean>('terminal.persistent') === true;
}

export function registerSessionCommands(services: Services): void {
  registerCommand(services, CommandIds.startAgent, 'Start agent', (arg) => startAgent(services, arg));
  registerCommand(services, CommandIds.attachSession, 'Attach to session', (arg) =>
    attachSession(services, arg),
  );
  registerCommand(services, CommandIds.stopSession, 'Stop session', (arg) => stopSession(services, arg));
}
