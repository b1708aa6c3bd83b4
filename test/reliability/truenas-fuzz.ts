// Garbage from a TrueNAS server: every reply the backend parses, rewritten by the simulator's rewriteReplies
// switch, for each kind of garbage; the product must answer with a typed error naming the method (or a result
// that is still valid), never crash, never hang.
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import type { Backend } from '../../src/core/backend';
import { startSimulator, type SimServer } from '../sim/index';
import { GARBAGE, type FuzzCase, judgeFuzz } from './garbage';

const KEY = `1-${'z'.repeat(64)}`;
/** A call that has not ended after this long is a hang (the backend's own call timeout is 5 s). */
export const FUZZ_BOUND_MS = 20_000;

interface Target {
  method: string;
  /** the backend operation that reads this reply */
  drive: (b: Backend) => Promise<unknown>;
}

export async function fuzzTrueNAS(): Promise<FuzzCase[]> {
  const sim: SimServer = await startSimulator({ version: '25.10', apiKey: KEY, jobDurationMs: 20 });
  const seed = fresh(sim);
  await seed.create({ name: 'keep', image: 'debian/12' });
  await seed.createCheckpoint('keep', 'k1');
  seed.dispose();
  const targets: Target[] = [
    { method: 'auth.login_ex', drive: (b) => b.list() },
    { method: 'system.version', drive: (b) => b.info() },
    { method: 'virt.global.config', drive: (b) => b.list() },
    { method: 'virt.instance.query', drive: (b) => b.list() },
    { method: 'pool.snapshot.query', drive: (b) => b.listCheckpoints('keep') },
    // After a lost connection the client reads its job's end from core.get_jobs.
    {
      method: 'core.get_jobs',
      drive: (b) => {
        sim.faults.dropSocketMidJob('virt.instance.create');
        return b.create({ name: 'jobs', image: 'debian/12' });
      },
    },
    { method: 'pool.snapshot.create', drive: (b) => b.createCheckpoint('keep') },
    // The NAS's network, read for the NIC of a new sandbox (a garbled fact falls back to no NIC device).
    { method: 'interface.query', drive: (b) => b.networkPlan!() },
    { method: 'network.general.summary', drive: (b) => b.networkPlan!() },
    { method: 'virt.global.bridge_choices', drive: (b) => b.networkPlan!() },
    { method: 'virt.global.get_network', drive: (b) => b.networkPlan!() },
  ];
  const cases: FuzzCase[] = [];
  try {
    for (const t of targets) {
      for (const g of GARBAGE) {
        const backend = fresh(sim);
        sim.faults.rewriteReplies(t.method, (frame) => g.apply(frame));
        try {
          cases.push(
            await judgeFuzz(`TrueNAS ${t.method} / ${g.name}`, t.method, FUZZ_BOUND_MS, () =>
              t.drive(backend),
            ),
          );
        } finally {
          sim.faults.reset();
          backend.dispose();
        }
        // A checkpoint the garbage did not stop is removed, so the next case starts from the same state.
        const cleanup = fresh(sim);
        for (const c of await cleanup.listCheckpoints('keep'))
          if (c.label !== 'k1') await cleanup.deleteCheckpoint('keep', c.label);
        for (const s of await cleanup.list()) if (s.name !== 'keep') await cleanup.destroy(s.name);
        cleanup.dispose();
      }
    }
  } finally {
    await sim.close();
  }
  return cases;
}

function fresh(sim: SimServer): Backend {
  return createTrueNASBackend(
    {
      serverId: 'fuzz',
      host: '127.0.0.1',
      port: sim.port,
      username: 'truenas_admin',
      secure: false,
      callTimeoutMs: 5000,
    },
    KEY,
  );
}
