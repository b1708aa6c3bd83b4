// TrueNAS 26's own database for containers (plugins/container, tables container_container and container_device)
// and the lxc config row: what the middleware keeps besides the libvirt domain (the engine's instance) and the
// ZFS dataset. Rows get integer ids from 1, as SQLite primary keys do.
import type { SimObject } from '../ejson.js';

export interface ContainerRow {
  id: number;
  uuid: string;
  name: string;
  description: string;
  autostart: boolean;
  time: 'LOCAL' | 'UTC';
  cpuset: string | null;
  shutdown_timeout: number;
  dataset: string;
  init: string;
  initdir: string | null;
  initenv: Record<string, string>;
  inituser: string | null;
  initgroup: string | null;
  /** {"type":"DEFAULT"} | {"type":"ISOLATED","slice":n} | null (privileged) */
  idmap: SimObject | null;
  capabilities_policy: 'DEFAULT' | 'ALLOW' | 'DENY';
  capabilities_state: Record<string, boolean>;
  /** the libvirt domain exists (defined by the first start, kept after a stop): domain_state is null before */
  defined: boolean;
}

export interface DeviceRow {
  id: number;
  container: number;
  attributes: SimObject;
}

export interface LxcConfig {
  preferred_pool: string | null;
  /** null: the automatic truenasbr0 */
  bridge: string | null;
  v4_network: string | null;
  v6_network: string | null;
}

/** pc/bridge.py BRIDGE_NAME: the automatic container bridge. */
export const CONTAINER_BRIDGE = 'truenasbr0';

export class ContainerStore {
  readonly rows = new Map<number, ContainerRow>();
  readonly devices = new Map<number, DeviceRow>();
  private nextId = 1;
  private nextDeviceId = 1;
  readonly lxc: LxcConfig;

  constructor(pool: string) {
    this.lxc = {
      preferred_pool: pool,
      bridge: null,
      v4_network: '172.200.0.0/24',
      v6_network: 'fd42:4c58:43ae::/64',
    };
  }

  insert(row: Omit<ContainerRow, 'id'>): ContainerRow {
    const full = { ...row, id: this.nextId++ };
    this.rows.set(full.id, full);
    return full;
  }

  insertDevice(container: number, attributes: SimObject): DeviceRow {
    const row = { id: this.nextDeviceId++, container, attributes };
    this.devices.set(row.id, row);
    return row;
  }

  byName(name: string): ContainerRow | undefined {
    return [...this.rows.values()].find((r) => r.name === name);
  }

  devicesOf(container: number): DeviceRow[] {
    return [...this.devices.values()].filter((d) => d.container === container).sort((a, b) => a.id - b.id);
  }

  /** datastore.delete of the container row and its devices. */
  remove(id: number): void {
    for (const d of this.devicesOf(id)) this.devices.delete(d.id);
    this.rows.delete(id);
  }

  /** container_bridge_name(): the lxc bridge, or the automatic one. */
  bridgeName(): string {
    return this.lxc.bridge ?? CONTAINER_BRIDGE;
  }
}
