// Create: checks → container → SSH access (host key pinned here) → egress policy → provisioning. A failure before
// provisioning removes what this workflow made (the container, its pinned key and SSH entry); a failing
// provisioning step keeps the sandbox so that a retry resumes at that step (ProvisioningFailed says which).
import {
  AlreadyExistsError,
  CancelledError,
  NotFoundError,
  PixelsError,
  UnsupportedError,
  ValidationError,
} from '../core/errors';
import {
  cpuProblem,
  formatMiB,
  memoryLimitProblem,
  nameClash,
  nameClashProblem,
  validateSandboxName,
  type ServerLimits,
} from '../core/names';
import type { EgressMode, Sandbox } from '../core/sandbox';
import type { WorkflowContext } from './context';
import { applyEgressPolicy } from './egress';

export interface CreateAnswers {
  name: string;
  image: string;
  cpu: string;
  memoryMiB: number;
  egress: EgressMode;
  provision: boolean;
}

/** What the server allows, learnt before anything is asked or made. */
export interface ServerAbilities {
  serverLabel: string;
  /** The existing sandbox whose name clashes with `name` (equal ignoring case), if any. */
  clash: (name: string) => string | undefined;
  limits: ServerLimits;
  /** The server can write files into a sandbox (provisioning needs it). */
  canProvision: boolean;
  /** Egress rules go in over SSH (no exec API), which only provisioning sets up. */
  restrictNeedsProvision: boolean;
}

const EGRESS: readonly EgressMode[] = ['unrestricted', 'agent', 'allowlist'];

/** The server's sandboxes (names ignore case), limits and abilities. */
export async function serverAbilities(ctx: WorkflowContext): Promise<ServerAbilities> {
  const { backend } = ctx;
  const [caps, limits, sandboxes] = await Promise.all([
    backend.capabilities(),
    // Only a hint: a server that does not say is checked by its own create call.
    backend.limits ? backend.limits().catch(() => ({})) : Promise.resolve({}),
    backend.list(),
  ]);
  const names = sandboxes.map((s) => s.name);
  return {
    serverLabel: ctx.serverLabel,
    clash: (name) => nameClash(name, names),
    limits,
    canProvision: caps.writeFiles,
    // Egress rules are put in as root: through the exec API, or over SSH, which needs the keys provisioning installs.
    restrictNeedsProvision: !caps.exec,
  };
}

/** Why this egress / provisioning pair cannot be created on the server, if it cannot. */
export function combinationProblem(
  egress: EgressMode,
  provision: boolean,
  abilities: Pick<ServerAbilities, 'serverLabel' | 'canProvision' | 'restrictNeedsProvision'>,
): string | undefined {
  if (provision && !abilities.canProvision)
    return `${abilities.serverLabel} cannot write files into a sandbox, so it cannot be provisioned; choose "No provisioning".`;
  if (egress !== 'unrestricted' && abilities.restrictNeedsProvision && !provision)
    return `The "${egress}" egress rules go in over SSH, which provisioning sets up on ${abilities.serverLabel}: choose "Provision", or go Back and choose "unrestricted" for a plain container.`;
  return undefined;
}

/** Throws the first problem of these answers on this server (name, clash, limits, image, egress, combination). */
export function validateCreate(c: CreateAnswers, abilities: ServerAbilities): void {
  validateSandboxName(c.name);
  const other = abilities.clash(c.name);
  if (other) throw new AlreadyExistsError(nameClashProblem(c.name, other, abilities.serverLabel));
  const problem =
    cpuProblem(c.cpu, abilities.limits) ??
    memoryLimitProblem(c.memoryMiB, abilities.limits) ??
    (c.image.trim() ? undefined : 'An image is required.');
  if (problem) throw new ValidationError(problem);
  if (!EGRESS.includes(c.egress)) throw new ValidationError(`Egress must be one of ${EGRESS.join(', ')}.`);
  const combination = combinationProblem(c.egress, c.provision, abilities);
  if (combination) throw new UnsupportedError(combination);
}

/** Says which step failed ("Installing … failed: Not Found.") while keeping the error's kind. */
function withStep(err: unknown, step: string): unknown {
  if (!(err instanceof PixelsError) || err instanceof CancelledError || err instanceof AlreadyExistsError)
    return err;
  return new PixelsError(err.kind, `${step[0].toUpperCase()}${step.slice(1)} failed: ${err.message}`, {
    cause: err,
  });
}

export interface CreateOptions {
  /** Checked against; read from the server when not given. */
  abilities?: ServerAbilities;
  /** The sandbox exists and is reachable (before provisioning starts). */
  onCreated?: (name: string) => void;
  /** Cluster member or `@group` to place it on; absent lets the server choose. */
  target?: string;
}

/**
 * Creates a sandbox from these answers and returns it as it is at the end. Throws the answers' problem (nothing
 * made), the failed step's error (everything made removed), CancelledError, or ProvisioningFailed (the sandbox
 * stays; provisioning again resumes at the failed step).
 */
export async function createSandbox(
  ctx: WorkflowContext,
  answers: CreateAnswers,
  options: CreateOptions = {},
): Promise<Sandbox> {
  const { backend, serverId } = ctx;
  validateCreate(answers, options.abilities ?? (await serverAbilities(ctx)));
  const caps = await backend.capabilities();
  // Bad provisioning settings (a URL, a tool name, an unreadable setup script) are refused before anything exists.
  if (answers.provision) await ctx.provisioning.checkSettings(answers.egress);
  const { name } = answers;
  // Checked first (exact name; the list was checked ignoring case), so that the clean-up below can only ever
  // remove what this workflow made.
  const existing = await backend.get(name).then(
    () => true,
    (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
  );
  if (existing) throw new AlreadyExistsError(nameClashProblem(name, name, ctx.serverLabel));
  const sandbox = await ctx.run(`Creating sandbox "${name}"`, caps.cancel, async (op, report) => {
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
          target: options.target,
          // Started by the steps below when keys or an egress policy go in first.
          start: !answers.provision && answers.egress === 'unrestricted',
        },
        op,
      );
      created = true;
      if (answers.provision) await ctx.ssh.installAndBoot(backend, serverId, name, false, op, step);
      // With provisioning on, the policy is its first step (the download sources allowed until they are done).
      if (answers.egress !== 'unrestricted' && !answers.provision) {
        step('starting');
        await backend.start(name, op);
        await applyEgressPolicy(ctx, name, answers.egress, op, step);
      }
      return await backend.get(name);
    } catch (err) {
      const failedAt = current;
      // Leave nothing half-made: remove what this workflow created (an existing sandbox is never touched).
      if (!(err instanceof AlreadyExistsError)) {
        const exists =
          created ||
          (await backend.get(name).then(
            () => true,
            () => false,
          ));
        if (exists) {
          step('cleaning up');
          ctx.log.warn(`create ${name} failed; destroying the partly created sandbox`);
          await backend
            .destroy(name)
            .catch((e: unknown) => ctx.log.error(`cleanup of ${name} failed: ${String(e)}`));
          await ctx.ssh.forget(serverId, name, undefined, ctx.sshConfigPath).catch(() => undefined);
        }
      }
      throw withStep(err, failedAt);
    }
  });
  await ctx.egress.set(serverId, name, answers.egress);
  options.onCreated?.(name);
  ctx.log.info(
    `created sandbox ${name} on ${ctx.serverLabel} (${answers.image}, ${answers.cpu} CPU, ${formatMiB(answers.memoryMiB)})`,
  );
  await ctx.changed();
  if (!answers.provision) return sandbox;
  // The sandbox is up with a pinned host key. A failing step leaves it in place (not destroyed) so that a retry
  // resumes where it stopped; the error names the step and ends with its log tail.
  ctx.egressStatus.invalidate(serverId, name);
  // Provisioning needs the address anyway; the view shows it while the steps run.
  await ctx.ssh.waitForAddress(backend, name);
  await ctx.changed();
  await ctx.provisioning.provision(backend, serverId, name, answers.egress, ctx.run);
  ctx.egressStatus.invalidate(serverId, name);
  await ctx.changed();
  return await backend.get(name);
}
