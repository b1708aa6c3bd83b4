// Sandbox lifecycle: create, start, stop, restart, destroy, copy IP.
import * as vscode from 'vscode';
import { AlreadyExistsError, UnsupportedError, ValidationError } from '../../core/errors';
import { cpuProblem, memoryProblem, validateSandboxName } from '../../core/names';
import type { EgressMode, Sandbox } from '../../core/sandbox';
import { CommandIds } from '../commandIds';
import { confirmDestroy } from '../confirm';
import { runCreateFlow, type CreateAnswers } from '../createFlow';
import { answersOf, resolveSandbox, resolveServer, type Answers } from '../pick';
import { withProgress } from '../progress';
import { sshConfigPath } from '../remoteSsh';
import type { Services } from '../services';
import { registerCommand } from './register';

const EGRESS: readonly EgressMode[] = ['unrestricted', 'agent', 'allowlist'];

function createAnswers(a: Answers, services: Services): CreateAnswers | undefined {
  if (a.name === undefined) return undefined;
  const d = services.registry.settings.defaults;
  return {
    name: String(a.name),
    image: typeof a.image === 'string' ? a.image : d.image,
    cpu: a.cpu !== undefined ? String(a.cpu) : d.cpu,
    memoryMiB: typeof a.memoryMiB === 'number' ? a.memoryMiB : d.memoryMiB,
    egress: (a.egress as EgressMode | undefined) ?? d.egress,
    provision: typeof a.provision === 'boolean' ? a.provision : d.provision,
  };
}

function validate(c: CreateAnswers): void {
  validateSandboxName(c.name);
  const problem =
    cpuProblem(c.cpu) ?? memoryProblem(c.memoryMiB) ?? (c.image.trim() ? undefined : 'An image is required.');
  if (problem) throw new ValidationError(problem);
  if (!EGRESS.includes(c.egress)) throw new ValidationError(`Egress must be one of ${EGRESS.join(', ')}.`);
  // Egress rules are installed by the guest layer, which this build does not have yet: refuse rather than
  // create a sandbox that looks restricted and is not.
  if (c.egress !== 'unrestricted')
    throw new UnsupportedError(
      `The "${c.egress}" egress mode is not available in this version yet; choose "unrestricted".`,
    );
}

export async function createSandbox(services: Services, arg: unknown): Promise<Sandbox | undefined> {
  const a = answersOf(arg);
  const serverId = await resolveServer(services, a, 'Create the sandbox on which server?');
  const server = services.registry.server(serverId);
  const answers =
    createAnswers(a, services) ??
    (await runCreateFlow(
      services.registry.settings.defaults,
      (n) => services.store.find(serverId, n) !== undefined,
      server.label,
    ));
  validate(answers);
  const backend = await services.registry.backend(serverId);
  const caps = await backend.capabilities();
  if (answers.provision && !caps.writeFiles)
    throw new UnsupportedError(
      `${server.label} cannot write files into a sandbox, so it cannot be provisioned; create it without provisioning.`,
    );
  const { name } = answers;
  const sandbox = await withProgress(`Creating sandbox "${name}"`, caps.cancel, async (op, step) => {
    let created = false;
    try {
      step('creating the container');
      await backend.create(
        {
          name,
          image: answers.image,
          cpu: answers.cpu,
          memoryMiB: answers.memoryMiB,
          start: !answers.provision,
        },
        op,
      );
      created = true;
      if (answers.provision) await services.ssh.installAndBoot(backend, serverId, name, false, op, step);
      return await backend.get(name);
    } catch (err) {
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
      throw err;
    }
  });
  services.log.info(
    `created sandbox ${name} on ${serverId} (${answers.image}, ${answers.cpu} CPU, ${answers.memoryMiB} MiB)`,
  );
  await services.refresh.refreshNow(serverId);
  return sandbox;
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
  services.log.info(`destroyed sandbox ${target.name} on ${target.serverId} (${checkpoints} checkpoints)`);
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
