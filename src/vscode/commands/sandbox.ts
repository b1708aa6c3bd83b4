// Sandbox lifecycle: create, start, stop, restart, destroy, copy IP.
import * as vscode from 'vscode';
import { CancelledError, ValidationError } from '../../core/errors';
import { parseMemory } from '../../core/names';
import type { NetworkPlan } from '../../core/network-plan';
import type { EgressMode, Sandbox } from '../../core/sandbox';
import { createSandbox as createWorkflow, serverAbilities, type CreateAnswers } from '../../workflows/create';
import type { WorkflowContext } from '../../workflows/context';
import { destroySandbox as destroyWorkflow } from '../../workflows/destroy';
import { changeState } from '../../workflows/lifecycle';
import { ProvisioningFailed } from '../../workflows/provision';
import { CommandIds } from '../commandIds';
import { confirmDestroy } from '../confirm';
import { runCreateFlow, type CreateContext } from '../createFlow';
import { reportErrorAndAsk } from '../errors';
import { answersOf, resolveSandbox, resolveServer, type Answers } from '../pick';
import { choosePlacement } from '../placement';
import type { Services } from '../services';
import { workflowContext } from '../workflowContext';
import { registerCommand } from './register';
import { createFromBaseIfChosen } from './bases';

function createAnswers(a: Answers, services: Services): CreateAnswers | undefined {
  if (a.name === undefined) return undefined;
  const d = services.registry.settings.defaults;
  const memory = typeof a.memory === 'string' ? parseMemory(a.memory) : undefined;
  if (memory && 'problem' in memory) throw new ValidationError(memory.problem);
  return {
    name: String(a.name),
    image: typeof a.image === 'string' ? a.image : d.image,
    cpu: a.cpu !== undefined ? String(a.cpu) : d.cpu,
    memoryMiB: memory ? memory.mib : typeof a.memoryMiB === 'number' ? a.memoryMiB : d.memoryMiB,
    egress: (a.egress as EgressMode | undefined) ?? d.egress,
    provision: typeof a.provision === 'boolean' ? a.provision : d.provision,
  };
}

/** What the create flow checks against: the server's sandboxes (names ignore case), limits and abilities. */
async function createContext(services: Services, ctx: WorkflowContext): Promise<CreateContext> {
  return { ...(await serverAbilities(ctx)), defaultEgress: services.registry.settings.defaults.egress };
}

/** Says that the sandbox is there and offers the next step (the command's caller may open it itself). */
export function announceCreated(services: Services, serverId: string, name: string, verb: string): void {
  const label = services.registry.server(serverId).label;
  const open = 'Open in Sandbox';
  const terminal = 'Open Terminal';
  void vscode.window
    .showInformationMessage(`Sandbox "${name}" ${verb} on ${label}.`, open, terminal)
    .then((choice) => {
      const target = { server: serverId, name };
      if (choice === open) void vscode.commands.executeCommand(CommandIds.openInSandbox, target);
      if (choice === terminal) void vscode.commands.executeCommand(CommandIds.openTerminal, target);
    });
}

const PLAN_WAIT_MS = 5000;

/** Where a new sandbox on this server will land, for the create flow (undefined when the server cannot tell). */
async function networkPlanFor(services: Services, serverId: string): Promise<NetworkPlan | undefined> {
  try {
    const backend = await services.registry.backend(serverId);
    // A slow or unreachable server must not hold the flow up: without an answer in time it shows no network line.
    let timer: NodeJS.Timeout | undefined;
    const plan = await Promise.race([
      backend.networkPlan?.(),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), PLAN_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
    if (plan)
      services.log.info(
        `server "${services.registry.server(serverId).label}": new sandboxes go on ${plan.summary}. ${plan.explanation}`,
      );
    return plan;
  } catch (err) {
    services.log.warn(
      `server "${services.registry.server(serverId).label}": could not tell where a new sandbox lands: ${err instanceof Error ? err.message : String(err)}`,
    );
    return undefined;
  }
}

/** `chosen` hears the server picked (Create and Open goes on with it). */
export async function createSandbox(
  services: Services,
  arg: unknown,
  chosen?: (serverId: string) => void,
): Promise<Sandbox | undefined> {
  const a = answersOf(arg);
  const serverId = await resolveServer(services, a, 'Create the sandbox on which server?');
  chosen?.(serverId);
  // A base ready on this server is offered first: a clone of it is ready in seconds.
  const fromBase = await createFromBaseIfChosen(services, serverId, arg);
  if (fromBase) return fromBase;
  const ctx = await workflowContext(services, serverId);
  // The walkthrough's "Create a sandbox" step completes on this, not on the command merely being run.
  const onCreated = () => void vscode.commands.executeCommand('setContext', 'pixels.createdSandbox', true);
  const given = createAnswers(a, services);
  if (given) {
    const abilities = await createContext(services, ctx);
    const target = await choosePlacement(services, serverId, ctx.backend, a.target, `"${given.name}"`);
    const sandbox = await createWorkflow(ctx, given, { abilities, onCreated, target });
    if (a.announce !== false) announceCreated(services, serverId, given.name, 'is ready');
    return sandbox;
  }
  const d = services.registry.settings.defaults;
  let answers: CreateAnswers = {
    name: '',
    image: d.image,
    cpu: d.cpu,
    memoryMiB: d.memoryMiB,
    egress: d.egress,
    provision: d.provision,
  };
  const network = await networkPlanFor(services, serverId);
  for (;;) {
    // Read again on every round: a retry may follow a sandbox made meanwhile.
    const abilities = { ...(await createContext(services, ctx)), network };
    answers = await runCreateFlow(answers, abilities);
    try {
      const target = await choosePlacement(services, serverId, ctx.backend, a.target, `"${answers.name}"`);
      const sandbox = await createWorkflow(ctx, answers, { abilities, onCreated, target });
      if (a.announce !== false) announceCreated(services, serverId, answers.name, 'is ready');
      return sandbox;
    } catch (err) {
      // A provisioning failure keeps the sandbox and offers "Retry Provisioning"; a cancel is a cancel.
      if (err instanceof CancelledError || err instanceof ProvisioningFailed) throw err;
      // Nothing was made: reopen the steps with everything typed, at the user's word.
      const choice = await reportErrorAndAsk(services.log, 'Create sandbox', err, ['Edit and Retry']);
      if (choice !== 'Edit and Retry') return undefined;
    }
  }
}

async function lifecycle(
  services: Services,
  arg: unknown,
  verb: 'start' | 'stop' | 'restart',
): Promise<boolean> {
  const a = answersOf(arg);
  const states = verb === 'start' ? (['stopped', 'error'] as const) : (['running'] as const);
  const target = await resolveSandbox(services, a, {
    placeHolder: `Which sandbox to ${verb}?`,
    states: [...states],
  });
  await changeState(await workflowContext(services, target.serverId), target.name, verb);
  return true;
}

export async function destroySandbox(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, { placeHolder: 'Which sandbox to destroy?' });
  const backend = await services.registry.backend(target.serverId);
  const checkpoints = (await backend.listCheckpoints(target.name)).length;
  if (!(await confirmDestroy(target.name, checkpoints, a.confirm))) return false;
  await destroyWorkflow(await workflowContext(services, target.serverId), {
    name: target.name,
    ip: target.sandbox?.ipv4,
    checkpoints,
  });
  return true;
}

export async function copyIp(services: Services, arg: unknown): Promise<string> {
  const target = await resolveSandbox(services, answersOf(arg), {
    placeHolder: 'Copy the IP of which sandbox?',
    states: ['running'],
  });
  const sandbox =
    target.sandbox ?? (await (await services.registry.backend(target.serverId)).get(target.name));
  if (!sandbox.ipv4 && !sandbox.ipv6)
    throw new ValidationError(`Sandbox "${sandbox.name}" has no IP address.`);
  const ip = (sandbox.ipv4 ?? sandbox.ipv6) as string;
  await vscode.env.clipboard.writeText(ip);
  vscode.window.setStatusBarMessage(`Copied ${ip}`, 3000);
  return ip;
}

export function registerSandboxCommands(services: Services): void {
  registerCommand(services, CommandIds.createSandbox, 'Create sandbox', (arg) =>
    createSandbox(services, arg),
  );
  registerCommand(services, CommandIds.start, 'Start', (arg) => lifecycle(services, arg, 'start'));
  registerCommand(services, CommandIds.stop, 'Stop', (arg) => lifecycle(services, arg, 'stop'));
  registerCommand(services, CommandIds.restart, 'Restart', (arg) => lifecycle(services, arg, 'restart'));
  registerCommand(services, CommandIds.destroy, 'Destroy', (arg) => destroySandbox(services, arg));
  registerCommand(services, CommandIds.copyIp, 'Copy IP', (arg) => copyIp(services, arg));
}
