// Base commands: Build / Rebuild / Delete Base, and Create Sandbox from Base (also offered by Create Sandbox when
// a base is ready). Asking, progress and showing only; the work is src/bases over the shared workflows.
import * as vscode from 'vscode';
import type { BaseInfo } from '../../bases/index';
import { CancelledError, ValidationError } from '../../core/errors';
import { nameClash, nameClashProblem, sandboxNameProblem, validateSandboxName } from '../../core/names';
import type { Sandbox } from '../../core/sandbox';
import { CommandIds } from '../commandIds';
import { confirmDeleteBase, confirmRebuildBase } from '../confirm';
import { answersOf, resolveSandbox, resolveServer, type Answers } from '../pick';
import { withProgress } from '../progress';
import type { Services } from '../services';
import type { PixelsNode } from '../tree';
import { registerCommand } from './register';
import { announceCreated } from './sandbox';

/** `{ server, base }` from a base row, or the answers a test or a tool passes. */
function baseAnswers(arg: unknown): Answers & { base?: string } {
  const node = arg as PixelsNode | undefined;
  if (node && typeof node === 'object' && node.type === 'base')
    return { server: node.serverId, base: node.base.name };
  const a = answersOf(arg) as Answers & { base?: unknown };
  return { ...a, base: typeof a.base === 'string' ? a.base : undefined };
}

async function pickBase(
  services: Services,
  serverId: string,
  placeHolder: string,
  states?: BaseInfo['status'][],
): Promise<BaseInfo> {
  const infos = await services.bases.service.list(serverId);
  const items = infos
    .filter((b) => !states || states.includes(b.status))
    .map((b) => ({
      label: b.name,
      description: [b.status === 'missing' ? 'not built' : b.status, b.parentImage ?? `from ${b.from}`].join(
        ' · ',
      ),
      detail: b.description,
      base: b,
    }));
  if (!items.length)
    throw new ValidationError(
      states?.includes('ready') && states.length === 1
        ? 'No base is built on this server yet. Build one first ("Pixels: Build Base…").'
        : 'There is no base to choose from.',
    );
  const picked = await vscode.window.showQuickPick(items, { placeHolder, ignoreFocusOut: true });
  if (!picked) throw new CancelledError();
  return picked.base;
}

async function target(
  services: Services,
  arg: unknown,
  placeHolder: string,
  states?: BaseInfo['status'][],
): Promise<{ serverId: string; base: string; answers: Answers }> {
  const a = baseAnswers(arg);
  const serverId = await resolveServer(services, a, 'Which server?');
  if (a.base) {
    services.bases.service.definition(a.base); // a clear error for an unknown base
    return { serverId, base: a.base, answers: a };
  }
  return { serverId, base: (await pickBase(services, serverId, placeHolder, states)).name, answers: a };
}

async function runBuild(
  services: Services,
  serverId: string,
  base: string,
  rebuild: boolean,
): Promise<BaseInfo> {
  const began = Date.now();
  await withProgress(`${rebuild ? 'Rebuilding' : 'Building'} base "${base}"`, true, (op, step) => {
    const options = { progress: step, signal: op.signal };
    return rebuild
      ? services.bases.service.rebuild(serverId, base, options)
      : services.bases.service.build(serverId, base, options);
  });
  await services.refresh.refreshNow(serverId);
  const seconds = Math.round((Date.now() - began) / 1000);
  services.log.info(`base ${base} built in ${seconds} s`);
  void vscode.window.showInformationMessage(
    `Base "${base}" is ready (built in ${seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`}). New sandboxes can start from it.`,
  );
  return services.bases.service.status(serverId, base);
}

export async function buildBase(services: Services, arg: unknown): Promise<BaseInfo> {
  const t = await target(services, arg, 'Build which base?', ['missing', 'failed']);
  return runBuild(services, t.serverId, t.base, false);
}

export async function rebuildBase(services: Services, arg: unknown): Promise<BaseInfo | undefined> {
  const t = await target(services, arg, 'Rebuild which base?', ['ready', 'incomplete', 'failed']);
  if (!(await confirmRebuildBase(t.base, services.bases.service.sandboxName(t.base), t.answers.confirm)))
    return undefined;
  return runBuild(services, t.serverId, t.base, true);
}

export async function deleteBase(services: Services, arg: unknown): Promise<boolean> {
  const t = await target(services, arg, 'Delete which base?', ['ready', 'incomplete', 'failed']);
  if (!(await confirmDeleteBase(t.base, services.bases.service.sandboxName(t.base), t.answers.confirm)))
    return false;
  await withProgress(`Deleting base "${t.base}"`, false, (_op, step) =>
    services.bases.service.delete(t.serverId, t.base, { progress: step }),
  );
  await services.refresh.refreshNow(t.serverId);
  return true;
}

/** A name for the new sandbox: the answer, else asked (default `<base>-<n>`, the first free one). */
async function newName(services: Services, serverId: string, base: string, a: Answers): Promise<string> {
  const names = services.store.sandboxes(serverId).map((s) => s.name);
  const label = services.registry.server(serverId).label;
  const clash = (n: string) => {
    const other = nameClash(n, names);
    return other ? nameClashProblem(n, other, label) : undefined;
  };
  let name = typeof a.name === 'string' ? a.name : undefined;
  if (name === undefined) {
    let n = 1;
    while (nameClash(`${base}-${n}`, names)) n++;
    name = await vscode.window.showInputBox({
      title: `New sandbox from base "${base}"`,
      prompt: 'Name of the new sandbox (a clone of the base: ready in seconds)',
      value: `${base}-${n}`,
      validateInput: (v) => sandboxNameProblem(v) ?? clash(v),
      ignoreFocusOut: true,
    });
    if (name === undefined) throw new CancelledError();
  }
  validateSandboxName(name);
  return name;
}

export async function createFromBase(services: Services, arg: unknown): Promise<Sandbox> {
  const t = await target(services, arg, 'Create a sandbox from which base?', ['ready']);
  return createFromBaseOn(services, t.serverId, t.base, t.answers);
}

async function createFromBaseOn(
  services: Services,
  serverId: string,
  base: string,
  a: Answers,
): Promise<Sandbox> {
  const name = await newName(services, serverId, base, a);
  const sandbox = await withProgress(`Creating "${name}" from base "${base}"`, true, (op, step) =>
    services.bases.service.createFromBase(serverId, base, {
      name,
      agent: a.agent === true,
      progress: step,
      signal: op.signal,
    }),
  );
  void vscode.commands.executeCommand('setContext', 'pixels.createdSandbox', true);
  await services.refresh.refreshNow(serverId);
  if (a.announce !== false) announceCreated(services, serverId, name, `is ready (from base "${base}")`);
  return sandbox;
}

/**
 * Create Sandbox's first question when a base is ready on the server: start from a base (a clone, seconds) or
 * from an image (the full create). Answers with `base` go straight to the base; answers with a `name` only
 * (tests, tools) skip the question. Undefined: go on with the full create.
 */
export async function createFromBaseIfChosen(
  services: Services,
  serverId: string,
  arg: unknown,
): Promise<Sandbox | undefined> {
  const a = answersOf(arg) as Answers & { base?: unknown };
  if (typeof a.base === 'string') return createFromBaseOn(services, serverId, a.base, a);
  if (a.name !== undefined) return undefined;
  await services.store.ensureLoaded();
  const ready = services.bases.infos(serverId).filter((b) => b.status === 'ready');
  if (!ready.length) return undefined;
  const image = services.registry.settings.defaults.image;
  const picked = await vscode.window.showQuickPick(
    [
      ...ready.map((b) => ({
        label: `$(layers-active) Base: ${b.name}`,
        description: 'ready in seconds',
        detail: b.description,
        base: b.name as string | undefined,
      })),
      {
        label: `$(vm) Image: ${image}`,
        description: 'full create and provisioning',
        detail: undefined,
        base: undefined,
      },
    ],
    { title: 'Create Sandbox', placeHolder: 'Start from a base or from an image?', ignoreFocusOut: true },
  );
  if (!picked) throw new CancelledError();
  return picked.base ? createFromBaseOn(services, serverId, picked.base, a) : undefined;
}

/** A person puts one of their sandboxes under the agent lifecycle policy (idle stop, maximum age from now). */
export async function applyLifecyclePolicy(services: Services, arg: unknown): Promise<boolean> {
  const t = await resolveSandbox(services, answersOf(arg), {
    placeHolder: 'Put which sandbox under the policy?',
  });
  const agents = await services.bases.agents();
  if (agents.get(t.serverId, t.name)) return true;
  if (services.bases.service.isBaseSandbox(t.name))
    throw new ValidationError(
      `"${t.name}" holds a base; a base is never stopped or destroyed by the policy.`,
    );
  await agents.mark(t.serverId, t.name, { by: 'person' });
  services.tree.refreshAll();
  return true;
}

export async function removeLifecyclePolicy(services: Services, arg: unknown): Promise<boolean> {
  const t = await resolveSandbox(services, answersOf(arg), {
    placeHolder: 'Take which sandbox off the policy?',
  });
  await (await services.bases.agents()).forget(t.serverId, t.name);
  services.tree.refreshAll();
  return true;
}

export function registerBaseCommands(services: Services): void {
  registerCommand(services, CommandIds.applyLifecyclePolicy, 'Apply lifecycle policy', (arg) =>
    applyLifecyclePolicy(services, arg),
  );
  registerCommand(services, CommandIds.removeLifecyclePolicy, 'Remove lifecycle policy', (arg) =>
    removeLifecyclePolicy(services, arg),
  );
  registerCommand(services, CommandIds.buildBase, 'Build base', (arg) => buildBase(services, arg));
  registerCommand(services, CommandIds.rebuildBase, 'Rebuild base', (arg) => rebuildBase(services, arg));
  registerCommand(services, CommandIds.deleteBase, 'Delete base', (arg) => deleteBase(services, arg));
  registerCommand(services, CommandIds.createFromBase, 'Create sandbox from base', (arg) =>
    createFromBase(services, arg),
  );
}
