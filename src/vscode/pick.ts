// Finding a command's target: a tree node, a test's answer object ({ server, name, label }), or — from the
// palette — a quick pick.
import * as vscode from 'vscode';
import { CancelledError, NotFoundError, ValidationError } from '../core/errors';
import type { Checkpoint, Sandbox, SandboxStatus } from '../core/sandbox';
import type { SshTarget } from '../ssh/index';
import { withProgress } from './progress';
import type { Services } from './services';
import type { PixelsNode } from './tree';

export interface SandboxTarget {
  serverId: string;
  name: string;
}
export interface CheckpointTarget extends SandboxTarget {
  label: string;
}

/** Answer objects the commands accept (tests pass them; the palette path prompts for what is missing). */
export interface Answers {
  server?: string;
  name?: string;
  label?: string;
  confirm?: boolean;
  [key: string]: unknown;
}

function isNode(arg: unknown): arg is PixelsNode {
  return typeof arg === 'object' && arg !== null && typeof (arg as { type?: unknown }).type === 'string';
}

/** The answers object, whether the command was called with a tree node or with answers. */
export function answersOf(arg: unknown): Answers {
  if (isNode(arg)) {
    switch (arg.type) {
      case 'server':
        return { server: arg.serverId };
      case 'sandbox':
        return { server: arg.serverId, name: arg.sandbox.name };
      case 'checkpoint':
        return { server: arg.serverId, name: arg.sandbox, label: arg.checkpoint.label };
      case 'session':
        return { server: arg.serverId, name: arg.sandbox, session: arg.session.name };
      default:
        return { server: arg.serverId };
    }
  }
  if (typeof arg === 'object' && arg !== null) return arg as Answers;
  return {};
}

export async function resolveServer(
  services: Services,
  answers: Answers,
  placeHolder = 'Pick a server',
): Promise<string> {
  const servers = services.registry.servers();
  if (answers.server) {
    services.registry.server(answers.server); // throws a clear error for an unknown id
    return answers.server;
  }
  if (servers.length === 0)
    throw new ValidationError('No Pixels server is configured. Run "Pixels: Add Server…" first.');
  if (servers.length === 1) return servers[0].id;
  const picked = await vscode.window.showQuickPick(
    servers.map((s) => ({
      label: s.label,
      description: s.kind === 'truenas' ? `TrueNAS · ${s.host}` : 'Incus',
      id: s.id,
    })),
    { placeHolder, ignoreFocusOut: true },
  );
  if (!picked) throw new CancelledError();
  return picked.id;
}

/** A sandbox from the answers or a quick pick over all servers, optionally only in some states. */
export async function resolveSandbox(
  services: Services,
  answers: Answers,
  options: { placeHolder: string; states?: SandboxStatus[] },
): Promise<SandboxTarget & { sandbox?: Sandbox }> {
  if (answers.name) {
    const serverId = await resolveServer(services, answers);
    return { serverId, name: answers.name, sandbox: services.store.find(serverId, answers.name) };
  }
  await services.store.ensureLoaded();
  const items: (vscode.QuickPickItem & { target: SandboxTarget & { sandbox: Sandbox } })[] = [];
  const many = services.registry.servers().length > 1;
  for (const server of services.registry.servers()) {
    if (answers.server && server.id !== answers.server) continue;
    for (const s of services.store.sandboxes(server.id)) {
      if (options.states && !options.states.includes(s.status)) continue;
      items.push({
        label: s.name,
        description: [s.status, s.ipv4, many ? server.label : undefined].filter(Boolean).join(' · '),
        target: { serverId: server.id, name: s.name, sandbox: s },
      });
    }
  }
  if (items.length === 0) {
    const which = options.states ? `${options.states.join(' or ')} ` : '';
    throw new NotFoundError(`There is no ${which}sandbox to choose from.`);
  }
  const picked = await vscode.window.showQuickPick(items, {
    placeHolder: options.placeHolder,
    ignoreFocusOut: true,
    matchOnDescription: true,
  });
  if (!picked) throw new CancelledError();
  return picked.target;
}

/** The sandbox's checkpoints, newest first, fresh from the server. */
export async function checkpointsOf(services: Services, target: SandboxTarget): Promise<Checkpoint[]> {
  const backend = await services.registry.backend(target.serverId);
  const list = await backend.listCheckpoints(target.name);
  return [...list].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}

export async function resolveCheckpoint(
  services: Services,
  answers: Answers,
  placeHolder: string,
): Promise<CheckpointTarget & { checkpoints: Checkpoint[] }> {
  const sandbox = await resolveSandbox(services, answers, { placeHolder: 'Pick the sandbox' });
  const checkpoints = await checkpointsOf(services, sandbox);
  if (answers.label) {
    if (!checkpoints.some((c) => c.label === answers.label))
      throw new NotFoundError(`Sandbox "${sandbox.name}" has no checkpoint "${answers.label}".`);
    return { serverId: sandbox.serverId, name: sandbox.name, label: answers.label, checkpoints };
  }
  if (checkpoints.length === 0) throw new NotFoundError(`Sandbox "${sandbox.name}" has no checkpoints.`);
  const picked = await vscode.window.showQuickPick(
    checkpoints.map((c) => ({
      label: c.label,
      description: c.createdAt.toISOString().replace('T', ' ').slice(0, 19),
    })),
    { placeHolder, ignoreFocusOut: true },
  );
  if (!picked) throw new CancelledError();
  return { serverId: sandbox.serverId, name: sandbox.name, label: picked.label, checkpoints };
}

/** A running sandbox from the answers or a pick, once its SSH answers (waiting shows in the status bar). */
export async function resolveSshReady(
  services: Services,
  answers: Answers,
  placeHolder: string,
): Promise<{ serverId: string; sandbox: Sandbox; target: SshTarget }> {
  const picked = await resolveSandbox(services, answers, { placeHolder, states: ['running'] });
  const backend = await services.registry.backend(picked.serverId);
  const target = await withProgress(
    `Waiting for SSH on "${picked.name}"`,
    true,
    (op) => services.ssh.readyTarget(backend, picked.serverId, picked.name, op.signal),
    vscode.ProgressLocation.Window,
  );
  return { serverId: picked.serverId, sandbox: await backend.get(picked.name), target };
}
