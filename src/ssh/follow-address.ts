// A sandbox's DHCP address can change (restart, lease expiry). The SSH config entry we wrote for Remote-SSH names
// the old IP, and OpenSSH checks known_hosts by that HostName, so both follow the address the server now reports.
// Only sandboxes that already have an entry are touched, and only from data the caller already has (no server calls).
import type { KnownHosts } from './known-hosts';
import type { SshConfigWriter, SshHostEntry } from './ssh-config';

export interface AddressChange {
  alias: string;
  from: string;
  to: string;
  /** False when no host key is pinned for the alias (the known_hosts file had nothing to move). */
  keyMoved: boolean;
}

export interface FollowAddressesOptions {
  writer: SshConfigWriter;
  knownHosts: KnownHosts;
  /** Current sandboxes of one server, as the last refresh listed them. */
  sandboxes: readonly { name: string; ipv4?: string }[];
  /** The Host alias of a sandbox (it names the server too, so other servers' entries never match). */
  aliasOf: (name: string) => string;
  /** Settings ssh will use that override ours (from SshConfigWriter.upsertHost). */
  onWarning?: (warning: string) => void;
}

/** Moves every entry whose HostName differs from its sandbox's current IPv4; returns what moved. */
export async function followAddresses(options: FollowAddressesOptions): Promise<AddressChange[]> {
  const entries = new Map<string, SshHostEntry>((await options.writer.hosts()).map((e) => [e.alias, e]));
  if (entries.size === 0) return [];
  const changes: AddressChange[] = [];
  for (const sandbox of options.sandboxes) {
    if (!sandbox.ipv4) continue; // stopped or not leased yet: keep the last known address
    const alias = options.aliasOf(sandbox.name);
    const entry = entries.get(alias);
    if (!entry || entry.hostName === sandbox.ipv4) continue;
    // The pinned key stays; only the address next to the alias changes (and leaves any other line it was on).
    const [key] = await options.knownHosts.lookup(alias, entry.port ?? 22);
    if (key) await options.knownHosts.set([alias, sandbox.ipv4], key, entry.port ?? 22);
    const { warnings } = await options.writer.upsertHost({ ...entry, hostName: sandbox.ipv4 });
    for (const w of warnings) options.onWarning?.(w);
    changes.push({ alias, from: entry.hostName, to: sandbox.ipv4, keyMoved: Boolean(key) });
  }
  return changes;
}
