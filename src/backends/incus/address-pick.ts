// Choosing a free IPv4 address on a managed Incus bridge for a NIC's `ipv4.address` (pure; unit-tested).
// Incus accepts any address of the bridge's subnet but the bridge's own; its dnsmasq then hands that address to
// the NIC's MAC. What is free is what no one else holds: not the gateway, not the subnet's network and broadcast
// addresses, not another NIC's static address, not a current lease, not an address the network reserves for
// other uses (`ipv4.dhcp.gateway`, `ipv4.ovn.ranges`). When `ipv4.dhcp.ranges` is set, an address outside those
// ranges is preferred: dnsmasq gives the ranges to dynamic clients, so a pinned address there could be leased to
// one in the moment before our NIC is created.
import {
  AddressProblem,
  formatAddress,
  parseIPv4,
  parseRange,
  subtractRanges,
  type IpRange,
} from '../../core/ip';
import { PixelsError } from '../../core/errors';

export interface BridgeIpv4 {
  /** The network's name, for messages. */
  name: string;
  /** The network's `ipv4.address` ("10.77.0.1/24"): the bridge's (gateway's) address and the subnet. */
  address: string;
  /** `ipv4.dhcp.ranges`: "a-b" pieces separated by commas. */
  dhcpRanges?: string;
  /** `ipv4.dhcp.gateway`: a gateway other than the bridge. */
  dhcpGateway?: string;
  /** `ipv4.ovn.ranges`: addresses OVN routers on this uplink take. */
  ovnRanges?: string;
}

/** No address of the subnet is free. */
export class NoFreeAddressError extends PixelsError {
  constructor(message: string) {
    super('server', message);
  }
}

/** `ipv4.address` of a bridge that is not "a.b.c.d/n", or `*.ranges` pieces that are not "a-b". */
export class BridgeConfigError extends PixelsError {
  constructor(message: string) {
    super('server', message);
  }
}

function single(bits: bigint): IpRange {
  return { family: 4, start: bits, end: bits };
}

function parseDashRanges(text: string | undefined, key: string, network: string): IpRange[] {
  if (!text?.trim()) return [];
  return text.split(',').map((piece) => {
    const [a, b, extra] = piece.trim().split('-');
    try {
      if (extra !== undefined || b === undefined) throw new AddressProblem('expected "first-last"');
      const start = parseIPv4(a.trim());
      const end = parseIPv4(b.trim());
      if (end < start) throw new AddressProblem('the last address is before the first');
      return { family: 4, start, end } as IpRange;
    } catch (err) {
      throw new BridgeConfigError(
        `Network "${network}" has an unreadable ${key} "${piece.trim()}": ${(err as Error).message}.`,
      );
    }
  });
}

/** The bridge's own address and its subnet; BridgeConfigError when `ipv4.address` is not "a.b.c.d/n". */
export function bridgeSubnet(bridge: BridgeIpv4): { gateway: bigint; subnet: IpRange; prefix: number } {
  const [address, prefix] = bridge.address.split('/');
  try {
    if (prefix === undefined) throw new AddressProblem('it has no "/prefix"');
    return { gateway: parseIPv4(address), subnet: parseRange(bridge.address), prefix: Number(prefix) };
  } catch (err) {
    throw new BridgeConfigError(
      `Network "${bridge.name}" has an unreadable ipv4.address "${bridge.address}": ${(err as Error).message}.`,
    );
  }
}

/**
 * The addresses a NIC may take, in two tiers (the preferred first): with `ipv4.dhcp.ranges` set, outside them and
 * then inside them; without, the whole subnet. Addresses in `taken` (any text that is not an IPv4 address of the
 * subnet is ignored) are left out.
 */
export function freeAddressRanges(bridge: BridgeIpv4, taken: Iterable<string>): IpRange[][] {
  const { gateway, subnet } = bridgeSubnet(bridge);
  const hosts: IpRange =
    subnet.end - subnet.start >= 3n
      ? { family: 4, start: subnet.start + 1n, end: subnet.end - 1n } // no network, no broadcast address
      : subnet; // /31 and /32 have no such addresses (RFC 3021)
  const cuts: IpRange[] = [single(gateway)];
  for (const text of taken) {
    try {
      cuts.push(single(parseIPv4(text.trim())));
    } catch {
      // an IPv6 lease, an empty field: not an IPv4 address of this subnet
    }
  }
  if (bridge.dhcpGateway) {
    try {
      cuts.push(single(parseIPv4(bridge.dhcpGateway.trim())));
    } catch {
      throw new BridgeConfigError(
        `Network "${bridge.name}" has an unreadable ipv4.dhcp.gateway "${bridge.dhcpGateway}".`,
      );
    }
  }
  cuts.push(...parseDashRanges(bridge.ovnRanges, 'ipv4.ovn.ranges', bridge.name));
  const free = subtractRanges([hosts], cuts);
  const dynamic = parseDashRanges(bridge.dhcpRanges, 'ipv4.dhcp.ranges', bridge.name);
  if (!dynamic.length) return [free];
  return [subtractRanges(free, dynamic), subtractRanges(free, subtractRanges(free, dynamic))];
}

/** How many addresses the ranges hold. */
function size(ranges: readonly IpRange[]): bigint {
  return ranges.reduce((n, r) => n + (r.end - r.start + 1n), 0n);
}

/**
 * A free address of the bridge's subnet, chosen at random in the preferred tier that has one (`random` returns a
 * number in [0, 1), like Math.random). Random rather than lowest-first: two clients picking at the same moment
 * then rarely pick the same address, and a just-freed address is not handed to the next sandbox at once (another
 * machine's ARP cache or known_hosts may still name the old one). NoFreeAddressError when the subnet is full.
 */
export function pickFreeAddress(
  bridge: BridgeIpv4,
  taken: Iterable<string>,
  random: () => number = Math.random,
): string {
  const tiers = freeAddressRanges(bridge, taken);
  for (const tier of tiers) {
    const count = size(tier);
    if (count === 0n) continue;
    // 2^53 steps are plenty for any subnet a bridge has (at most a /8 in practice).
    let index = BigInt(Math.min(Math.floor(random() * Number(count)), Number(count) - 1));
    for (const r of tier) {
      const n = r.end - r.start + 1n;
      if (index < n) return formatAddress(4, r.start + index);
      index -= n;
    }
  }
  const { subnet, prefix } = bridgeSubnet(bridge);
  throw new NoFreeAddressError(
    `No free IPv4 address is left on network "${bridge.name}" (${formatAddress(4, subnet.start)}/${prefix}): ` +
      "every address is the gateway's, another instance's or leased.",
  );
}
