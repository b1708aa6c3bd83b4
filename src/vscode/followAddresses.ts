// Keeps the Remote-SSH entries Pixels wrote pointing at each sandbox's current IP: whenever a refresh brings a
// changed list (the store fires only on a real change), the listed addresses are compared with our entries.
import type { Disposable } from '../core/disposable';
import { sshConfigPath } from './remoteSsh';
import type { Services } from './services';

export function followSandboxAddresses(services: Services): Disposable {
  return services.store.onDidChange((serverId) => {
    const ids = serverId ? [serverId] : services.registry.servers().map((s) => s.id);
    for (const id of ids) {
      if (services.store.state(id).status !== 'ok') continue;
      void services.ssh.followAddresses(id, services.store.sandboxes(id), sshConfigPath(services));
    }
  });
}
