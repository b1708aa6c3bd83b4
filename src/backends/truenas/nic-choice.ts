// Which NIC a new TrueNAS sandbox gets, from the settings or from what the NAS says about its network
// (interface.query, network.general.summary, virt.global.config / bridge_choices / get_network). Pure: the
// backend gathers the facts, this decides.
import { AddressProblem, parseIPv4, parseRange } from '../../core/ip';
import type { NetworkPlan, NicSetting } from '../../core/network-plan';

/** The part of an interface.query entry we read (api/v25_*: InterfaceEntry). */
export interface InterfaceEntry {
  name: string;
  /** PHYSICAL | BRIDGE | LINK_AGGREGATION | VLAN | UNKNOWN */
  type: string;
  state: {
    link_state: string;
    /** Runtime addresses (25.04 also lists LINK entries); netmask is a prefix length. */
    aliases: { type: string; address: string; netmask?: number | string }[];
  };
  /** Configured static addresses; empty when the interface uses DHCP. */
  aliases: { type: string; address: string; netmask: number | string }[];
}

export interface NetworkFacts {
  interfaces: InterfaceEntry[];
  /** network.general.summary default_routes (IPv4 and IPv6 gateways). */
  defaultRoutes: string[];
  /** virt.global.bridge_choices keys, "[AUTO]" included. */
  bridgeChoices: string[];
  /** virt.global.config bridge: null = the automatic bridge. */
  globalBridge: string | null;
  /** virt.global.get_network of the automatic bridge, when it could be read. */
  automatic?: { name: string; ipv4Address: string; ipv4Nat: boolean };
}

/** The name the middleware gives the automatic bridge on 25.04 / 25.10 (plugins/virt/utils.py INCUS_BRIDGE). */
export const AUTOMATIC_BRIDGE = 'incusbr0';
const AUTO_CHOICE = '[AUTO]';

function prefixOf(netmask: number | string | undefined): number | undefined {
  if (typeof netmask === 'number') return netmask;
  if (typeof netmask !== 'string' || netmask === '') return undefined;
  if (/^\d+$/.test(netmask)) return Number(netmask);
  try {
    const bits = parseIPv4(netmask);
    return bits.toString(2).replace(/0+$/, '').length;
  } catch {
    return undefined;
  }
}

/**
 * The interface's first configured IPv4 address with its prefix. Like pixels (truenas-go reads `aliases`), only
 * configured addresses count: an interface on DHCP has none there (its lease is only in `state.aliases`), so a
 * NAS on DHCP gets no automatic MACVLAN and keeps the automatic bridge, as with pixels.
 */
export function ipv4Of(iface: InterfaceEntry): { address: string; prefix: number } | undefined {
  for (const a of iface.aliases ?? []) {
    if (a.type !== 'INET') continue;
    const prefix = prefixOf(a.netmask);
    if (prefix !== undefined && prefix >= 0 && prefix <= 32) return { address: a.address, prefix };
  }
  return undefined;
}

/** Any IPv4 address the interface has now (configured or leased): what a LAN bridge is recognised by. */
function currentIpv4Of(iface: InterfaceEntry): { address: string; prefix: number } | undefined {
  const configured = ipv4Of(iface);
  if (configured) return configured;
  for (const a of iface.state?.aliases ?? []) {
    const prefix = prefixOf(a.netmask);
    if (a.type === 'INET' && prefix !== undefined && prefix <= 32) return { address: a.address, prefix };
  }
  return undefined;
}

function holds(subnet: { address: string; prefix: number }, address: string): boolean {
  try {
    const range = parseRange(`${subnet.address}/${subnet.prefix}`);
    const bits = parseIPv4(address);
    return bits >= range.start && bits <= range.end;
  } catch (err) {
    if (err instanceof AddressProblem) return false;
    throw err;
  }
}

/** The first IPv4 default gateway, as pixels takes it. */
export function ipv4Gateway(routes: readonly string[]): string | undefined {
  return routes.find((r) => /^\d+\.\d+\.\d+\.\d+$/.test(r));
}

function up(iface: InterfaceEntry): boolean {
  return iface.state?.link_state === 'LINK_STATE_UP';
}

/**
 * The explicit setting as a plan (no facts needed: the user said what they want). Only a setting with a type
 * counts on TrueNAS: the middleware lower-cases nic_type when it builds the Incus device, so a NIC device
 * without one fails there (plugins/virt/instance_device.py); `network` alone is an Incus setting.
 */
export function planFromSetting(nic: NicSetting): NetworkPlan | undefined {
  if (nic.nicType === 'MACVLAN')
    return {
      kind: 'macvlan',
      parent: nic.parent,
      nic: { nicType: 'MACVLAN', parent: nic.parent },
      reachableFromClient: 'unknown',
      source: 'settings',
      summary: `LAN via MACVLAN on ${nic.parent} (from settings)`,
      explanation:
        `MACVLAN on ${nic.parent}, as configured. Machines on the LAN reach the sandbox directly; the NAS itself ` +
        'cannot (a MACVLAN property).',
    };
  if (nic.nicType === 'BRIDGED')
    return {
      kind: 'bridged',
      parent: nic.parent,
      nic: { nicType: 'BRIDGED', parent: nic.parent },
      reachableFromClient: 'unknown',
      source: 'settings',
      summary: `bridged on ${nic.parent} (from settings)`,
      explanation: `Bridged on ${nic.parent}, as configured: reachable from wherever that bridge's network is.`,
    };
  return undefined;
}

/**
 * With nothing configured: the NAS's own instance bridge when one is set; else a LAN bridge (one of the
 * bridge choices whose subnet holds the default gateway: the NAS reaches such sandboxes too); else as pixels
 * does: MACVLAN on the link-up physical interface whose subnet holds the default gateway (else the first such
 * interface); else the automatic bridge, which is NAT'd.
 */
export function chooseAutomatically(facts: NetworkFacts): NetworkPlan {
  const plan = choose(facts);
  const auto = facts.automatic;
  return auto?.ipv4Nat ? { ...plan, natSubnet: auto.ipv4Address } : plan;
}

function choose(facts: NetworkFacts): NetworkPlan {
  const gateway = ipv4Gateway(facts.defaultRoutes);
  const onGateway = (i: InterfaceEntry, address = ipv4Of) => {
    const v4 = address(i);
    return v4 !== undefined && gateway !== undefined && holds(v4, gateway);
  };
  const bridgeOnGateway = (i: InterfaceEntry) => onGateway(i, currentIpv4Of);
  if (facts.globalBridge) {
    const bridge = facts.interfaces.find((i) => i.name === facts.globalBridge);
    return {
      kind: 'bridged',
      parent: facts.globalBridge,
      reachableFromClient: bridge && bridgeOnGateway(bridge) ? true : 'unknown',
      source: 'server-default',
      summary: `bridged on ${facts.globalBridge} (the NAS's instance bridge)`,
      explanation:
        `The NAS puts instances on its bridge ${facts.globalBridge} (Instances → Global Settings), so no NIC ` +
        'device is added.',
    };
  }
  const bridges = facts.interfaces.filter(
    (i) => i.type === 'BRIDGE' && facts.bridgeChoices.includes(i.name) && i.name !== AUTO_CHOICE && up(i),
  );
  const lanBridge = bridges.find(bridgeOnGateway);
  if (lanBridge)
    return {
      kind: 'bridged',
      parent: lanBridge.name,
      nic: { nicType: 'BRIDGED', parent: lanBridge.name },
      reachableFromClient: true,
      source: 'automatic',
      summary: `LAN via the bridge ${lanBridge.name}`,
      explanation:
        `Bridged on ${lanBridge.name}, the NAS's LAN bridge (it holds the default gateway ${gateway}): the LAN and ` +
        'the NAS itself reach the sandbox.',
    };
  const candidates = facts.interfaces.filter(
    (i) => i.type === 'PHYSICAL' && up(i) && ipv4Of(i) !== undefined,
  );
  const physical = candidates.find((i) => onGateway(i)) ?? candidates[0];
  if (physical)
    return {
      kind: 'macvlan',
      parent: physical.name,
      nic: { nicType: 'MACVLAN', parent: physical.name },
      reachableFromClient: 'unknown',
      source: 'automatic',
      summary: `LAN via MACVLAN on ${physical.name}`,
      explanation:
        `MACVLAN on ${physical.name}${gateway && onGateway(physical) ? ` (it holds the default gateway ${gateway})` : ''}, ` +
        'as pixels chooses: machines on the LAN reach the sandbox directly, the NAS itself cannot (a MACVLAN ' +
        'property). A LAN bridge on the NAS would serve both.',
    };
  const auto = facts.automatic;
  const dhcp = facts.interfaces.some(
    (i) => i.type === 'PHYSICAL' && up(i) && i.state?.aliases?.some((a) => a.type === 'INET'),
  );
  return {
    kind: 'automatic-nat-bridge',
    parent: auto?.name ?? AUTOMATIC_BRIDGE,
    reachableFromClient: auto && !auto.ipv4Nat ? 'unknown' : false,
    source: 'server-default',
    summary: `the automatic bridge ${auto?.name ?? AUTOMATIC_BRIDGE}${auto?.ipv4Nat === false ? '' : " (NAT'd)"}`,
    explanation:
      (dhcp
        ? 'The NAS gets its address by DHCP, so (as with pixels) no interface has a configured IPv4 address to put a MACVLAN NIC on; '
        : 'No link-up physical interface or LAN bridge with a configured IPv4 address was found, so ') +
      `the sandbox goes on the ` +
      `automatic bridge ${auto?.name ?? AUTOMATIC_BRIDGE}${auto ? ` (${auto.ipv4Address}${auto.ipv4Nat ? ", NAT'd" : ''})` : ''}: ` +
      'only the NAS reaches it. Set a NIC (pixels.servers "nic", or nic_type/parent in the pixels config) or use ' +
      'the NAS as an SSH jump host.',
  };
}
