// TrueNAS 26 (libvirt LXC, plugins/container): only enough for a client to detect the API family.
// container.query lists the engine's instances in the 26 shape (integer ids, status object).
import { checkArgCount } from '../args.js';
import type { Registry } from '../context.js';
import { query } from '../filters.js';

export function registerContainer(registry: Registry): void {
  registry.add({
    name: 'container.query',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      const rows = (await env.ctx.engine.listInstances()).map((rec, index) => ({
        id: index + 1,
        name: rec.name,
        description: null,
        uuid: null,
        autostart: rec.autostart,
        time: 'LOCAL',
        shutdown_timeout: 90,
        dataset: `${env.ctx.engine.pool}/.truenas_containers/containers/${rec.name}`,
        init: '/sbin/init',
        initdir: null,
        initenv: { ...rec.environment },
        inituser: null,
        initgroup: null,
        idmap: { type: 'DEFAULT' },
        capabilities_policy: 'DEFAULT',
        capabilities_state: {},
        cpuset: rec.cpu,
        status: { state: rec.status === 'RUNNING' ? 'RUNNING' : 'STOPPED', pid: null, domain_state: null },
      }));
      return query(rows, args[0], args[1]);
    },
  });
  registry.add({
    name: 'lxc.config',
    handler: async (env) => ({
      id: 1,
      bridge: null,
      v4_network: '172.200.0.0/24',
      v6_network: 'fd42:4c58:43ae::/64',
      preferred_pool: env.ctx.engine.pool,
    }),
  });
}
