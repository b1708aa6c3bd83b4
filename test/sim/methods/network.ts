// The NAS's own network as the middleware reports it: interface.query (plugins/network.py InterfaceService.query
// + iface_extend; runtime state from plugins/interface/netif_linux), network.general.summary
// (plugins/network_/general.py), and the bridge facts of virt.global (bridge_choices lists "[AUTO]" plus every
// interface of type BRIDGE; get_network reads an Incus network). Both public on 25.04 and 25.10.
//
// The simulated box (fake addresses, never contacted):
// - 'stock': one physical NIC enp1s0 on DHCP (so its configured `aliases` are empty and the address is only in
//   `state.aliases`), default gateway 192.168.1.1; instances use the automatic bridge incusbr0 (NAT'd).
// - 'static': the same NIC with its address configured (static), so it is listed in its `aliases` too.
// - 'lan-bridge': the user made a bridge br0 over enp1s0 and moved the address to it (static); enp1s0 has no
//   address of its own. bridge_choices then offers br0.
import { checkArgCount, idArg } from '../args.js';
import type { Registry, SimContext } from '../context.js';
import type { SimObject } from '../ejson.js';
import { CallError, ERRNO, ValidationErrors } from '../errors.js';
import { query } from '../filters.js';
import { globalConfig } from './virt.js';

export type SimNetworkLayout = 'stock' | 'static' | 'lan-bridge';
export const SIM_NETWORK_LAYOUTS: readonly SimNetworkLayout[] = ['stock', 'static', 'lan-bridge'];

/** The NAS's LAN address, gateway and interface names (fake data). */
export const SIM_LAN = {
  physical: 'enp1s0',
  bridge: 'br0',
  address: '192.168.1.50',
  prefix: 24,
  gateway: '192.168.1.1',
  mac: '52:54:00:12:34:56',
} as const;

/** The automatic bridge (plugins/virt/utils.py INCUS_BRIDGE). */
export const AUTOMATIC_BRIDGE = 'incusbr0';

interface Alias {
  type: string;
  address: string;
  netmask?: number;
  broadcast?: string;
}

/** The runtime state dict (netif asdict): 25.04 lists the LINK (MAC) entry among the aliases, 25.10 does not. */
function stateOf(ctx: SimContext, name: string, up: boolean, addresses: Alias[], cloned: boolean): SimObject {
  const aliases: Alias[] = [];
  if (ctx.version === '25.04') aliases.push({ type: 'LINK', address: SIM_LAN.mac });
  aliases.push(...addresses);
  return {
    name,
    orig_name: name,
    description: name,
    mtu: 1500,
    cloned,
    flags: up ? ['UP', 'BROADCAST', 'RUNNING', 'MULTICAST', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'],
    nd6_flags: [],
    capabilities: [],
    link_state: up ? 'LINK_STATE_UP' : 'LINK_STATE_DOWN',
    media_type: 'Ethernet',
    media_subtype: '1000Mb/s Twisted Pair',
    active_media_type: 'Ethernet',
    active_media_subtype: '1000Mb/s Twisted Pair',
    supported_media: ['1000baseT/Full'],
    media_options: null,
    link_address: SIM_LAN.mac,
    permanent_link_address: cloned ? null : SIM_LAN.mac,
    hardware_link_address: SIM_LAN.mac,
    aliases: aliases.map((a) => ({ ...a })),
    vrrp_config: null,
    rx_queues: 1,
    tx_queues: 1,
  };
}

const LAN_V4: Alias = {
  type: 'INET',
  address: SIM_LAN.address,
  netmask: SIM_LAN.prefix,
  broadcast: '192.168.1.255',
};
const LINK_LOCAL_V6: Alias = { type: 'INET6', address: 'fe80::5054:ff:fe12:3456', netmask: 64 };

/** interface.query rows before filtering (internal interfaces such as incusbr0 and veth* are not listed). */
export function interfaces(ctx: SimContext, layout: SimNetworkLayout): SimObject[] {
  const entry = (name: string, type: string, state: SimObject, extra: SimObject): SimObject => ({
    id: name,
    name,
    fake: false,
    type,
    state,
    aliases: [],
    ipv4_dhcp: true,
    ipv6_auto: true,
    description: '',
    mtu: null,
    ...extra,
  });
  const physicalState = stateOf(ctx, SIM_LAN.physical, true, [LAN_V4, LINK_LOCAL_V6], false);
  // No interface configured in the database: iface_extend reports DHCP and no configured aliases.
  if (layout === 'stock') return [entry(SIM_LAN.physical, 'PHYSICAL', physicalState, {})];
  if (layout === 'static')
    return [
      entry(SIM_LAN.physical, 'PHYSICAL', physicalState, {
        aliases: [{ type: 'INET', address: SIM_LAN.address, netmask: SIM_LAN.prefix }],
        ipv4_dhcp: false,
        ipv6_auto: false,
        mtu: 1500,
      }),
    ];
  return [
    entry(SIM_LAN.physical, 'PHYSICAL', stateOf(ctx, SIM_LAN.physical, true, [], false), {
      ipv4_dhcp: false,
      ipv6_auto: false,
      mtu: 1500,
    }),
    entry(SIM_LAN.bridge, 'BRIDGE', stateOf(ctx, SIM_LAN.bridge, true, [LAN_V4, LINK_LOCAL_V6], true), {
      aliases: [{ type: 'INET', address: SIM_LAN.address, netmask: SIM_LAN.prefix }],
      ipv4_dhcp: false,
      ipv6_auto: false,
      mtu: 1500,
      bridge_members: [SIM_LAN.physical],
      stp: true,
      enable_learning: true,
    }),
  ];
}

export function registerNetwork(registry: Registry, ctx: SimContext, layout: SimNetworkLayout): void {
  registry.add({
    name: 'interface.query',
    handler: async (env, args) => {
      checkArgCount(args, 2);
      return query(interfaces(env.ctx, layout), args[0], args[1]);
    },
  });

  registry.add({
    name: 'network.general.summary',
    handler: async (env, args) => {
      checkArgCount(args, 0);
      const ips: SimObject = {};
      for (const iface of interfaces(env.ctx, layout)) {
        const state = iface.state as SimObject;
        const byFamily: Record<string, string[]> = {};
        for (const a of state.aliases as unknown as Alias[]) {
          const key = a.type === 'INET' ? 'IPV4' : a.type === 'INET6' ? 'IPV6' : undefined;
          if (key) (byFamily[key] ??= []).push(`${a.address}/${a.netmask}`);
        }
        if (Object.keys(byFamily).length) ips[iface.name as string] = byFamily;
      }
      return { ips, default_routes: [SIM_LAN.gateway], nameservers: [SIM_LAN.gateway] };
    },
  });

  if (ctx.version === '26') return;

  registry.add({
    name: 'virt.global.bridge_choices',
    handler: async (env, args) => {
      checkArgCount(args, 0);
      const choices: SimObject = { '[AUTO]': 'Automatic' };
      for (const i of interfaces(env.ctx, layout))
        if (i.type === 'BRIDGE') choices[i.name as string] = i.name as string;
      return choices;
    },
  });

  registry.add({
    name: 'virt.global.get_network',
    handler: async (env, args) => {
      checkArgCount(args, 1);
      const name = idArg(args, 0, 'name');
      if (name === '')
        throw new ValidationErrors([['name', 'String should have at least 1 character', ERRNO.EINVAL]]);
      if (!env.ctx.virtInitialized) throw new CallError('Virtualization not initialized.', ERRNO.EFAULT);
      // Incus' GET /1.0/networks/<name>; only the automatic bridge is a managed network on the box.
      if (name !== AUTOMATIC_BRIDGE) throw new CallError('Network not found', ERRNO.EFAULT);
      // The middleware stores what Incus picked for the bridge as v4_network / v6_network (_setup_impl).
      const g = globalConfig(env.ctx);
      return {
        type: 'BRIDGE',
        managed: true,
        ipv4_address: g.v4_network as string,
        ipv4_nat: true,
        ipv6_address: g.v6_network as string,
        ipv6_nat: true,
      };
    },
  });
}
