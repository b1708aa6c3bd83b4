// Set Up Jump Host…: SSH to a server's sandboxes through another host (ProxyJump), usually the NAS itself, whose
// automatic bridge is NAT'd and so out of a laptop's reach. The jump host's key is fetched once, shown, and pinned
// only on an explicit Trust; then our key's login is checked, and only then is the setting saved.
import * as vscode from 'vscode';
import {
  resolveJumpHost,
  TRUENAS_DEFAULT_SSH_USER,
  type JumpHostConfig,
  type ServerConfig,
} from '../../core/config';
import { CancelledError, SecurityError, ValidationError } from '../../core/errors';
import { CommandIds } from '../commandIds';
import { loadSsh } from '../../workflows/lazy';
import { answersOf, resolveServer, type Answers } from '../pick';
import { withProgress } from '../progress';
import type { Services } from '../services';
import { registerCommand } from './register';

export interface JumpHostResult {
  server: string;
  host: string;
  port: number;
  user: string;
  fingerprint: string;
}

async function ask(options: vscode.InputBoxOptions): Promise<string> {
  const value = await vscode.window.showInputBox({ ignoreFocusOut: true, ...options });
  if (value === undefined) throw new CancelledError();
  return value.trim();
}

/** Host, port and user: from the answers, else asked (prefilled with the current setting or the defaults). */
async function jumpSettings(server: ServerConfig, a: Answers): Promise<JumpHostConfig> {
  const current = resolveJumpHost({ ...server, jumpHost: server.jumpHost ?? {} });
  const title = `Jump Host for ${server.label}`;
  const answered = typeof a.host === 'string' || typeof a.user === 'string' || typeof a.port === 'number';
  const host =
    typeof a.host === 'string'
      ? a.host
      : ((answered ? current?.host : undefined) ??
        (await ask({
          title,
          prompt:
            server.kind === 'truenas'
              ? 'SSH host of the NAS (enable System → Services → SSH on it)'
              : 'SSH host that can reach the sandboxes (the Incus server)',
          value: current?.host ?? '',
          validateInput: (v) => (v.trim() ? undefined : 'Enter a host name or IP address.'),
        })));
  const port =
    typeof a.port === 'number'
      ? a.port
      : answered
        ? (current?.port ?? 22)
        : Number(
            await ask({
              title,
              prompt: 'SSH port',
              value: String(current?.port ?? 22),
              validateInput: (v) => (/^\d{1,5}$/.test(v.trim()) ? undefined : 'Enter a port number.'),
            }),
          );
  const user =
    typeof a.user === 'string'
      ? a.user
      : ((answered ? current?.user : undefined) ??
        (await ask({
          title,
          prompt:
            server.kind === 'truenas'
              ? `SSH user on the NAS (${TRUENAS_DEFAULT_SSH_USER} on 25.04+; your public key must be in its authorized keys)`
              : 'SSH user on that host (your public key must be in its authorized keys)',
          value: current?.user ?? (server.kind === 'truenas' ? TRUENAS_DEFAULT_SSH_USER : ''),
          validateInput: (v) => (v.trim() ? undefined : 'Enter a user name.'),
        })));
  if (!user) throw new ValidationError(`The jump host of "${server.label}" needs an SSH user.`);
  return { host, port, user };
}

/**
 * The key the jump host presented, accepted only explicitly: `trust` is the fingerprint the caller checked
 * (tests, scripts) or `false`; without it a modal shows the fingerprint. A key that differs from the one pinned
 * before is announced as a change, never taken silently.
 */
async function confirmKey(
  jump: JumpHostConfig,
  fingerprint: string,
  pinned: string | undefined,
  trust: unknown,
): Promise<boolean> {
  if (trust === false) return false;
  if (typeof trust === 'string') {
    if (trust !== fingerprint)
      throw new SecurityError(
        `The jump host ${jump.host}:${jump.port} presented host key ${fingerprint}, not the ${trust} you expected. Nothing was pinned.`,
      );
    return true;
  }
  const changed = pinned !== undefined && pinned !== fingerprint;
  const message = changed
    ? `The SSH host key of ${jump.host} CHANGED. Trust the new key?`
    : `Trust the SSH host key of ${jump.host}?`;
  const detail = [
    changed ? `Pinned so far: ${pinned}\nPresented now: ${fingerprint}` : `Fingerprint: ${fingerprint}`,
    '',
    changed
      ? 'Trust it only if you know the host was reinstalled or its keys were replaced; otherwise someone may be in between.'
      : `Compare it with the host's own key (on TrueNAS: System → Services → SSH, or "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in its shell). Pixels pins it and refuses any other key from then on.`,
  ].join('\n');
  const action = changed ? 'Trust New Key' : 'Trust';
  const choice = await vscode.window.showWarningMessage(message, { modal: true, detail }, action);
  return choice === action;
}

export async function setupJumpHost(services: Services, arg: unknown): Promise<JumpHostResult | undefined> {
  const a = answersOf(arg);
  const serverId = await resolveServer(services, a, 'Set up a jump host for which server?');
  const server = services.registry.server(serverId);
  const jump = await jumpSettings(server, a);
  const ssh = await loadSsh();
  const presented = await withProgress(`Connecting to ${jump.host}:${jump.port}`, false, () =>
    ssh.scanHostKey(jump.host, jump.port),
  );
  const fingerprint = ssh.fingerprint(presented);
  const pinnedKey = await services.ssh.jumpHostKey(serverId);
  const pinned = pinnedKey ? ssh.fingerprint(pinnedKey) : undefined;
  if (!(await confirmKey(jump, fingerprint, pinned, a.trust))) {
    services.log.info(`jump host ${jump.host}:${jump.port}: key ${fingerprint} not trusted; nothing changed`);
    return undefined;
  }
  // Pinned before the login check (the check itself must go through the strict, pinned connection).
  await services.ssh.pinJumpHostKey(serverId, presented);
  services.log.info(`jump host ${jump.host}:${jump.port}: host key ${fingerprint} pinned for ${serverId}`);
  const hop = await services.ssh.jumpHost(serverId, jump);
  await withProgress(`Logging in to ${jump.host} as ${jump.user}`, false, async () => {
    const client = await ssh.connectJumpHost(hop!, { keepaliveIntervalMs: 0 });
    client.end();
  });
  const setting = {
    ...(jump.host !== resolveJumpHost({ ...server, jumpHost: {} })?.host ? { host: jump.host } : {}),
    ...(jump.port !== 22 ? { port: jump.port } : {}),
    user: jump.user,
  };
  await services.registry.setJumpHost(serverId, setting);
  services.log.info(
    `server ${serverId}: SSH to sandboxes goes through ${jump.user}@${jump.host}:${jump.port} (ProxyJump)`,
  );
  if (a.quiet !== true)
    void vscode.window.showInformationMessage(
      `SSH to the sandboxes of ${server.label} now goes through ${jump.user}@${jump.host}.`,
    );
  return { server: serverId, host: jump.host, port: jump.port, user: jump.user, fingerprint };
}

export function registerJumpHostCommands(services: Services): void {
  registerCommand(services, CommandIds.setupJumpHost, 'Set up jump host', (arg) =>
    setupJumpHost(services, arg),
  );
}
