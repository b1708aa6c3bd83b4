// Shared types of the protocol layer: the per-connection state, the server-wide context and the method registry.
import type { SimEngine } from './engine.js';
import type { SimObject, SimValue } from './ejson.js';
import type { EventHub } from './events.js';
import type { Faults } from './faults.js';
import type { JobManager, JobRunContext } from './jobs.js';
import type { SimNetworkLayout } from './methods/network.js';
import type { ContainerStore } from './methods/container-store.js';

/** The API family a simulated server speaks: 25.04 and 25.10 are Incus (`virt.*`), 26 is libvirt LXC (`container.*`). */
export type SimVersion = '25.04' | '25.10' | '26';

/**
 * The two TrueNAS 26 builds the simulator plays (docs truenas-26.md §0): TS-26.0.0-BETA.3 (snapshots of container
 * datasets allowed, non-job delete) and stable/26 = 26.0.0-RC.1 (container datasets a protected path, delete a job
 * with options).
 */
export type Sim26Build = '26.0.0-BETA.3' | '26.0.0-RC.1';

/** What `--version` / `SimOptions.version` accept: a family (26 = BETA.3) or a 26 build by name. */
export type SimVersionOption = SimVersion | Sim26Build | '26-b3' | '26-rc1';

/** The family and, for 26, the build a version option names; undefined when it names none. */
export function parseSimVersion(
  option: string,
): { version: SimVersion; build: Sim26Build | null } | undefined {
  switch (option) {
    case '25.04':
    case '25.10':
      return { version: option, build: null };
    case '26':
    case '26-b3':
    case '26.0.0-BETA.3':
      return { version: '26', build: '26.0.0-BETA.3' };
    case '26-rc1':
    case '26.0.0-RC.1':
      return { version: '26', build: '26.0.0-RC.1' };
    default:
      return undefined;
  }
}

export interface Session {
  username: string;
  loginAt: Date;
  apiKeyId: number;
  loginId: string;
}

/** One WebSocket client as the methods see it. */
export interface Conn {
  readonly id: number;
  session: Session | null;
  /** legacy_jobs (default true): a job call answers with the job id at once */
  legacyJobs: boolean;
  privateMethods: boolean;
  pyExceptions: boolean;
  /** TLS, or a loopback peer that is not pretending to be remote */
  readonly secureTransport: boolean;
  /** the endpoint it connected to, e.g. "/api/current" or "/api/v25.10.4" */
  readonly apiPath: string;
  /** subscription id -> event name */
  readonly subscriptions: Map<string, string>;
  readonly open: boolean;
  sendNotification(method: string, params: SimValue): void;
  /** drop the TCP connection without a close handshake */
  terminate(): void;
}

export interface SimContext {
  readonly version: SimVersion;
  /** the TrueNAS 26 build (null on 25.x) */
  readonly build: Sim26Build | null;
  readonly engine: SimEngine;
  readonly jobs: JobManager;
  readonly events: EventHub;
  readonly faults: Faults;
  readonly auth: AuthConfig;
  readonly jobDurationMs: number;
  /** virt.global state INITIALIZED (true) or NO_POOL (false) */
  readonly virtInitialized: boolean;
  /** The NAS's own network (methods/network.ts): a stock box, or one with a LAN bridge. */
  readonly networkLayout: SimNetworkLayout;
  /** virt.global.config `bridge`: null is the automatic (NAT'd) bridge, as on a stock NAS */
  virtBridge: string | null;
  /** limit unauthenticated calls (utils/rate_limit/cache.py) */
  readonly rateLimit: boolean;
  /** ZFS metadata the engines do not model: holds per snapshot id, and snapshots marked defer_destroy */
  readonly holds: Map<string, Set<string>>;
  readonly deferred: Set<string>;
  /**
   * The simulator's own directory standing in for the NAS's root filesystem: everything outside a mounted
   * dataset (an unmounted instance's mountpoint, /etc/passwd, /root/.ssh, ...) is read and written there.
   */
  readonly nasRoot: string;
  readonly bootId: string;
  readonly startedAt: Date;
  /** TrueNAS 26: the middleware's own database (container rows, devices, lxc config); null on 25.x */
  readonly containers: ContainerStore | null;
  /**
   * An instance's status really changed (deduplicated): 25.x sends virt.instance.query CHANGED {status}; 26 sends
   * container.query CHANGED with the whole entry (the libvirt domain event, pc/event.py).
   */
  notifyStatus(name: string, status: string | null): void;
  /** serialises state changes that must not interleave (a whole rollback -r, a recursive delete) */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export interface AuthConfig {
  apiKey: string;
  username: string;
  treatAsRemote: boolean;
  /** set when the key was used over insecure transport */
  revoked: boolean;
}

export interface CallEnv {
  readonly ctx: SimContext;
  readonly conn: Conn;
  readonly messageId: SimValue | undefined;
  /** present when the method runs as a job */
  readonly job?: JobRunContext;
}

export interface MethodSpec {
  name: string;
  /** callable before login (authentication_required=False / @no_auth_required) */
  noAuth?: boolean;
  /** false: not counted by the unauthenticated-call rate limit (rate_limit=False, core.set_options) */
  rateLimit?: false;
  /** a private method: callable, but the real server logs a warning */
  private?: boolean;
  job?: {
    /** computes the job lock name; throwing means "Error handling job lock" (-32001 EINVAL at once) */
    lock?: (args: SimValue[]) => string | null;
    abortable?: boolean;
  };
  handler(env: CallEnv, args: SimValue[]): Promise<SimValue>;
}

export class Registry {
  private readonly methods = new Map<string, MethodSpec>();
  add(spec: MethodSpec): void {
    if (this.methods.has(spec.name)) throw new Error(`method ${spec.name} registered twice`);
    this.methods.set(spec.name, spec);
  }
  get(name: string): MethodSpec | undefined {
    return this.methods.get(name);
  }
  names(): string[] {
    return [...this.methods.keys()].sort();
  }
}

export function credentialsOf(conn: Conn, version: SimVersion): SimObject | null {
  const session = conn.session;
  if (!session) return null;
  const data: SimObject = {
    username: session.username,
    login_at: session.loginAt,
    api_key: { id: session.apiKeyId, name: 'pixels' },
  };
  if (version !== '25.04') data.login_id = session.loginId;
  return { type: 'API_KEY', data };
}
