// Clone: a new sandbox from a sandbox's current state or one of its checkpoints → its own identity (hostname,
// machine-id, SSH host key) when the source's key is pinned here → provisioning's SSH step for a provisioned
// source → the egress policy re-checked. A clone that cannot get its own identity is removed.
import { AlreadyExistsError, ValidationError } from '../core/errors';
import { nameClash, nameClashProblem, validateSandboxName } from '../core/names';
import type { Sandbox } from '../core/sandbox';
import type { WorkflowContext } from './context';

export interface CloneRequest {
  source: string;
  /** A checkpoint of the source; its current state when absent. */
  checkpoint?: string;
  name: string;
  /** The server's sandbox names to check the new name against (ignoring case); read from the server when absent. */
  knownNames?: readonly string[];
  /** Cluster member or `@group` for the clone; absent lets the server choose. */
  target?: string;
}

/** Throws when `name` is not a valid new sandbox name on this server. */
export function validateCloneName(ctx: WorkflowContext, name: string, knownNames: readonly string[]): void {
  validateSandboxName(name);
  const other = nameClash(name, [...knownNames]);
  if (other) throw new AlreadyExistsError(nameClashProblem(name, other, ctx.serverLabel));
}

export async function cloneSandbox(ctx: WorkflowContext, request: CloneRequest): Promise<Sandbox> {
  const { backend, serverId } = ctx;
  const { source, checkpoint, name } = request;
  validateCloneName(ctx, name, request.knownNames ?? (await backend.list()).map((s) => s.name));
  const caps = await backend.capabilities();
  const sourceKeyPinned = (await ctx.ssh.hostKey(serverId, source)) !== undefined;
  if (!caps.writesResolveInSandbox && !sourceKeyPinned) {
    // Refused before anything is made: the clone's identity can only be written safely over SSH here.
    throw new ValidationError(
      `Cannot clone "${source}" on this server yet: the clone's own hostname, machine-id and SSH host key ` +
        `are written over SSH (the TrueNAS file API follows symbolic links as root on the NAS), and SSH access to ` +
        `"${source}" is not set up from this machine. Run "Pixels: Set Up SSH Access…" on it first.`,
    );
  }
  const clone = await ctx.run(`Cloning "${source}" to "${name}"`, caps.cancel, async (op, step) => {
    let made = await backend.clone({ sandbox: source, checkpoint, target: request.target }, name, op);
    if (sourceKeyPinned && caps.writeFiles) {
      try {
        // The clone gets its own host key (and keeps running if the source was running).
        await ctx.ssh.installAndBoot(backend, serverId, name, made.status === 'running', op, step, {
          from: source,
        });
        made = await backend.get(name);
      } catch (err) {
        // A clone with the source's host identity must not stay behind.
        step('cleaning up');
        await backend
          .destroy(name)
          .catch((e: unknown) => ctx.log.error(`cleanup of clone ${name} failed: ${String(e)}`));
        throw err;
      }
    }
    return made;
  });
  // Egress rules live inside the sandbox, so the clone has the source's mode.
  await ctx.egress.set(serverId, name, ctx.egress.get(serverId, source));
  ctx.log.info(`cloned ${source}${checkpoint ? `@${checkpoint}` : ''} to ${name}`);
  await ctx.changed();
  if (clone.status === 'running' && sourceKeyPinned && caps.writeFiles) {
    // A provisioned source: the clone's markers say every step is done except the SSH step (its host key is
    // new), so only that one runs; an unprovisioned source is left as it is.
    const sourceMode = ctx.provisioning.provisionedWith(serverId, source);
    let unreachable: unknown;
    const provisioned = await ctx.provisioning
      .isProvisioned(backend, serverId, name)
      .catch((err: unknown) => {
        ctx.log.warn(`clone ${name}: could not look for provisioning markers: ${String(err)}`);
        unreachable = err;
        return false;
      });
    // SSH did not come up for the marker check: the egress re-check would only wait for it a second time.
    if (unreachable !== undefined) {
      ctx.egressStatus.couldNotRecheck(serverId, name, 'cloning', unreachable);
      return clone;
    }
    if (provisioned) {
      await ctx.provisioning.rememberMode(serverId, name, sourceMode);
      await ctx.provisioning.provision(
        backend,
        serverId,
        name,
        ctx.egress.get(serverId, name) ?? 'unrestricted',
        ctx.run,
      );
    }
    const status = await ctx.egressStatus.recheck(
      backend,
      serverId,
      name,
      'cloning',
      ctx.egress.get(serverId, name),
    );
    if (status) await ctx.egress.set(serverId, name, status.policy.mode);
  }
  return clone;
}
