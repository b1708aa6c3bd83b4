// startSimulator (contract A): a faithful TrueNAS middleware stand-in on loopback, for tests and demos.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { registerAuth } from './auth.js';
import {
  parseSimVersion,
  Registry,
  type Sim26Build,
  type SimContext,
  type SimVersion,
  type SimVersionOption,
} from './context.js';
import type { SimEngine } from './engine.js';
import { MemoryEngine } from './engines/memory.js';
import { EventHub } from './events.js';
import { Faults, type FaultSwitches } from './faults.js';
import { JobManager } from './jobs.js';
import { domainEvent, registerContainer } from './methods/container.js';
import { ContainerStore } from './methods/container-store.js';
import { registerZfsResource } from './methods/zfs-resource.js';
import { registerCore } from './methods/core.js';
import { registerCronjob } from './methods/cronjob.js';
import { registerDatasets } from './methods/datasets.js';
import { registerFilesystem } from './methods/filesystem.js';
import { registerNetwork, SIM_NETWORK_LAYOUTS, type SimNetworkLayout } from './methods/network.js';
import { registerSnapshots } from './methods/snapshots.js';
import { registerVirt } from './methods/virt.js';
import { makeNasRoot } from './nas-root.js';
import { seed as seedDemo, seedScale, type ScaleSeed } from './seed.js';
import { listen, RpcServer } from './server.js';

export type { Sim26Build, SimVersion, SimVersionOption } from './context.js';
export type { FaultSwitches } from './faults.js';
export type { SimEngine } from './engine.js';
export type { ScaleSeed } from './seed.js';
export { MemoryEngine } from './engines/memory.js';

export interface SimOptions {
  port?: number;
  host?: string;
  /** 25.04, 25.10, or a 26 build: 26.0.0-BETA.3 (also "26", "26-b3") or 26.0.0-RC.1 ("26-rc1") */
  version: SimVersionOption;
  apiKey: string;
  username?: string;
  tls?: { key: string; cert: string };
  engine?: SimEngine;
  seed?: boolean;
  /** a big server instead of (or besides) the demo state: N `px-` sandboxes × M checkpoints + K other instances */
  seedScale?: ScaleSeed;
  treatAsRemote?: boolean;
  jobDurationMs?: number;
  /** false: virt has no pool (state NO_POOL): queries return [], instance jobs fail "Virtualization not initialized." */
  virtInitialized?: boolean;
  /** the unauthenticated-call rate limit (20 calls per 60 s per method, then EBUSY "Rate Limit Exceeded"); default off */
  rateLimit?: boolean;
  /** the NAS's own network: 'stock' (one DHCP NIC, the automatic NAT'd bridge; default), 'static' (its address configured) or 'lan-bridge' (br0) */
  network?: SimNetworkLayout;
  /** the directory standing in for the NAS's own root (default: a fresh temporary one, seeded, removed on close) */
  nasRoot?: string;
}

export interface SimServer {
  url: string;
  port: number;
  /** the API family it speaks, and for 26 the build */
  version: SimVersion;
  build: Sim26Build | null;
  faults: FaultSwitches;
  engine: SimEngine;
  connections(): number;
  callCount(method?: string): number;
  /** the NAS-root stand-in: what a followed symlink would have overwritten on a real NAS lands here */
  nasRoot: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
export const SIM_VERSIONS: readonly SimVersionOption[] = [
  '25.04',
  '25.10',
  '26',
  '26.0.0-BETA.3',
  '26.0.0-RC.1',
  '26-b3',
  '26-rc1',
];

export function buildRegistry(ctx: SimContext): Registry {
  const registry = new Registry();
  registerAuth(registry);
  registerCore(registry, ctx);
  registerFilesystem(registry);
  registerSnapshots(registry, ctx);
  registerDatasets(registry, ctx);
  registerNetwork(registry, ctx, ctx.networkLayout);
  registerCronjob(registry);
  if (ctx.version === '26') {
    registerContainer(registry, ctx);
    registerZfsResource(registry);
  } else registerVirt(registry, ctx);
  return registry;
}

export async function startSimulator(options: SimOptions): Promise<SimServer> {
  const release = parseSimVersion(options.version);
  if (!release) {
    throw new Error(
      `unknown TrueNAS version ${JSON.stringify(options.version)} (expected one of ${SIM_VERSIONS.join(', ')})`,
    );
  }
  if (!/^\d+-.+$/.test(options.apiKey)) throw new Error('apiKey must look like "<id>-<secret>"');
  if (options.network !== undefined && !SIM_NETWORK_LAYOUTS.includes(options.network))
    throw new Error(
      `unknown network layout ${JSON.stringify(options.network)} (expected stock, static or lan-bridge)`,
    );
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`the simulator listens on loopback only, not ${host}`);
  const engine = options.engine ?? new MemoryEngine();
  // 26 keeps containers under <pool>/.truenas_containers, mounted at /mnt/.truenas_containers/<pool>/...
  engine.useLayout(release.version === '26' ? 'container' : 'virt');
  if (options.seed) await seedDemo(engine);
  if (options.seedScale) await seedScale(engine, options.seedScale);
  const containers = release.version === '26' ? new ContainerStore(engine.pool) : null;
  // What the engine already holds on a 26 server came from 25.10 (container.migrate keeps the names and the
  // datasets; create_with_dataset gives each a row with defaults, autostart and cpuset carried over).
  if (containers)
    for (const rec of await engine.listInstances())
      containers.insert({
        uuid: randomUUID(),
        name: rec.name,
        description: '',
        autostart: rec.autostart,
        time: 'LOCAL',
        cpuset: rec.cpu,
        shutdown_timeout: 90,
        dataset: `${engine.pool}/.truenas_containers/containers/${rec.name}`,
        init: '/sbin/init',
        initdir: null,
        initenv: {},
        inituser: null,
        initgroup: null,
        idmap: { type: 'DEFAULT' },
        capabilities_policy: 'DEFAULT',
        capabilities_state: {},
        defined: rec.status === 'RUNNING',
      });
  const nas = options.nasRoot
    ? { root: options.nasRoot, owned: false }
    : { root: makeNasRoot(), owned: true };

  const events = new EventHub();
  const faults = new Faults();
  let chain: Promise<unknown> = Promise.resolve();
  const lastStatus = new Map<string, string>();
  const ctx: SimContext = {
    version: release.version,
    build: release.build,
    containers,
    engine,
    events,
    faults,
    jobs: new JobManager(release.version, events),
    auth: {
      apiKey: options.apiKey,
      // 25.04+ installs name their administrator truenas_admin (root only on upgraded older systems).
      username: options.username ?? 'truenas_admin',
      treatAsRemote: options.treatAsRemote ?? false,
      revoked: false,
    },
    jobDurationMs: options.jobDurationMs ?? 50,
    virtInitialized: options.virtInitialized ?? true,
    networkLayout: options.network ?? 'stock',
    virtBridge: null,
    rateLimit: options.rateLimit ?? false,
    holds: new Map(),
    deferred: new Set(),
    nasRoot: nas.root,
    bootId: randomUUID(),
    startedAt: new Date(),
    notifyStatus(name: string, status: string | null): void {
      if (status === null) {
        lastStatus.delete(name);
        return;
      }
      if (lastStatus.get(name) === status) return;
      lastStatus.set(name, status);
      if (release.version === '26') domainEvent(ctx, name);
      else events.send('virt.instance.query', 'CHANGED', { id: name, fields: { status } });
    },
    exclusive<T>(fn: () => Promise<T>): Promise<T> {
      const run = chain.then(fn, fn);
      chain = run.catch(() => undefined);
      return run;
    },
  };
  // Status changes the engine makes on its own (e.g. a container shut itself down) become events too.
  for (const rec of await engine.listInstances()) lastStatus.set(rec.name, rec.status);
  const unwatch = engine.onInstanceChange?.((name, status) => ctx.notifyStatus(name, status));

  const httpServer = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert })
    : http.createServer();
  const rpc = new RpcServer(ctx, buildRegistry(ctx), httpServer, Boolean(options.tls));
  const port = await listen(httpServer, options.port ?? 0, host);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `${options.tls ? 'wss' : 'ws'}://${shownHost}:${port}/api/current`,
    port,
    version: release.version,
    build: release.build,
    faults,
    engine,
    connections: () => rpc.connections(),
    callCount: (method?: string) => rpc.callCount(method),
    nasRoot: nas.root,
    close: async () => {
      unwatch?.();
      await rpc.close();
      await engine.close();
      if (nas.owned) rmSync(nas.root, { recursive: true, force: true });
    },
  };
}
