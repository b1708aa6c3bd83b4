// Destroy: the sandbox and its checkpoints go → its pinned host key and SSH config entry → its remembered egress
// mode, egress status and provisioning run → what else points at it from here (session listings, git remotes).
import type { WorkflowContext } from './context';

export interface DestroyRequest {
  name: string;
  /** Its last known IPv4 address (pinned next to its alias in known_hosts); read from the server when absent. */
  ip?: string;
  /** How many checkpoints go with it (for the log); read from the server when absent. */
  checkpoints?: number;
}

export async function destroySandbox(ctx: WorkflowContext, request: DestroyRequest): Promise<void> {
  const { backend, serverId } = ctx;
  const { name } = request;
  const ip = request.ip ?? (await backend.get(name)).ipv4;
  const checkpoints = request.checkpoints ?? (await backend.listCheckpoints(name)).length;
  const caps = await backend.capabilities();
  await ctx.ssh.disconnect(ip);
  await ctx.run(`Destroying "${name}"`, caps.cancel, (op) => backend.destroy(name, op));
  await ctx.ssh
    .forget(serverId, name, ip, ctx.sshConfigPath)
    .catch((err: unknown) => ctx.log.warn(`could not remove SSH entries of ${name}: ${String(err)}`));
  await ctx.egress.set(serverId, name, undefined);
  ctx.egressStatus.invalidate(serverId, name);
  await ctx.provisioning.destroyed(serverId, name);
  await ctx.links?.destroyed(serverId, name);
  ctx.log.info(`destroyed sandbox ${name} on ${ctx.serverLabel} (${checkpoints} checkpoints)`);
  await ctx.changed();
}
