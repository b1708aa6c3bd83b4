// What every sandbox workflow (create, clone, restore, destroy, start/stop, ...) is given: the server's backend and
// the services around it, passed in explicitly so that the commands, the language model tools and the MCP server
// run the same steps, and tests drive them without an editor. Nothing here imports vscode.
import type { Backend, HostGuardPolicy, HostGuardState } from '../core/backend';
import type { Logger } from '../core/log';
import type { EgressMode, OperationOptions, Sandbox } from '../core/sandbox';
import type { EgressRecheck, EgressStatus, StepOutcome } from '../guest/index';
import type { SshPool, SshTarget, UserIdentity } from '../ssh/index';
import type { ProvisioningRun } from './provisioning';

/**
 * Runs one long phase of a workflow under a title ("Creating sandbox "x""). `op` carries the cancellation signal
 * and the server job's own progress; `step` says what happens now ("installing the SSH host key and your key").
 * The editor shows a notification (`quiet`: the status bar); tools report to their caller. `cancellable`: the
 * server can cancel the job (otherwise a cancel would only hide work still running).
 */
export type RunPhase = <T>(
  title: string,
  cancellable: boolean,
  task: (op: OperationOptions, step: (message: string) => void) => Promise<T>,
  quiet?: boolean,
) => Promise<T>;

/** SSH access to sandboxes: our key, pinned host keys, readiness, the connection pool (SshAccess, sshAccess.ts). */
export interface SandboxSsh {
  identity(): Promise<UserIdentity>;
  installAndBoot(
    backend: Backend,
    serverId: string,
    name: string,
    running: boolean,
    op: OperationOptions,
    step: (message: string) => void,
    clone?: { from: string },
  ): Promise<void>;
  hostKey(serverId: string, name: string): Promise<string | undefined>;
  waitForAddress(backend: Backend, name: string, signal?: AbortSignal, timeoutMs?: number): Promise<Sandbox>;
  readyTarget(
    backend: Backend,
    serverId: string,
    name: string,
    signal?: AbortSignal,
    user?: string,
  ): Promise<SshTarget>;
  pool(): Promise<SshPool>;
  /** Removes the pinned host key and the SSH config entry of a destroyed sandbox. */
  forget(
    serverId: string,
    name: string,
    ip: string | undefined,
    configPath: string | undefined,
  ): Promise<void>;
  /** Drops the pooled SSH connections to a sandbox's address (it is being stopped or destroyed). */
  disconnect(ip: string | undefined): Promise<void>;
}

/** The egress mode Pixels put into each sandbox, remembered across sessions. */
export interface RememberedEgress {
  get(serverId: string, name: string): EgressMode | undefined;
  set(serverId: string, name: string, mode: EgressMode | undefined): Promise<void>;
}

/** The egress policy each sandbox really has, as last read, and the host-side guard kept in line with it. */
export interface EgressTracking {
  set(serverId: string, name: string, status: EgressStatus): void;
  invalidate(serverId: string, name: string): void;
  syncHostGuard(
    backend: Backend,
    serverId: string,
    name: string,
    policy: HostGuardPolicy,
  ): Promise<HostGuardState | undefined>;
  /** Re-reads the policy after a restore or clone and re-applies it when the rules do not match; never throws. */
  recheck(
    backend: Backend,
    serverId: string,
    name: string,
    after: string,
    remembered?: EgressMode,
  ): Promise<EgressRecheck | undefined>;
  couldNotRecheck(serverId: string, name: string, after: string, err: unknown): void;
}

/** Provisioning runs (src/guest) and what is remembered about them (src/workflows/provisioning.ts). */
export interface Provisioner {
  /** Refuses bad provisioning settings before anything is created. */
  checkSettings(egress: EgressMode): Promise<void>;
  /** Runs the steps in a cancellable phase `Provisioning <name>`; throws ProvisioningFailed at a failed step. */
  provision(
    backend: Backend,
    serverId: string,
    name: string,
    egress: EgressMode,
    run: RunPhase,
  ): Promise<StepOutcome[]>;
  isProvisioned(backend: Backend, serverId: string, name: string): Promise<boolean>;
  /** This session's last or current run in the sandbox, if any. */
  run(serverId: string, name: string): ProvisioningRun | undefined;
  provisionedWith(serverId: string, name: string): EgressMode | undefined;
  rememberMode(serverId: string, name: string, mode: EgressMode | undefined): Promise<void>;
  /** The sandbox was re-made (restored): its last run is forgotten. */
  forget(serverId: string, name: string): void;
  /** The sandbox is gone: its run and its remembered mode go. */
  destroyed(serverId: string, name: string): Promise<void>;
}

/**
 * What this machine keeps pointing at a sandbox besides its SSH entries (the editor: persistent-session listings,
 * git remotes added for it), dropped when the sandbox is destroyed. Never throws.
 */
export interface SandboxLinks {
  destroyed(serverId: string, name: string): Promise<void>;
}

export interface WorkflowContext {
  serverId: string;
  /** The server's name as the user knows it, for messages. */
  serverLabel: string;
  backend: Backend;
  ssh: SandboxSsh;
  egress: RememberedEgress;
  egressStatus: EgressTracking;
  provisioning: Provisioner;
  log: Logger;
  run: RunPhase;
  /** The SSH config file Pixels may have added Remote-SSH entries to (removed on destroy). */
  sshConfigPath: string | undefined;
  /**
   * The inputs of an egress policy: the `[defaults] allow` entries, the agent preset's extra domains, and the
   * default mode (for a sandbox whose mode nobody remembers).
   */
  egressInputs(): { allow: string[]; agentExtra: string[]; defaultMode: EgressMode };
  /** Links to forget when a sandbox is destroyed (absent: nothing else points at sandboxes). */
  links?: SandboxLinks;
  /** The server's sandboxes changed: the editor refreshes its view (and waits for it); tools need nothing. */
  changed(): Promise<void>;
}
