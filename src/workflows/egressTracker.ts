// The real egress policy of each sandbox, read from inside it (src/guest showEgress) the first time a running
// sandbox is listed in a session, a few at a time, then cached: a view refresh never runs a command in every
// sandbox. Workflows that change the policy (set mode, allow, deny) and restore/clone update or re-read it.
// Warnings go to `notify`: the editor shows them (with "Set Up SSH Access…" when that is the way out).
import type { Backend, HostGuardPolicy, HostGuardState } from '../core/backend';
import { Emitter, type Disposable } from '../core/disposable';
import { PixelsError } from '../core/errors';
import { loadGuest } from './lazy';
import type { Logger } from '../core/log';
import type { EgressMode, Sandbox } from '../core/sandbox';
import type { EgressRecheck, EgressStatus, Executor } from '../guest/index';
import type { SandboxSsh } from './context';

/** A warning for the user; `setupSsh`: setting up SSH access to that sandbox is what makes it checkable. */
export interface EgressNotice {
  message: string;
  setupSsh?: { serverId: string; name: string };
}

export interface EgressTrackerDeps {
  ssh: SandboxSsh;
  log: Logger;
  backendOf(serverId: string): Promise<Backend>;
  /** "TrueNAS" / "Incus", for messages. */
  productOf(serverId: string): string;
  notify(notice: EgressNotice): void;
}

const CONCURRENCY = 3;

export class EgressTracker implements Disposable {
  private readonly known = new Map<string, EgressStatus>();
  /** The host-side layer as last put in line for each sandbox (servers with setting hostGuard). */
  private readonly guards = new Map<string, HostGuardState>();
  /** Read (or being read) in this session: never queued twice. */
  private readonly requested = new Set<string>();
  private readonly queue: Array<{ serverId: string; name: string }> = [];
  private running = 0;
  private readonly emitter = new Emitter<void>();
  readonly onDidChange = this.emitter.event;
  /** Reads done so far (the tests prove there is no read per refresh). */
  reads = 0;

  private readonly ssh: SandboxSsh;
  private readonly log: Logger;

  constructor(private readonly deps: EgressTrackerDeps) {
    this.ssh = deps.ssh;
    this.log = deps.log;
  }

  private key(serverId: string, name: string): string {
    return `${serverId}/${name}`;
  }

  /** The cached status; a running sandbox seen for the first time is queued for a read. */
  get(serverId: string, sandbox: Sandbox): EgressStatus | undefined {
    const key = this.key(serverId, sandbox.name);
    const status = this.known.get(key);
    if (!status && sandbox.status === 'running' && !this.requested.has(key)) {
      this.requested.add(key);
      this.queue.push({ serverId, name: sandbox.name });
      this.pump();
    }
    return status;
  }

  set(serverId: string, name: string, status: EgressStatus): void {
    const key = this.key(serverId, name);
    this.requested.add(key);
    this.known.set(key, status);
    this.emitter.fire();
  }

  /**
   * Puts the server's host-side egress layer (setting hostGuard; Incus only) in line with the sandbox's policy.
   * Called after every change of the policy. A failure says that the policy inside holds but the host's did
   * not follow.
   */
  async syncHostGuard(
    backend: Backend,
    serverId: string,
    name: string,
    policy: HostGuardPolicy,
  ): Promise<HostGuardState | undefined> {
    if (!backend.syncHostGuard) return undefined;
    const key = this.key(serverId, name);
    try {
      const state = await backend.syncHostGuard(name, policy);
      this.guards.set(key, state);
      this.log.info(`sandbox ${name}: host guard ${state.mode}: ${state.summary}`);
      this.emitter.fire();
      return state;
    } catch (err) {
      this.guards.delete(key);
      const message = `The egress policy is in force inside "${name}", but the host guard could not follow it: ${err instanceof Error ? err.message : String(err)}`;
      throw err instanceof PixelsError
        ? new PixelsError(err.kind, message, { cause: err })
        : new PixelsError('server', message, { cause: err });
    }
  }

  hostGuard(serverId: string, name: string): HostGuardState | undefined {
    return this.guards.get(this.key(serverId, name));
  }

  /** Forget a sandbox's status (destroyed, or changed where we cannot see it); the next listing reads it again. */
  invalidate(serverId: string, name: string): void {
    const key = this.key(serverId, name);
    this.requested.delete(key);
    if (this.known.delete(key)) this.emitter.fire();
  }

  private pump(): void {
    while (this.running < CONCURRENCY && this.queue.length) {
      const next = this.queue.shift()!;
      this.running++;
      void this.read(next.serverId, next.name).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async read(serverId: string, name: string): Promise<void> {
    try {
      const backend = await this.deps.backendOf(serverId);
      const exec = await readExecutor(backend, serverId, name, this.ssh);
      if (!exec) return;
      const guest = await loadGuest();
      this.reads++;
      const status = await guest.showEgress(exec);
      this.known.set(this.key(serverId, name), status);
      this.emitter.fire();
    } catch (err) {
      this.log.debug(
        `egress of ${name}: could not read it (${err instanceof Error ? err.message : String(err)})`,
      );
    }
  }

  /**
   * After a restore or a clone: src/guest's re-check (re-applies the policy when the rules do not match it).
   * Warns when it had to re-apply or when the policy still does not hold; never throws (the restore or clone
   * itself succeeded).
   */
  async recheck(
    backend: Backend,
    serverId: string,
    name: string,
    after: string,
    remembered?: EgressMode,
  ): Promise<EgressRecheck | undefined> {
    const guest = await loadGuest();
    try {
      const sandbox = await backend.get(name);
      if (sandbox.status !== 'running') {
        this.invalidate(serverId, name); // read when it is next listed running
        return undefined;
      }
      // No exec API and no pinned host key: there is no way in, so do not try (and fail) at all.
      if (!backend.exec && !(await this.ssh.hostKey(serverId, name))) {
        this.invalidate(serverId, name);
        this.log.info(`sandbox ${name}: egress not re-checked after ${after} (no SSH access set up)`);
        if (remembered && remembered !== 'unrestricted')
          this.adviseSshAccess(serverId, name, after, remembered);
        return undefined;
      }
      const exec = await changeExecutor(backend, serverId, name, this.ssh);
      const status = await guest.recheckEgress(exec);
      this.set(serverId, name, status);
      // A clone is a new sandbox to the host layer, and a restore may bring back an older allow list.
      await this.syncHostGuard(backend, serverId, name, status.policy).catch((err: unknown) =>
        this.warn(err instanceof Error ? err.message : String(err)),
      );
      const holds = status.policy.mode === 'unrestricted' || status.enforced;
      this.log.info(
        `sandbox ${name}: egress re-checked after ${after}: ${status.policy.mode}, enforced=${status.enforced}, reapplied=${status.reapplied}` +
          (status.updated ? ', machinery from another version replaced' : ''),
      );
      if (!holds)
        this.warn(`The "${status.policy.mode}" egress policy of "${name}" does not hold after ${after}.`);
      else if (status.reapplied)
        this.warn(
          `The egress rules of "${name}" did not match its "${status.policy.mode}" policy after ${after}; they were applied again.`,
        );
      return status;
    } catch (err) {
      this.couldNotRecheck(serverId, name, after, err);
      return undefined;
    }
  }

  /** The re-check cannot run (e.g. SSH to the sandbox did not come up): say so, and read it again later. */
  couldNotRecheck(serverId: string, name: string, after: string, err: unknown): void {
    this.invalidate(serverId, name);
    this.warn(
      `Could not re-check the egress policy of "${name}" after ${after}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  /** A restricted sandbox that cannot be checked: say why, and offer the command that makes it checkable. */
  private adviseSshAccess(serverId: string, name: string, after: string, mode: EgressMode): void {
    const product = this.deps.productOf(serverId);
    const message =
      `Pixels did not re-check the "${mode}" egress policy of "${name}" after ${after}: on ${product} that needs ` +
      `SSH as root, which is not set up for "${name}". Set up SSH access to have it checked from now on.`;
    this.warnings.push(message);
    this.log.info(message);
    this.deps.notify({ message, setupSsh: { serverId, name } });
  }

  /** Warnings given to the user (the tests read them through the API). */
  readonly warnings: string[] = [];

  private warn(message: string): void {
    this.warnings.push(message);
    this.log.warn(message);
    this.deps.notify({ message });
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

/**
 * For a quick read: the backend's exec API when it has one (no SSH connection per sandbox), else SSH as root
 * when the host key is pinned here; undefined when neither is possible.
 */
async function readExecutor(
  backend: Backend,
  serverId: string,
  name: string,
  ssh: SandboxSsh,
): Promise<Executor | undefined> {
  const guest = await loadGuest();
  if (backend.exec) return guest.backendExecutor(backend, name);
  if (!(await ssh.hostKey(serverId, name))) return undefined;
  // A background read: give up soon on a sandbox that does not answer (the row then shows the remembered mode).
  const target = await ssh.readyTarget(backend, serverId, name, AbortSignal.timeout(15_000), 'root');
  return guest.sshExecutor(await ssh.pool(), target);
}

/**
 * For changes (which may install nftables and take a while): SSH as root when the host key is pinned (streamed,
 * no exec time limit), else the backend's exec API.
 */
export async function changeExecutor(
  backend: Backend,
  serverId: string,
  name: string,
  ssh: SandboxSsh,
  signal?: AbortSignal,
): Promise<Executor> {
  const guest = await loadGuest();
  if (await ssh.hostKey(serverId, name)) {
    const target = await ssh.readyTarget(backend, serverId, name, signal, 'root');
    return guest.sshExecutor(await ssh.pool(), target);
  }
  return guest.executorFor(backend, name);
}
