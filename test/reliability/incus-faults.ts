// Faults at scale on Incus: every operation through a fault-injecting proxy in front of the lab's unix socket,
// and the server's state (read directly, not through the proxy) after each compared with the product's report.
import { createIncusBackend, type IncusBackend } from '../../src/backends/incus/index';
import { IncusRestClient } from '../../src/backends/incus/rest-client';
import type { Lab } from '../lab/lab';
import { IncusFaultProxy, type ProxyAction } from './incus-proxy';
import { judgeState, type FaultCase } from './tally';

/**
 * 5xx: incusd refused (nothing happened); drop-wait: the connection of the operation wait breaks while incusd
 * goes on with the work; drop-start: incusd accepted the request and started the operation, but its reply (the
 * operation's id) never arrives. (A drop before forwarding behaves like the 5xx case for the product: nothing was
 * sent.)
 */
export const INCUS_FAULTS = ['drop-wait', 'drop-start', '5xx'] as const;
export type IncusFault = (typeof INCUS_FAULTS)[number];
export type IncusOp = 'create' | 'clone' | 'restore' | 'destroy' | 'checkpoint';

interface State {
  /** instance -> status */
  instances: Map<string, string>;
  /** "instance/snapshot" */
  snapshots: Set<string>;
}

export class IncusFaultRig {
  private serial = 0;
  private model: State = { instances: new Map(), snapshots: new Set() };

  private constructor(
    private readonly lab: Lab,
    private readonly prefix: string,
    readonly proxy: IncusFaultProxy,
    readonly backend: IncusBackend,
    private readonly direct: IncusRestClient,
  ) {}

  static async start(lab: Lab, prefix: string): Promise<IncusFaultRig> {
    const proxy = await IncusFaultProxy.start(lab.socket);
    const backend = createIncusBackend({
      serverId: 'lab-faults',
      socketPath: proxy.socket,
      network: lab.bridge,
      storagePool: lab.poolBtrfs,
    });
    const rig = new IncusFaultRig(
      lab,
      prefix,
      proxy,
      backend,
      new IncusRestClient({ socketPath: lab.socket }),
    );
    // Stopped: every operation works on it, and nothing has to boot.
    await backend.create({ name: `${prefix}-base`, image: lab.image, start: false });
    await backend.createCheckpoint(`${prefix}-base`, 'c1');
    rig.model = await rig.state();
    return rig;
  }

  async close(): Promise<void> {
    this.backend.dispose();
    this.direct.close();
    await this.proxy.close();
  }

  async state(): Promise<State> {
    const env = await this.direct.call<
      { name: string; status: string; snapshots?: { name: string }[] | null }[]
    >('GET', '/1.0/instances', { query: { recursion: '2' } });
    const mine = env.metadata.filter((i) => i.name.startsWith(`px-${this.prefix}-`));
    return {
      instances: new Map(mine.map((i) => [i.name, i.status])),
      snapshots: new Set(
        mine.flatMap((i) => (i.snapshots ?? []).map((s) => `${i.name}/${s.name.split('/').pop()}`)),
      ),
    };
  }

  /**
   * One operation under one fault. Real containers are slow to make on a busy machine, so the rig makes few:
   * restores and checkpoints use the base sandbox, and destroys take the sandboxes the create and clone cases
   * made (each fault destroys what the previous fault's create made).
   */
  async run(op: IncusOp, fault: IncusFault): Promise<FaultCase> {
    const n = ++this.serial;
    const where = `Incus ${op} / ${fault}`;
    const b = this.backend;
    const p = this.prefix;
    const base = `${p}-base`;
    const inst = (short: string) => `px-${p}-${short}`;
    let act: () => Promise<unknown>;
    let onSuccess: (result: unknown) => void;
    let target: { method: string; path: RegExp };
    let requestInstance: string | undefined;
    switch (op) {
      case 'create':
        act = () => b.create({ name: `${p}-n${n}`, image: this.lab.image, start: false });
        onSuccess = () => this.model.instances.set(inst(`n${n}`), 'Stopped');
        target = { method: 'POST', path: /^\/1\.0\/instances$/ };
        break;
      case 'clone':
        act = () => b.clone({ sandbox: base, checkpoint: 'c1' }, `${p}-k${n}`);
        onSuccess = () => this.model.instances.set(inst(`k${n}`), 'Running');
        target = { method: 'POST', path: /^\/1\.0\/instances$/ };
        break;
      case 'restore': {
        const [a, later] = [`a${n}`, `b${n}`];
        await b.createCheckpoint(base, a);
        await new Promise((res) => setTimeout(res, 20)); // distinct creation times
        await b.createCheckpoint(base, later);
        this.model.snapshots.add(`${inst('base')}/${a}`).add(`${inst('base')}/${later}`);
        act = () => b.restoreCheckpoint(base, a);
        onSuccess = () => this.model.snapshots.delete(`${inst('base')}/${later}`);
        target = { method: 'PUT', path: new RegExp(`^/1\\.0/instances/${inst('base')}$`) };
        break;
      }
      case 'destroy': {
        // The oldest sandbox a create or clone case left (there is always one: see the order in the test).
        const victim = [...this.model.instances.keys()].find((i) => /-[nk]\d+$/.test(i));
        if (!victim) throw new Error('no sandbox left to destroy: run a create case first');
        const short = victim.slice(3);
        const snaps = [...this.model.snapshots].filter((s) => s.startsWith(`${victim}/`));
        act = () => b.destroy(short);
        onSuccess = () => {
          this.model.instances.delete(victim);
          for (const s of snaps) this.model.snapshots.delete(s);
        };
        target = { method: 'DELETE', path: new RegExp(`^/1\\.0/instances/${victim}$`) };
        break;
      }
      case 'checkpoint':
        requestInstance = inst('base');
        act = () => b.createCheckpoint(base, `cp${n}`);
        onSuccess = () => this.model.snapshots.add(`${inst('base')}/cp${n}`);
        target = { method: 'POST', path: new RegExp(`^/1\\.0/instances/${inst('base')}/snapshots$`) };
        break;
    }
    const action: ProxyAction = fault === '5xx' ? { kind: '5xx' } : { kind: 'drop-after' };
    if (fault === 'drop-wait')
      this.proxy.add({ method: 'GET', path: /^\/1\.0\/operations\/[^/]+\/wait$/, action });
    else this.proxy.add({ ...target, action });
    let ok = false;
    let result: unknown;
    try {
      result = await act();
      ok = true;
    } catch (err) {
      result = err;
    }
    const injected = this.proxy.armed() === 0;
    this.proxy.clear();
    if (ok) onSuccess(result);
    const verdict = this.judge(await this.state(), ok, requestInstance);
    if (process.env.PIXELS_RELIABILITY_DEBUG)
      console.log(`${where}: ${ok ? 'done' : `failed: ${String(result)}`}`, JSON.stringify(verdict));
    return { where, injected, ...verdict };
  }

  private judge(
    st: State,
    ok: boolean,
    requestInstance: string | undefined,
  ): Pick<FaultCase, 'lost' | 'duplicated' | 'halfMade'> {
    const verdict = judgeState(
      this.model,
      st,
      ok,
      (s) => requestInstance !== undefined && s.startsWith(`${requestInstance}/`),
    );
    this.model = st;
    return verdict;
  }
}
