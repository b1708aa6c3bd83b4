// The seam between the editor and the servers: the tree and the commands talk to a Backend only.
import type { Disposable } from './disposable';
import type { ServerLimits } from './names';
import type { NetworkPlan } from './network-plan';
import type {
  Checkpoint,
  EgressMode,
  CloneSource,
  CreateOptions,
  ExecResult,
  OperationOptions,
  Sandbox,
  SandboxUsage,
  StopOptions,
  WriteFileOptions,
} from './sandbox';

export type BackendKind = 'truenas' | 'incus';

/** The product name a user knows ("TrueNAS", not "truenas"). */
export const BACKEND_PRODUCT: Record<BackendKind, string> = { truenas: 'TrueNAS', incus: 'Incus' };

/** What a backend can do, so the UI does not guess from the server type. */
export interface BackendCapabilities {
  /** Restore any checkpoint, not only the newest. */
  restoreAnyCheckpoint: boolean;
  cloneFromCheckpoint: boolean;
  cloneFromCurrentState: boolean;
  /** Write files into the sandbox without SSH (TrueNAS file_receive, Incus file push). */
  writeFiles: boolean;
  /**
   * writeFile resolves paths inside the sandbox (Incus file API), so nothing inside can redirect it. False: it
   * writes through the server's own path to the sandbox's root filesystem, which follows symbolic links planted
   * inside (TrueNAS 25.x file_receive runs open() as root on the NAS); such a backend writes only into a sandbox
   * nothing has run in yet, and the editor writes over SSH into any other.
   */
  writesResolveInSandbox: boolean;
  /** Run a command without SSH (Incus exec API). */
  exec: boolean;
  /** Long operations can be cancelled on the server. */
  cancel: boolean;
  /** The server is a cluster with members a sandbox can be placed on. */
  clusterMembers: boolean;
  /** The backend pushes change events (no polling needed beyond a slow backup). */
  events: boolean;
  /** Set when the server refuses checkpoints altogether: the reason, for the user. */
  checkpointsUnavailable?: string;
}

/** A change the server told us about; `name` is the short sandbox name when the change concerns one. */
export interface BackendChange {
  kind: 'sandbox' | 'checkpoint' | 'connection';
  name?: string;
}

export interface ServerInfo {
  /** Product and version, e.g. "TrueNAS 25.10.1" or "Incus 6.0.4". */
  version: string;
  clusterMembers?: string[];
  /** Cluster member groups, for a placement of `@group`. */
  clusterGroups?: string[];
}

/**
 * The host-side egress layer, which root inside a sandbox cannot undo. 'network': an Incus network ACL on the
 * sandbox's network refuses private ranges (LAN, link-local) for every instance on that network.
 */
export type HostGuardMode = 'off' | 'network';

/** What the host layer takes from a sandbox's egress policy: its mode and its allow list. */
export interface HostGuardPolicy {
  mode: EgressMode;
  allow: readonly string[];
}

export interface HostGuardState {
  mode: HostGuardMode;
  /** The network the guard is attached to (network mode). */
  network?: string;
  /** Private addresses the host lets through on that network (allowed by its sandboxes), as ranges. */
  exceptions: string[];
  /** One sentence for the user. */
  summary: string;
}

export interface Backend extends Disposable {
  readonly kind: BackendKind;
  /** Stable id of the configured server this backend talks to. */
  readonly serverId: string;

  /** Connects (if needed) and says what the server is. */
  info(): Promise<ServerInfo>;
  capabilities(): Promise<BackendCapabilities>;
  /** The most CPU and memory one sandbox can have (the host's cores and memory), where the API says. */
  limits?(): Promise<ServerLimits>;

  /** All `px-` sandboxes with their checkpoints, in a constant number of calls (no call per sandbox). */
  list(): Promise<Sandbox[]>;
  get(name: string): Promise<Sandbox>;
  create(options: CreateOptions, op?: OperationOptions): Promise<Sandbox>;
  start(name: string, op?: OperationOptions): Promise<void>;
  stop(name: string, options?: StopOptions, op?: OperationOptions): Promise<void>;
  restart(name: string, options?: StopOptions, op?: OperationOptions): Promise<void>;
  /** Removes the sandbox and all its checkpoints. */
  destroy(name: string, op?: OperationOptions): Promise<void>;

  /** CPU, memory and disk use of a running sandbox, where the API gives them in one call (Incus state). */
  usage?(name: string): Promise<SandboxUsage>;

  /** Newest first. */
  listCheckpoints(name: string): Promise<Checkpoint[]>;
  /** `label` defaults to `px-YYYYMMDD-HHMMSS`. */
  createCheckpoint(name: string, label?: string): Promise<Checkpoint>;
  /** Restores any checkpoint; newer checkpoints are destroyed. */
  restoreCheckpoint(name: string, label: string, op?: OperationOptions): Promise<void>;
  deleteCheckpoint(name: string, label: string): Promise<void>;
  /** A new sandbox from a checkpoint or the current state, with its own identity. */
  clone(source: CloneSource, newName: string, op?: OperationOptions): Promise<Sandbox>;

  /** Writes a file into the sandbox's filesystem (capability `writeFiles`). */
  writeFile(name: string, path: string, content: Buffer, options?: WriteFileOptions): Promise<void>;
  /** Runs argv as root without SSH (capability `exec`). */
  exec?(
    name: string,
    argv: string[],
    options?: { stdin?: Buffer; env?: Record<string, string> },
  ): Promise<ExecResult>;

  /**
   * Puts the host-side egress layer (setting `hostGuard`) in line with the sandbox's policy, or removes it when
   * the setting is off. Absent where the server offers no such layer (TrueNAS).
   */
  syncHostGuard?(name: string, policy: HostGuardPolicy): Promise<HostGuardState>;

  /**
   * Where a new sandbox will land on the network and whether this editor can reach it directly. Absent where
   * the backend cannot tell.
   */
  networkPlan?(): Promise<NetworkPlan>;

  /** Server-pushed changes, to refresh the tree. */
  readonly onDidChange: (listener: (change: BackendChange) => void) => Disposable;
}
