// The parts of Incus API objects that the backend reads.

export interface IncusAddress {
  family: 'inet' | 'inet6' | string;
  address: string;
  netmask?: string;
  scope: 'global' | 'link' | 'local' | string;
}

export interface IncusInstanceState {
  status: string;
  status_code?: number;
  network?: Record<string, { addresses?: IncusAddress[]; hwaddr?: string; type?: string }> | null;
  cpu?: { usage?: number };
  memory?: { usage?: number; usage_peak?: number };
  disk?: Record<string, { usage?: number; total?: number }> | null;
  /** -1 when the instance is stopped. */
  processes?: number;
}

export interface IncusSnapshot {
  name: string;
  architecture?: string;
  created_at: string;
  size?: number;
  stateful?: boolean;
  config?: Record<string, string>;
  devices?: Record<string, Record<string, string>>;
  profiles?: string[];
}

export interface IncusInstance {
  name: string;
  architecture?: string;
  status: string;
  status_code?: number;
  type?: string;
  location?: string;
  project?: string;
  created_at?: string;
  config: Record<string, string>;
  devices?: Record<string, Record<string, string>>;
  profiles?: string[];
  expanded_config?: Record<string, string>;
  state?: IncusInstanceState | null;
  snapshots?: IncusSnapshot[] | null;
}

export interface IncusServer {
  api_version?: string;
  /** "trusted" or "untrusted" (the client certificate is not in the server's trust store). */
  auth?: string;
  environment?: {
    server_version?: string;
    server_name?: string;
    server_clustered?: boolean;
    storage?: string;
  };
}

export interface IncusClusterMember {
  server_name: string;
  /** "Online", "Offline", "Evacuated", ... */
  status?: string;
  /** Why, e.g. "No heartbeat for 14.8s (…)". */
  message?: string;
  url?: string;
  groups?: string[];
}
