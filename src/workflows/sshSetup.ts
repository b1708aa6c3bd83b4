// Set Up SSH Access: a sandbox that was not created here (pixels CLI, another machine) gets a new host key pinned
// here and our key; it is left running.
import { UnsupportedError } from '../core/errors';
import type { WorkflowContext } from './context';

/** Throws UnsupportedError when the server cannot write the keys into a sandbox (asked before any confirmation). */
export async function checkCanSetUpSsh(ctx: WorkflowContext): Promise<void> {
  if (!(await ctx.backend.capabilities()).writeFiles)
    throw new UnsupportedError(
      'This server cannot write files into a sandbox, so SSH access cannot be set up from here.',
    );
}

/** `running`: the sandbox runs now (the keys then go in followed by a restart, so sshd serves the new key). */
export async function setUpSshAccess(ctx: WorkflowContext, name: string, running: boolean): Promise<void> {
  await checkCanSetUpSsh(ctx);
  await ctx.run(`Setting up SSH access to "${name}"`, false, (op, step) =>
    ctx.ssh.installAndBoot(ctx.backend, ctx.serverId, name, running, op, step),
  );
  await ctx.changed();
}
