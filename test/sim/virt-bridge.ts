// Puts the simulator's new instances on the NAS's LAN bridge the way a user of a real NAS does it (Virtualization
// → Global Settings → Bridge): a `virt.global.update` job through the production client. The NAS must have one
// (the 'lan-bridge' network layout; a stock NAS's bridge_choices offer only the automatic bridge). Tests that reach a
// sandbox directly need this; with the default (automatic) bridge the Incus engine puts sandboxes on the lab's
// NAT'd stand-in, which the test client cannot reach.
import { TrueNASClient } from '../../src/backends/truenas/client';
import type { SimServer } from './index.js';
import { SIM_LAN } from './methods/network.js';

export async function useLanBridge(
  sim: SimServer,
  apiKey: string,
  username = 'truenas_admin',
): Promise<void> {
  const client = new TrueNASClient({ host: '127.0.0.1', port: sim.port, secure: false, username }, apiKey);
  try {
    await client.callJob('virt.global.update', [{ bridge: SIM_LAN.bridge }], {
      context: 'Choosing the LAN bridge for new instances',
    });
  } finally {
    client.dispose();
  }
}
