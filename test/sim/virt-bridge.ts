// Puts the simulator's new instances on the NAS's LAN bridge the way a user of a real NAS does it (Virtualization
// → Global Settings → Bridge): a `virt.global.update` job through the production client (on 26, Containers →
// Settings: `lxc.update`, a plain call). The NAS must have one
// (the 'lan-bridge' network layout; a stock NAS's bridge_choices offer only the automatic bridge). Tests that reach a
// sandbox directly need this; with the default (automatic) bridge the Incus engine puts sandboxes on the lab's
// NAT'd stand-in, which the test client cannot reach.
import { TrueNASClient } from '../../src/backends/truenas/client';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import type { Backend } from '../../src/core/backend';
import type { IncusEngine } from './engines/incus.js';
import { startSimulator, type SimServer, type SimVersionOption } from './index.js';
import { SIM_LAN } from './methods/network.js';

export async function useLanBridge(
  sim: SimServer,
  apiKey: string,
  username = 'truenas_admin',
): Promise<void> {
  const client = new TrueNASClient({ host: '127.0.0.1', port: sim.port, secure: false, username }, apiKey);
  try {
    const context = 'Choosing the LAN bridge for new instances';
    if (sim.version === '26') await client.call('lxc.update', [{ bridge: SIM_LAN.bridge }], { context });
    else await client.callJob('virt.global.update', [{ bridge: SIM_LAN.bridge }], { context });
  } finally {
    client.dispose();
  }
}

/**
 * A simulator (25.10 unless told) on real containers whose new instances go on the NAS's LAN bridge, and the
 * production backend logged in to it: what suites that reach their sandboxes directly (SSH, the lab's "internet")
 * start from.
 */
export async function startLanBridgeNas(
  engine: IncusEngine,
  apiKey: string,
  serverId: string,
  callTimeoutMs?: number,
  version: SimVersionOption = '25.10',
): Promise<{ sim: SimServer; backend: Backend }> {
  const sim = await startSimulator({
    version,
    apiKey,
    engine,
    jobDurationMs: 10,
    network: 'lan-bridge',
  });
  try {
    await useLanBridge(sim, apiKey);
  } catch (err) {
    await sim.close();
    throw err;
  }
  const backend = createTrueNASBackend(
    { serverId, host: '127.0.0.1', port: sim.port, username: 'truenas_admin', secure: false, callTimeoutMs },
    apiKey,
  );
  return { sim, backend };
}
