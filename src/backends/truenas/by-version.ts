// One TrueNAS server, whichever API it speaks: the first call reads `system.version` and picks the 25.x Incus
// backend (virt.*) or the 26 container backend (container.*); every call after goes to that one.
import type { Backend, BackendCapabilities, BackendChange, ServerInfo } from '../../core/backend';
import type { Disposable } from '../../core/disposable';
import { Emitter } from '../../core/disposable';
import type { Logger } from '../../core/log';
import type { ServerLimits } from '../../core/names';
import type { NetworkPlan } from '../../core/network-plan';
import type {
  Checkpoint,
  CloneSource,
  CreateOptions,
  OperationOptions,
  Sandbox,
  StopOptions,
  WriteFileOptions,
} from '../../core/sandbox';
import type { TrueNASClient } from './client';
import { apiFamily, type ApiFamily } from './version';

export class TrueNASBackendByVersion implements Backend {
  readonly kind = 'truenas' as const;
  private readonly changes = new Emitter<BackendChange>();
  private chosen?: Promise<Backend>;
  private resolved?: Backend;
  private listening = false;
  private forwarding?: Disposable;
  private disposed = false;

  constructor(
    readonly serverId: string,
    private readonly client: TrueNASClient,
    private readonly make: (family: ApiFamily) => Backend,
    private readonly log: Logger,
  ) {}

  /** The backend for this server's API family (a failed probe is tried again on the next call). */
  backend(): Promise<Backend> {
    if (!this.chosen) {
      this.chosen = this.client.version().then((version) => {
        const family = apiFamily(version);
        this.log.info(`truenas: ${this.client.host} runs TrueNAS ${version.display} (${family})`);
        const made = this.make(family);
        if (this.disposed) {
          made.dispose();
          throw new Error('The connection to the server was closed.');
        }
        this.resolved = made;
        if (this.listening) this.forward(made);
        return made;
      });
      this.chosen.catch(() => (this.chosen = undefined));
    }
    return this.chosen;
  }

  readonly onDidChange = (listener: (change: BackendChange) => void): Disposable => {
    const d = this.changes.event(listener);
    if (!this.listening) {
      this.listening = true;
      if (this.resolved) this.forward(this.resolved);
      else
        this.backend().catch((e: unknown) =>
          this.log.warn(`truenas: could not tell which API ${this.client.host} speaks: ${String(e)}`),
        );
    }
    return d;
  };

  private forward(inner: Backend): void {
    if (this.forwarding) return;
    this.forwarding = inner.onDidChange((c) => this.changes.fire(c));
  }

  async info(): Promise<ServerInfo> {
    return (await this.backend()).info();
  }
  async capabilities(): Promise<BackendCapabilities> {
    return (await this.backend()).capabilities();
  }
  async limits(): Promise<ServerLimits> {
    const b = await this.backend();
    return b.limits ? b.limits() : {};
  }
  async list(): Promise<Sandbox[]> {
    return (await this.backend()).list();
  }
  async get(name: string): Promise<Sandbox> {
    return (await this.backend()).get(name);
  }
  async create(options: CreateOptions, op?: OperationOptions): Promise<Sandbox> {
    return (await this.backend()).create(options, op);
  }
  async start(name: string, op?: OperationOptions): Promise<void> {
    return (await this.backend()).start(name, op);
  }
  async stop(name: string, options?: StopOptions, op?: OperationOptions): Promise<void> {
    return (await this.backend()).stop(name, options, op);
  }
  async restart(name: string, options?: StopOptions, op?: OperationOptions): Promise<void> {
    return (await this.backend()).restart(name, options, op);
  }
  async destroy(name: string, op?: OperationOptions): Promise<void> {
    return (await this.backend()).destroy(name, op);
  }
  async listCheckpoints(name: string): Promise<Checkpoint[]> {
    return (await this.backend()).listCheckpoints(name);
  }
  async createCheckpoint(name: string, label?: string): Promise<Checkpoint> {
    return (await this.backend()).createCheckpoint(name, label);
  }
  async restoreCheckpoint(name: string, label: string, op?: OperationOptions): Promise<void> {
    return (await this.backend()).restoreCheckpoint(name, label, op);
  }
  async deleteCheckpoint(name: string, label: string): Promise<void> {
    return (await this.backend()).deleteCheckpoint(name, label);
  }
  async clone(source: CloneSource, newName: string, op?: OperationOptions): Promise<Sandbox> {
    return (await this.backend()).clone(source, newName, op);
  }
  async writeFile(name: string, path: string, content: Buffer, options?: WriteFileOptions): Promise<void> {
    return (await this.backend()).writeFile(name, path, content, options);
  }
  async networkPlan(): Promise<NetworkPlan> {
    const b = await this.backend();
    if (!b.networkPlan) throw new Error('This server cannot tell where sandboxes land.');
    return b.networkPlan();
  }

  dispose(): void {
    this.disposed = true;
    this.forwarding?.dispose();
    this.changes.dispose();
    if (this.resolved) this.resolved.dispose();
    else this.client.dispose();
  }
}
