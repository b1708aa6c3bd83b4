// The domain model shared by every backend and by the editor layer.

/** Every sandbox is an instance named `px-<name>`, the same prefix the pixels CLI uses. */
export const INSTANCE_PREFIX = 'px-';

export type SandboxStatus = 'running' | 'stopped' | 'starting' | 'stopping' | 'frozen' | 'error' | 'unknown';

export type EgressMode = 'unrestricted' | 'agent' | 'allowlist';

export interface Checkpoint {
  /** Sandbox short name (without `px-`). */
  sandbox: string;
  label: string;
  /** Bytes referenced by the snapshot, when the backend knows it. */
  sizeBytes?: number;
  createdAt: Date;
}

export interface Sandbox {
  /** Short name, without the `px-` prefix. */
  name: string;
  /** The instance name on the server (`px-<name>`). */
  instanceName: string;
  status: SandboxStatus;
  ipv4?: string;
  ipv6?: string;
  /** Human description of the image ("Debian bookworm amd64"). */
  image?: string;
  cpu?: string;
  memoryMiB?: number;
  createdAt?: Date;
  /** Cluster member running it, on clustered servers. */
  location?: string;
  /**
   * Why the cluster member it lives on cannot be reached right now (offline, evacuated), in one sentence; its
   * status is then what the cluster last knew, not an error of the sandbox's own.
   */
  memberAway?: string;
  /** Free-form key/values the backend keeps with the instance (e.g. Incus `user.*` config). */
  labels?: Record<string, string>;
  /** Newest first. Present when the backend listed checkpoints with the sandboxes. */
  checkpoints?: Checkpoint[];
  /** Why this sandbox can have no checkpoints on its server (TrueNAS 26 RC.1 protects container datasets). */
  checkpointsUnavailable?: string;
}

/** What a running sandbox uses right now, as far as the server says. */
export interface SandboxUsage {
  /** CPU time used since it started, in seconds (two samples give the share of a core). */
  cpuSeconds?: number;
  memoryBytes?: number;
  /** The root disk's use (not its checkpoints'). */
  diskBytes?: number;
  processes?: number;
  /** When the sample was taken (ms since the epoch). */
  sampledAt: number;
}

export interface CreateOptions {
  /** Short name; validated with `validateSandboxName`. */
  name: string;
  /** Image alias or fingerprint. */
  image: string;
  cpu?: string;
  memoryMiB?: number;
  /** Cluster member (or `@group`) to place it on; absent lets the server choose. */
  target?: string;
  environment?: Record<string, string>;
  /** Start after create (default true). */
  start?: boolean;
  /** Backend-specific NIC settings (TrueNAS NIC device, Incus network name). */
  nic?: { network?: string; nicType?: 'BRIDGED' | 'MACVLAN'; parent?: string };
}

export interface StopOptions {
  /** Seconds to wait for a clean shutdown before failing (or forcing, with `force`). */
  timeoutSec?: number;
  force?: boolean;
}

export interface CloneSource {
  sandbox: string;
  /** Clone from this checkpoint; absent means the sandbox's current state. */
  checkpoint?: string;
  /** Cluster member (or `@group`) to place the clone on; absent lets the server choose. */
  target?: string;
}

export interface ProgressReport {
  percent?: number;
  description?: string;
}

export interface OperationOptions {
  onProgress?: (report: ProgressReport) => void;
  /** Cancels waiting; backends abort the server-side job when the server allows it. */
  signal?: AbortSignal;
}

export interface WriteFileOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  append?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export function instanceName(shortName: string): string {
  return INSTANCE_PREFIX + shortName;
}

export function shortName(instance: string): string {
  return instance.startsWith(INSTANCE_PREFIX) ? instance.slice(INSTANCE_PREFIX.length) : instance;
}
