// Start, stop, restart: one server job each, shown quietly (the status bar), then the view refreshes.
import type { WorkflowContext } from './context';

export type LifecycleVerb = 'start' | 'stop' | 'restart';

export async function changeState(ctx: WorkflowContext, name: string, verb: LifecycleVerb): Promise<void> {
  const { backend } = ctx;
  // A stopped (or restarted) sandbox's SSH connections are dead: drop them now rather than on the next failed call.
  if (verb !== 'start') await ctx.ssh.disconnect((await backend.get(name)).ipv4);
  const title = `${verb === 'start' ? 'Starting' : verb === 'stop' ? 'Stopping' : 'Restarting'} "${name}"`;
  await ctx.run(
    title,
    false,
    (op) =>
      verb === 'start'
        ? backend.start(name, op)
        : verb === 'stop'
          ? backend.stop(name, {}, op)
          : backend.restart(name, {}, op),
    true,
  );
  await ctx.changed();
}
