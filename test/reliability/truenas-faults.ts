// Faults at scale on TrueNAS: every operation under every fault switch of the simulator (memory engine), and
// the server's state after each compared with what the product reported.
import type { Backend } from '../../src/core/backend';
import { createTrueNASBackend } from '../../src/backends/truenas/index';
import { startSimulator, type SimServer, type SimVersion } from '../sim/index';
import { judgeState, type FaultCase } from './tally';

const KEY = `1-${'f'.repeat(64)}`;
/** Long enough to outlast the client's call timeout below, so a slow reply is a lost one. */
const SLOW_MS = 1500;
const CALL_TIMEOUT_MS = 1000;
const JOB_MS = 150;

export const TRUENAS_FAULTS = ['drop', 'restart', 'slow', 'busy', 'failed'] as const;
export type TrueNASFault = (typeof TRUENAS_FAULTS)[number];
export const OPS = ['create', 'clone', 'restore', 'destroy', 'checkpoint'] as const;
export type Op = (typeof OPS)[number];

interface Model {
  instances: Map<string, string>;
  snapshots: Set<string>;
}

interface State extends Model {
  datasets: Set<string>;
}

export class TrueNASFaultRig {
  private serial = 0;
  private constructor(
    readonly version: SimVersion,
    readonly sim: SimServer,
    readonly backend: Backend,
    private readonly model: Model,
  ) {}

  static async start(version: SimVersion): Promise<TrueNASFaultRig> {
    const sim = await startSimulator({ version, apiKey: KEY, jobDurationMs: JOB_MS });
    const backend = createTrueNASBackend(
      {
        serverId: `faults-${version}`,
        host: '127.0.0.1',
        port: sim.port,
        username: 'truenas_admin',
        secure: false,
        callTimeoutMs: CALL_TIMEOUT_MS,
      },
      KEY,
    );
    await backend.create({ name: 'base', image: 'debian/12' });
    await backend.createCheckpoint('base', 'c1');
    const rig = new TrueNASFaultRig(version, sim, backend, { instances: new Map(), snapshots: new Set() });
    const st = await rig.state();
    rig.model.instances = st.instances;
    rig.model.snapshots = st.snapshots;
    return rig;
  }

  async close(): Promise<void> {
    this.backend.dispose();
    await this.sim.close();
  }

  private get ns(): string {
    return this.version === '25.04' ? 'zfs.snapshot' : 'pool.snapshot';
  }

  private ds(name: string): string {
    return `${this.sim.engine.pool}/.ix-virt/containers/px-${name}`;
  }

  /** The method each operation is hit at: the one call whose loss or failure matters most to it. */
  private target(op: Op): string {
    switch (op) {
      case 'create':
        return 'virt.instance.create';
      case 'clone':
        return this.version === '25.04' ? `${this.ns}.clone` : 'virt.instance.create';
      case 'restore':
        return `${this.ns}.rollback`;
      case 'destroy':
        return 'virt.instance.delete';
      case 'checkpoint':
        return `${this.ns}.create`;
    }
  }

  async state(): Promise<State> {
    const e = this.sim.engine;
    return {
      instances: new Map((await e.listInstances()).map((i) => [i.name, i.status])),
      snapshots: new Set((await e.listSnapshots()).map((s) => s.id)),
      datasets: new Set(
        (await e.listDatasets())
          .map((d) => d.name)
          .filter(
            (n) =>
              n.includes('/.ix-virt/containers/') ||
              n.includes('/.ix-virt/deleted/containers/') ||
              n.includes('px-trash'),
          ),
      ),
    };
  }

  private arm(fault: TrueNASFault, method: string): () => void {
    const f = this.sim.faults;
    switch (fault) {
      case 'drop':
        f.dropSocketMidJob(method);
        return () => undefined;
      case 'restart':
        f.restartMidJob(method, 300);
        return () => undefined;
      case 'slow': {
        f.delayReplies(SLOW_MS, method);
        const off = setTimeout(() => f.delayReplies(0), SLOW_MS - 300);
        return () => clearTimeout(off);
      }
      case 'busy':
        f.tooManyCalls(2, method);
        return () => undefined;
      case 'failed':
        f.failNextCall(method);
        return () => undefined;
    }
  }

  /** One operation under one fault; the state afterwards is judged against the product's own report. */
  async run(op: Op, fault: TrueNASFault): Promise<FaultCase> {
    const n = ++this.serial;
    const where = `TrueNAS ${this.version} ${op} / ${fault}`;
    const b = this.backend;
    // Set-up outside the fault.
    let act: () => Promise<unknown>;
    let onSuccess: (result: unknown) => void;
    let requestDataset: string | undefined;
    switch (op) {
      case 'create':
        act = () => b.create({ name: `n${n}`, image: 'debian/12' });
        onSuccess = () => this.model.instances.set(`px-n${n}`, 'RUNNING');
        break;
      case 'clone':
        act = () => b.clone({ sandbox: 'base', checkpoint: 'c1' }, `k${n}`);
        onSuccess = () => this.model.instances.set(`px-k${n}`, 'RUNNING');
        break;
      case 'restore':
        await b.create({ name: `r${n}`, image: 'debian/12' });
        await b.createCheckpoint(`r${n}`, 'a');
        await b.createCheckpoint(`r${n}`, 'b');
        this.model.instances.set(`px-r${n}`, 'RUNNING');
        this.model.snapshots.add(`${this.ds(`r${n}`)}@a`).add(`${this.ds(`r${n}`)}@b`);
        act = () => b.restoreCheckpoint(`r${n}`, 'a');
        onSuccess = () => this.model.snapshots.delete(`${this.ds(`r${n}`)}@b`);
        break;
      case 'destroy':
        await b.create({ name: `d${n}`, image: 'debian/12' });
        await b.createCheckpoint(`d${n}`, 'x');
        this.model.instances.set(`px-d${n}`, 'RUNNING');
        this.model.snapshots.add(`${this.ds(`d${n}`)}@x`);
        act = () => b.destroy(`d${n}`);
        onSuccess = () => {
          this.model.instances.delete(`px-d${n}`);
          this.model.snapshots.delete(`${this.ds(`d${n}`)}@x`);
        };
        break;
      case 'checkpoint':
        // The default label has one-second steps: a new second, so only a retry could make a second one.
        await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
        requestDataset = this.ds('base');
        act = () => b.createCheckpoint('base'); // default label: a blind retry would make a second one
        onSuccess = (cp) => this.model.snapshots.add(`${this.ds('base')}@${(cp as { label: string }).label}`);
        break;
    }
    const method = this.target(op);
    const callsBefore = this.sim.callCount(method);
    const disarm = this.arm(fault, method);
    let ok: boolean;
    let result: unknown;
    try {
      result = await act();
      ok = true;
    } catch (err) {
      ok = false;
      result = err;
    } finally {
      disarm();
    }
    const injected = !this.sim.faults.armed() && this.sim.callCount(method) > callsBefore;
    this.sim.faults.reset();
    if (ok) onSuccess(result);
    // Work a restart orphaned (Incus finishing its operation) settles before the state is read.
    await new Promise((r) => setTimeout(r, JOB_MS * 2));
    const verdict = this.judge(await this.state(), ok, requestDataset);
    if (process.env.PIXELS_RELIABILITY_DEBUG)
      console.log(`${where}: ${ok ? 'done' : `failed: ${String(result)}`}`, JSON.stringify(verdict));
    return { where, injected, ...verdict };
  }

  private judge(
    st: State,
    ok: boolean,
    requestDataset: string | undefined,
  ): Pick<FaultCase, 'lost' | 'duplicated' | 'halfMade'> {
    const { lost, duplicated, halfMade } = judgeState(
      this.model,
      st,
      ok,
      (id) => requestDataset !== undefined && id.startsWith(`${requestDataset}@`),
    );
    const datasetOf = (name: string): string => `${this.sim.engine.pool}/.ix-virt/containers/${name}`;
    for (const name of this.model.instances.keys())
      if (!st.datasets.has(datasetOf(name))) lost.push(`dataset of ${name}`);
    const wanted = new Set([...this.model.instances.keys()].map(datasetOf));
    for (const d of st.datasets) if (!wanted.has(d)) halfMade.push(`dataset ${d}`);
    // Adopt the server's state, so one defect is counted once, not again in every later case.
    this.model.instances = new Map(st.instances);
    this.model.snapshots = new Set(st.snapshots);
    return { lost, duplicated, halfMade };
  }
}
