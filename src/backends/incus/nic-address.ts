// The address of a new sandbox, known before its first boot: its NIC on a managed bridge gets a free IPv4 as the
// device's `ipv4.address`. Incus writes that as a dnsmasq dhcp-host entry (MAC -> address) when the instance is
// created, so the guest's DHCP client gets exactly that address, and readiness can try SSH there as soon as the
// instance runs instead of first waiting to see a lease. Incus itself refuses a create whose NIC address another
// NIC on the bridge already has (nic_bridged.go checkAddressConflict): that is how a pick that lost a race to
// another client is noticed, and then another address is tried.
import { NotAuthorizedError, NotFoundError, PixelsError } from '../../core/errors';
import type { Logger } from '../../core/log';
import { BridgeConfigError, NoFreeAddressError, pickFreeAddress, type BridgeIpv4 } from './address-pick';
import type { IncusRestClient } from './rest-client';
import type { IncusInstance } from './types';

export type Devices = Record<string, Record<string, string>>;

/** How Incus refuses a NIC address another NIC on the same bridge (and member) has. */
const ADDRESS_CONFLICT = /IP address "?([0-9.]+)"? already defined on another NIC/i;
/** A create whose address was taken in the meantime is tried again this many times, each with another address. */
export const ADDRESS_ATTEMPTS = 5;

/** The address Incus said another NIC already has, when that is why it refused. */
export function conflictingAddress(err: unknown): string | undefined {
  return err instanceof PixelsError ? ADDRESS_CONFLICT.exec(err.message)?.[1] : undefined;
}

/**
 * The NIC whose address is pinned: the first (by device name) NIC on a managed network; undefined when there is
 * none (an unmanaged parent bridge, macvlan: no dnsmasq of Incus' to hand the address out).
 */
export function primaryNic(devices: Devices): { device: string; network: string } | undefined {
  const nics = Object.entries(devices)
    .filter(([, d]) => d.type === 'nic' && d.network && (!d.nictype || d.nictype === 'bridged'))
    .sort(([a], [b]) => a.localeCompare(b));
  return nics.length ? { device: nics[0][0], network: nics[0][1].network } : undefined;
}

/** The address pinned on a NIC of these (expanded) devices, as primaryNic chooses the NIC. */
export function pinnedAddress(devices: Devices | undefined): string | undefined {
  const nic = devices ? primaryNic(devices) : undefined;
  const address = nic ? devices?.[nic.device]['ipv4.address'] : undefined;
  return address && address !== 'none' ? address : undefined;
}

/**
 * A copy's own devices without what identifies the source's NICs: a static address or MAC the source has would
 * make Incus refuse the copy (or, for an address, hand the same one to both).
 */
export function withoutNicIdentity(devices: Devices): Devices {
  const out: Devices = {};
  for (const [name, d] of Object.entries(devices)) {
    if (d.type !== 'nic') {
      out[name] = d;
      continue;
    }
    const rest = { ...d };
    delete rest['ipv4.address'];
    delete rest['ipv6.address'];
    delete rest.hwaddr;
    out[name] = rest;
  }
  return out;
}

interface IncusNetwork {
  name: string;
  type?: string;
  managed?: boolean;
  config?: Record<string, string>;
}

interface IncusLease {
  address: string;
  type?: string;
}

/** Picks free addresses on a server's managed bridges; one per client, so its own concurrent picks differ. */
export class NicAddresses {
  /** Addresses this client picked for a create that has not answered yet. */
  private readonly held = new Set<string>();

  constructor(
    private readonly client: IncusRestClient,
    private readonly log: Logger,
    /** Which of the free addresses to take (default: one at random). */
    private readonly choose: (bridge: BridgeIpv4, taken: Set<string>) => Promise<string> | string = (
      bridge,
      taken,
    ) => pickFreeAddress(bridge, taken),
  ) {}

  /** The bridge's IPv4 facts when an address can be pinned there: a managed bridge with IPv4 and DHCPv4. */
  private async bridge(network: string): Promise<BridgeIpv4 | undefined> {
    const net = (await this.client.call<IncusNetwork>('GET', `/1.0/networks/${encodeURIComponent(network)}`))
      .metadata;
    const c = net.config ?? {};
    const address = c['ipv4.address'];
    // Incus refuses a NIC ipv4.address on a network without DHCPv4 (unless IP filtering is on).
    if (
      net.type !== 'bridge' ||
      net.managed === false ||
      !address ||
      address === 'none' ||
      c['ipv4.dhcp'] === 'false'
    )
      return undefined;
    return {
      name: network,
      address,
      dhcpRanges: c['ipv4.dhcp.ranges'],
      dhcpGateway: c['ipv4.dhcp.gateway'],
      ovnRanges: c['ipv4.ovn.ranges'],
    };
  }

  /** Every IPv4 the bridge's users hold: leases (with the gateway and static NIC addresses) and NIC addresses. */
  private async taken(network: string): Promise<Set<string>> {
    const [leases, instances] = await Promise.all([
      this.client.call<IncusLease[]>('GET', `/1.0/networks/${encodeURIComponent(network)}/leases`),
      this.instancesEverywhere(),
    ]);
    const taken = new Set<string>(this.held);
    for (const lease of leases.metadata ?? []) if (lease.address) taken.add(lease.address);
    for (const inst of instances) {
      for (const d of Object.values(inst.expanded_devices ?? inst.devices ?? {})) {
        if (d.type !== 'nic' || (d.network !== network && d.parent !== network)) continue;
        if (d['ipv4.address']) taken.add(d['ipv4.address']);
      }
    }
    return taken;
  }

  /**
   * Instances of every project (a bridge of the default project serves the projects without networks of their
   * own, and Incus checks an address against all of them); a client restricted to its project sees its own.
   */
  private async instancesEverywhere(): Promise<IncusInstance[]> {
    try {
      return (
        await this.client.call<IncusInstance[]>('GET', '/1.0/instances', {
          query: { recursion: '1', 'all-projects': 'true' },
        })
      ).metadata;
    } catch (err) {
      if (!(err instanceof NotAuthorizedError)) throw err;
      return (await this.client.call<IncusInstance[]>('GET', '/1.0/instances', { query: { recursion: '1' } }))
        .metadata;
    }
  }

  /**
   * Runs `create` with the devices given an address on the primary NIC (`expanded`: the devices the instance
   * will have, its profiles' included), retrying with another address when Incus says the address was taken
   * meanwhile. Without a managed bridge, or with none free, `create` runs once with the devices unchanged (the
   * guest then waits for DHCP as before). Returns the pinned address.
   */
  async createPinned(
    what: string,
    devices: Devices,
    expanded: Devices,
    create: (devices: Devices) => Promise<unknown>,
  ): Promise<string | undefined> {
    const nic = primaryNic(expanded);
    const bridge = nic ? await this.bridgeOrUndefined(nic.network, what) : undefined;
    if (!nic || !bridge) {
      await create(devices);
      return undefined;
    }
    const refused = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      let address: string;
      try {
        const taken = await this.taken(nic.network);
        for (const a of refused) taken.add(a);
        address = await this.choose(bridge, taken);
      } catch (err) {
        if (!(err instanceof NoFreeAddressError || err instanceof BridgeConfigError)) throw err;
        this.log.warn(`${what}: ${err.message} It gets its address by DHCP instead.`);
        await create(devices);
        return undefined;
      }
      this.held.add(address);
      try {
        await create({ ...devices, [nic.device]: { ...expanded[nic.device], 'ipv4.address': address } });
        return address;
      } catch (err) {
        if (conflictingAddress(err) !== address || attempt >= ADDRESS_ATTEMPTS) throw err;
        this.log.info(`${what}: ${address} was taken by another NIC meanwhile; trying another address`);
        refused.add(address);
      } finally {
        this.held.delete(address);
      }
    }
  }

  /** The bridge, or undefined (logged) when it cannot be read: the create goes on with DHCP. */
  private async bridgeOrUndefined(network: string, what: string): Promise<BridgeIpv4 | undefined> {
    try {
      return await this.bridge(network);
    } catch (err) {
      if (!(err instanceof NotFoundError || err instanceof NotAuthorizedError)) throw err;
      this.log.warn(
        `${what}: cannot read network "${network}" (${err.message}); its address comes from DHCP`,
      );
      return undefined;
    }
  }
}
