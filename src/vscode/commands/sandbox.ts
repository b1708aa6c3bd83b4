// Sandbox lifecycle: create, start, stop, restart, destroy, copy IP.
import * as vscode from 'vscode';
import type { Backend } from '../../core/backend';
import {
  AlreadyExistsError,
  CancelledError,
  NotFoundError,
  PixelsError,
  ServerError,
  UnsupportedError,
  ValidationError,
} from '../../core/errors';
import {
  cpuProblem,
  formatMiB,
  memoryLimitProblem,
  nameClash,
  nameClashProblem,
  parseMemory,
  validateSandboxName,
} from '../../core/names';
import type { NetworkPlan } from '../../core/network-plan';
import type { EgressMode, OperationOptions, Sandbox } from '../../core/sandbox';
import { loadGuest } from '../lazy';
import type { Executor } from '../../guest/index';
import { CommandIds } from '../commandIds';
import { confirmDestroy } from '../confirm';
import { combinationProblem, runCreateFlow, type CreateAnswers, type CreateContext } from '../createFlow';
import { reportErrorAndAsk } from '../errors';
import { answersOf, resolveSandbox, resolveServer, type Answers } from '../pick';
import { withProgress } from '../progress';
import { ProvisioningFailed, readProvisionSettings, waitBooted } from '../provisioning';
import { sshConfigPath } from '../remoteSsh';
import type { Services } from '../services';
import { registerCommand } from './register';

const EGRESS: readonly EgressMode[] = ['unrestricted', 'agent', 'allowlist'];

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

function validate(c: CreateAnswers, ctx: CreateContext): void {
  validateSandboxName(c.name);
  const other = ctx.clash(c.name);
  if (other) throw new AlreadyExistsError(nameClashProblem(c.name, other, ctx.serverLabel));
  const problem =
    cpuProblem(c.cpu, ctx.limits) ??
    memoryLimitProblem(c.memoryMiB, ctx.limits) ??
    (c.image.trim() ? undefined : 'An image is required.');
  if (problem) throw new ValidationError(problem);
  if (!EGRESS.includes(c.egress)) throw new ValidationError(`Egress must be one of ${EGRESS.join(', ')}.`);
  const combination = combinationProblem(c.egress, c.provision, ctx);
  if (combination) throw new UnsupportedError(combination);
}

/** What the create flow checks against: the server's sandboxes (names ignore case), limits and abilities. */
async function createContext(services: Services, serverId: string, backend: Backend): Promise<CreateContext> {
  const server = services.registry.server(serverId);
  const [caps, limits, sandboxes] = await Promise.all([
    backend.capabilities(),
    // Only a hint for the steps: a server that does not say is checked by its own create call.
    backend.limits ? backend.limits().catch(() => ({})) : Promise.resolve({}),
    backend.list(),
  ]);
  const names = sandboxes.map((s) => s.name);
  return {
    serverLabel: server.label,
    clash: (name) => nameClash(name, names),
    limits,
    canProvision: caps.writeFiles,
    // Egress rules are put in as root: through the exec API, or over SSH, which needs the keys provisioning installs.
    restrictNeedsProvision: !caps.exec,
    defaultEgress: services.registry.settings.defaults.egress,
  };
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

/**
 * Applies the egress policy inside a freshly booted sandbox, as root: through the server's exec API when it has
 * one (Incus), else over SSH with the key just installed (TrueNAS), after waiting for sshd.
 */
async function applyEgressPolicy(
  services: Services,
  backend: Backend,
  serverId: string,
  name: string,
  mode: EgressMode,
  op: OperationOptions,
  step: (message: string) => void,
): Promise<void> {
  const guest = await loadGuest();
  let exec: Executor;
  if (backend.exec) {
    exec = guest.backendExecutor(backend, name);
  } else {
    step('waiting for SSH');
    const target = await services.ssh.readyTarget(backend, serverId, name, op.signal, 'root');
    exec = guest.sshExecutor(await services.ssh.pool(), target);
  }
  step('waiting for the sandbox to finish booting');
  await waitBooted(exec, op.signal);
  step(`applying the "${mode}" egress policy`);
  const status = await guest.applyEgress(
    exec,
    guest.buildPolicy(mode, services.registry.settings.defaults.allow, {
      presetExtra: readProvisionSettings().agentExtra,
    }),
  );
  if (status.policy.mode !== mode || (mode !== 'unrestricted' && !status.enforced))
    throw new ServerError(`The "${mode}" egress policy could not be enforced inside "${name}".`);
  services.egressStatus.set(serverId, name, status);
  services.log.info(`sandbox ${name}: egress ${mode} enforced (${status.effective.length} allowed entries)`);
  step('host guard');
  await services.egressStatus.syncHostGuard(backend, serverId, name, status.policy);
}

/** Says which step failed ("Installing … failed: Not Found.") while keeping the error's kind. */
function withStep(err: unknown, step: string): unknown {
  if (!(err instanceof PixelsError) || err instanceof CancelledError || err instanceof AlreadyExistsError)
    return err;
  return new PixelsError(err.kind, `${step[0].toUpperCase()}${step.slice(1)} failed: ${err.message}`, {
    cause: err,
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
  const backend = await services.registry.backend(serverId);
  const given = createAnswers(a, services);
  if (given) {
    const ctx = await createContext(services, serverId, backend);
    const sandbox = await createWith(services, serverId, backend, given, ctx);
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
    const ctx = { ...(await createContext(services, serverId, backend)), network };
    answers = await runCreateFlow(answers, ctx);
    try {
      const sandbox = await createWith(services, serverId, backend, answers, ctx);
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

async function createWith(
  services: Services,
  serverId: string,
  backend: Backend,
  answers: CreateAnswers,
  ctx: CreateContext,
): Promise<Sandbox | undefined> {
  validate(answers, ctx);
  const server = services.registry.server(serverId);
  const caps = await backend.capabilities();
  // Bad provisioning settings (a URL, a tool name, an unreadable setup script) are refused before anything exists.
  if (answers.provision) await services.provisioning.checkSettings(answers.egress);
  const { name } = answers;
  // Checked first (exact name; validate() checked the list ignoring case), so that the clean-up below can only
  // ever remove what this command made.
  const existing = await backend.get(name).then(
    () => true,
    (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
  );
  if (existing) throw new AlreadyExistsError(nameClashProblem(name, name, server.label));
  const sandbox = await withProgress(`Creating sandbox "${name}"`, caps.cancel, async (op, report) => {
    let created = false;
    let current = 'creating the container';
    const step = (message: string) => {
      current = message;
      report(message);
    };
    try {
      step('creating the container');
      await backend.create(
        {
          name,
          image: answers.image,
          cpu: answers.cpu,
          memoryMiB: answers.memoryMiB,
          // Started by the steps below when keys or an egress policy go in first.
          start: !answers.provision && answers.egress === 'unrestricted',
        },
        op,
      );
      created = true;
      if (answers.provision) await services.ssh.installAndBoot(backend, serverId, name, false, op, step);
      // With provisioning on, the policy is its first step (the download sources allowed until they are done).
      if (answers.egress !== 'unrestricted' && !answers.provision) {
        if (!answers.provision) {
          step('starting');
          await backend.start(name, op);
        }
        await applyEgressPolicy(services, backend, serverId, name, answers.egress, op, step);
      }
      return await backend.get(name);
    } catch (err) {
      const failedAt = current;
      // Leave nothing half-made: remove what this command created (an existing sandbox is never touched).
      if (!(err instanceof AlreadyExistsError)) {
        const exists =
          created ||
          (await backend.get(name).then(
            () => true,
            () => false,
          ));
        if (exists) {
          step('cleaning up');
          services.log.warn(`create ${name} failed; destroying the partly created sandbox`);
          await backend
            .destroy(name)
            .catch((e: unknown) => services.log.error(`cleanup of ${name} failed: ${String(e)}`));
          await services.ssh
            .forget(serverId, name, undefined, sshConfigPath(services))
            .catch(() => undefined);
        }
      }
      throw withStep(err, failedAt);
    }
  });
  await services.egress.set(serverId, name, answers.egress);
  // The walkthrough's "Create a sandbox" step completes on this, not on the command merely being run.
  void vscode.commands.executeCommand('setContext', 'pixels.createdSandbox', true);
  services.log.info(
    `created sandbox ${name} on ${server.label} (${answers.image}, ${answers.cpu} CPU, ${formatMiB(answers.memoryMiB)})`,
  );
  await services.refresh.refreshNow(serverId);
  if (!answers.provision) return sandbox;
  // The sandbox is up with a pinned host key. A failing step leaves it in place (not destroyed) so that
  // "Retry Provisioning" resumes where it stopped; the error names the step and ends with its log tail.
  services.egressStatus.invalidate(serverId, name);
  // Provisioning needs the address anyway; the row shows it while the steps run.
  await services.ssh.waitForAddress(backend, name);
  await services.refresh.refreshNow(serverId);
  await services.provisioning.provision(backend, serverId, name, answers.egress);
  services.egressStatus.invalidate(serverId, name);
  await services.refresh.refreshNow(serverId);
  return await backend.get(name);
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
  const backend = await services.registry.backend(target.serverId);
  const title = `${verb === 'start' ? 'Starting' : verb === 'stop' ? 'Stopping' : 'Restarting'} "${target.name}"`;
  await withProgress(
    title,
    false,
    (op) =>
      verb === 'start'
        ? backend.start(target.name, op)
        : verb === 'stop'
          ? backend.stop(target.name, {}, op)
          : backend.restart(target.name, {}, op),
    vscode.ProgressLocation.Window,
  );
  await services.refresh.refreshNow(target.serverId);
  return true;
}

export async function destroySandbox(services: Services, arg: unknown): Promise<boolean> {
  const a = answersOf(arg);
  const target = await resolveSandbox(services, a, { placeHolder: 'Which sandbox to destroy?' });
  const backend = await services.registry.backend(target.serverId);
  const checkpoints = (await backend.listCheckpoints(target.name)).length;
  if (!(await confirmDestroy(target.name, checkpoints, a.confirm))) return false;
  const caps = await backend.capabilities();
  const ip = target.sandbox?.ipv4;
  await withProgress(`Destroying "${target.name}"`, caps.cancel, (op) => backend.destroy(target.name, op));
  await services.ssh
    .forget(target.serverId, target.name, ip, sshConfigPath(services))
    .catch((err: unknown) =>
      services.log.warn(`could not remove SSH entries of ${target.name}: ${String(err)}`),
    );
  await services.egress.set(target.serverId, target.name, undefined);
  services.egressStatus.invalidate(target.serverId, target.name);
  await services.provisioning.destroyed(target.serverId, target.name);
  services.log.info(
    `destroyed sandbox ${target.name} on ${services.registry.server(target.serverId).label} (${checkpoints} checkpoints)`,
  );
  await services.refresh.refreshNow(target.serverId);
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
