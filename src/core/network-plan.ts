// Where a new sandbox lands on the network, and why a sandbox cannot be reached. Plain data and text: the
// backends fill a NetworkPlan from what the server says, the editor shows it and uses it to explain failures.
import { AddressProblem, parseRange } from './ip';

/** The NIC a sandbox gets (TrueNAS NIC device / Incus network), from settings or chosen by the backend. */
export interface NicSetting {
  /** TrueNAS: BRIDGED puts the sandbox on a host bridge, MACVLAN on a physical interface. */
  nicType?: 'BRIDGED' | 'MACVLAN';
  /** TrueNAS: the host interface (bridge for BRIDGED, physical NIC for MACVLAN). */
  parent?: string;
  /** Incus: a managed network name; TrueNAS: an Incus network for the NIC device. */
  network?: string;
}

export type NetworkKind = 'macvlan' | 'bridged' | 'automatic-nat-bridge' | 'managed-network' | 'unknown';

export interface NetworkPlan {
  kind: NetworkKind;
  /** The host interface or network the sandbox is attached to. */
  parent?: string;
  /** The NIC device the backend will send (absent: the server's default profile NIC). */
  nic?: NicSetting;
  /** Whether this editor can reach the sandbox's address directly ('unknown': depends on where it runs). */
  reachableFromClient: boolean | 'unknown';
  /** Where the choice came from. */
  source: 'settings' | 'automatic' | 'server-default';
  /** One line for the create flow, e.g. "LAN via MACVLAN on enp1s0". */
  summary: string;
  /** A sentence or two: what was chosen and why. */
  explanation: string;
  /** The server's NAT'd bridge subnet (e.g. "10.200.1.1/24"), when it has one: sandboxes with an address in it
   *  are behind NAT whatever new sandboxes get. */
  natSubnet?: string;
}

/** A short phrase for the kind, used in messages. */
export function describeKind(plan: Pick<NetworkPlan, 'kind' | 'parent'>): string {
  switch (plan.kind) {
    case 'macvlan':
      return `MACVLAN on ${plan.parent ?? 'a host interface'}`;
    case 'bridged':
      return `bridged on ${plan.parent ?? 'a host bridge'}`;
    case 'automatic-nat-bridge':
      return `the automatic NAT'd bridge${plan.parent ? ` ${plan.parent}` : ''}`;
    case 'managed-network':
      return `the network ${plan.parent ?? '(default)'}`;
    default:
      return 'an unknown network';
  }
}

function inSubnet(address: string, subnet: string): boolean {
  try {
    const range = parseRange(subnet);
    const bits = parseRange(address);
    return range.family === bits.family && bits.start >= range.start && bits.start <= range.end;
  } catch (err) {
    if (err instanceof AddressProblem) return false;
    throw err;
  }
}

export interface UnreachableContext {
  /** The short sandbox name. */
  name: string;
  /** The sandbox's IPv4 address, if it has one. */
  address?: string;
  /** What the network plan of its server says (undefined: the backend cannot tell). */
  plan?: NetworkPlan;
  /** What the last attempt saw, e.g. "the TCP connection timed out". */
  lastSeen?: string;
}

const FIX_LAN =
  'put sandboxes on the LAN: set "nic": { "type": "bridged", "parent": "<LAN bridge>" } (or "macvlan" on the ' +
  "physical interface) in the server's pixels.servers entry, or nic_type/parent under [defaults] in the pixels config";
const FIX_JUMP = 'or reach them through the NAS as an SSH jump host';

/**
 * Why a sandbox's address cannot be reached, and which fix applies. Used when an SSH connection fails or times
 * out, instead of a bare timeout.
 */
export function explainUnreachable(c: UnreachableContext): string {
  const who = `Sandbox "${c.name}"`;
  const seen = c.lastSeen ? ` (last seen: ${c.lastSeen})` : '';
  if (!c.address) {
    const plan = c.plan;
    if (plan?.kind === 'macvlan')
      return (
        `${who} has no IP address yet${seen}. On MACVLAN (${plan.parent ?? 'host interface'}) it gets one from the ` +
        "LAN's DHCP server; check that the LAN has one and that the interface is the one with the default route."
      );
    return `${who} has no IP address yet${seen}: it may still be booting, or its network gives no DHCP lease. Check the sandbox's network (${plan ? describeKind(plan) : 'unknown'}).`;
  }
  const at = `${who} at ${c.address} cannot be reached${seen}`;
  const plan: NetworkPlan | undefined =
    c.plan?.natSubnet && inSubnet(c.address, c.plan.natSubnet)
      ? { ...c.plan, kind: 'automatic-nat-bridge', parent: undefined }
      : c.plan;
  if (!plan) return `${at}. Pixels could not tell which network it is on.`;
  switch (plan.kind) {
    case 'automatic-nat-bridge':
      return (
        `${at}: it is on ${describeKind(plan)}, which is NAT'd — only the server itself reaches that subnet. ` +
        `To fix: ${FIX_LAN}; ${FIX_JUMP}.`
      );
    case 'macvlan':
      return (
        `${at}: it is on ${describeKind(plan)}. The LAN reaches a MACVLAN sandbox, but the server it runs on does ` +
        'not (a MACVLAN property), so this fails when the editor runs on the server or reaches it through the ' +
        `server. To fix: use a LAN bridge instead ("nic": { "type": "bridged", "parent": "<LAN bridge>" }), or ` +
        'connect from another machine on the LAN.'
      );
    case 'bridged':
      return (
        `${at}: it is ${describeKind(plan)}. Check that this machine can route to ${c.address} (same LAN or a ` +
        `route to it) and that no firewall is in the way; ${FIX_JUMP}.`
      );
    default:
      return `${at}: it is on ${describeKind(plan)}. ${plan.explanation}`;
  }
}
