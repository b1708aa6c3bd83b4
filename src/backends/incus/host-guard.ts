// The host-side egress layer on Incus: one network ACL, "pixels-guard", attached to the network a sandbox's NIC
// is on. It rejects traffic from that network to the private ranges (the LAN, link-local, the host's own
// private addresses) except the specific addresses the sandboxes allowed. Root inside a sandbox can flush the
// sandbox's own nft rules but not this ACL: it lives in the host's firewall.
//
// Why a network ACL and not one on the sandbox's NIC: NIC ACLs on a bridge are bridge-family nft rules that need
// the kernel's bridge connection tracking (nf_conntrack_bridge), which many hosts lack; the network ACL runs in
// the host's inet hooks and works everywhere Incus uses nftables. Its cost: it covers every instance on that
// network, so it is meant for a network dedicated to sandboxes (docs/egress.md).
//
// Incus evaluates reject rules before allow rules, so the exceptions are cut out of the reject ranges instead of
// being allow rules. Each sandbox's exceptions are kept in the ACL's config (user.pixels.allow.<instance>), so
// the rules are recomputed from one place and a destroyed sandbox's addresses go with it.
import type { HostGuardMode, HostGuardPolicy, HostGuardState } from '../../core/backend';
import { NotAuthorizedError, NotFoundError, ServerError, ValidationError } from '../../core/errors';
import {
  AddressProblem,
  overlapsAny,
  parseRange,
  privateRanges,
  rangeText,
  subtractRanges,
  type IpRange,
} from '../../core/ip';
import type { Logger } from '../../core/log';
import type { IncusRestClient } from './rest-client';

export const GUARD_ACL = 'pixels-guard';
const ALLOW_KEY = 'user.pixels.allow.';
/** On the network: which default ACL actions the guard set (so detaching puts them back). */
const DEFAULTS_KEY = 'user.pixels.guard-defaults';
const DEFAULT_ACTION = (d: string) => `security.acls.default.${d}.action`;

export interface AclRule {
  action: 'allow' | 'reject' | 'drop';
  destination?: string;
  description?: string;
  state: 'enabled';
}

interface Acl {
  name: string;
  description?: string;
  config: Record<string, string>;
  egress: AclRule[];
  ingress: AclRule[];
  used_by?: string[];
}

interface Network {
  name: string;
  type?: string;
  managed?: boolean;
  config: Record<string, string>;
}

const enc = encodeURIComponent;

/** The address and range entries of an allow list that reach into the private ranges. */
export function privateExceptions(allow: readonly string[]): IpRange[] {
  const privates = privateRanges();
  const out: IpRange[] = [];
  for (const entry of allow) {
    if (!/[:/]/.test(entry) && !/^[0-9.]+$/.test(entry)) continue; // a domain: resolved inside, not here
    let range: IpRange;
    try {
      range = parseRange(entry);
    } catch (err) {
      if (err instanceof AddressProblem) continue; // the guest layer validated the list; skip what is not ours
      throw err;
    }
    if (overlapsAny(range, privates)) out.push(range);
  }
  return out;
}

/** The ACL's egress rules: one reject per family, private ranges minus the exceptions. */
export function guardRules(exceptions: readonly IpRange[]): AclRule[] {
  const left = subtractRanges(privateRanges(), exceptions);
  const rules: AclRule[] = [];
  for (const family of [4, 6] as const) {
    const ranges = left.filter((r) => r.family === family).map(rangeText);
    if (ranges.length)
      rules.push({
        action: 'reject',
        destination: ranges.join(','),
        description: `pixels: private IPv${family} ranges`,
        state: 'enabled',
      });
  }
  return rules;
}

/** Every sandbox's exceptions recorded in the ACL's config. */
function recordedExceptions(config: Record<string, string>): IpRange[] {
  return Object.entries(config)
    .filter(([k, v]) => k.startsWith(ALLOW_KEY) && v)
    .flatMap(([, v]) => v.split(',').map(parseRange));
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export class IncusHostGuard {
  /** One change at a time from this window; other clients are kept out by the ACL's ETag. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: IncusRestClient,
    private readonly mode: HostGuardMode,
    private readonly log: Logger,
  ) {}

  sync(instance: string, policy: HostGuardPolicy): Promise<HostGuardState> {
    return this.serially(() => this.doSync(instance, policy));
  }

  /** A destroyed sandbox's exceptions leave the ACL (whatever the setting: they are not to outlive it). */
  forget(instance: string): Promise<void> {
    return this.serially(async () => {
      const acl = await this.readAcl();
      if (!acl || !(ALLOW_KEY + instance in acl.config)) return;
      await this.setExceptions(instance, undefined);
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async doSync(instance: string, policy: HostGuardPolicy): Promise<HostGuardState> {
    if (this.mode === 'off') return this.takeDown();
    const networks = await this.networksOf(instance);
    if (networks.length === 0)
      return {
        mode: 'off',
        exceptions: [],
        summary: `"${instance}" has no network device; there is nothing to guard.`,
      };
    const mine = privateExceptions(policy.allow).map(rangeText);
    const acl = await this.retried(async () => {
      const updated = await this.setExceptions(instance, mine.length ? mine.join(',') : undefined);
      for (const n of networks) await this.attach(n);
      return updated;
    });
    const exceptions = recordedExceptions(acl.config).map(rangeText);
    const names = networks.map((n) => `"${n}"`).join(', ');
    this.log.info(
      `host guard: ${GUARD_ACL} on network ${names} for ${instance}; exceptions: ${exceptions.join(', ') || 'none'}`,
    );
    return {
      mode: 'network',
      network: networks.join(','),
      exceptions,
      summary:
        `The host refuses private addresses from network ${names}` +
        (exceptions.length ? `, except ${exceptions.join(', ')}.` : '.'),
    };
  }

  /**
   * Setting off: one read when there is nothing to undo (the usual case); a guard left from before is taken off
   * every network it is on, with the default actions it set, and deleted.
   */
  private async takeDown(): Promise<HostGuardState> {
    const off: HostGuardState = {
      mode: 'off',
      exceptions: [],
      summary: 'No host guard (setting hostGuard is off).',
    };
    let acl: Acl | undefined;
    try {
      acl = await this.readAcl();
    } catch (err) {
      if (err instanceof NotAuthorizedError) return off; // a project without network rights has none
      throw err;
    }
    if (!acl) return off;
    for (const user of acl.used_by ?? []) {
      const m = /^\/1\.0\/networks\/([^/?]+)/.exec(user);
      if (m) await this.detach(decodeURIComponent(m[1]));
    }
    const left = (await this.readAcl())?.used_by ?? [];
    if (left.length) {
      // Attached by hand to something that is not a network (a NIC, a profile): not ours to undo.
      this.log.warn(`host guard: ${GUARD_ACL} is still used by ${left.join(', ')}; it is kept`);
      return off;
    }
    try {
      await this.client.call('DELETE', `/1.0/network-acls/${enc(GUARD_ACL)}`);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    this.log.info(`host guard: ${GUARD_ACL} deleted (setting off)`);
    return off;
  }

  /** The managed network of the sandbox's NIC; undefined when it has no NIC. */
  private async networksOf(instance: string): Promise<string[]> {
    const inst = (
      await this.client.call<{ expanded_devices?: Record<string, Record<string, string>> }>(
        'GET',
        `/1.0/instances/${enc(instance)}`,
      )
    ).metadata;
    const names = new Set<string>();
    // Every NIC: a second one on another network must not be a way around the guard.
    for (const [device, nic] of Object.entries(inst.expanded_devices ?? {})) {
      if (nic.type !== 'nic') continue;
      if (!nic.network)
        throw new ValidationError(
          `The host guard needs "${instance}" on a managed Incus network, but its ${device} is attached to ` +
            `${nic.parent ? `the unmanaged interface ${nic.parent}` : 'no managed network'}. Put sandboxes on a ` +
            'managed bridge (incus network create) or set hostGuard to "off".',
        );
      names.add(nic.network);
    }
    for (const name of names) {
      const net = (await this.client.call<Network>('GET', `/1.0/networks/${enc(name)}`)).metadata;
      if (net.type !== 'bridge' && net.type !== 'ovn')
        throw new ValidationError(
          `The host guard needs a bridge or OVN network; "${net.name}" is of type ${net.type ?? 'unknown'}.`,
        );
    }
    return [...names].sort();
  }

  private async readAcl(): Promise<(Acl & { etag: string }) | undefined> {
    const path = `/1.0/network-acls/${enc(GUARD_ACL)}`;
    const res = await this.client.raw('GET', path);
    if (res.status === 404) return undefined;
    return { ...this.client.envelope<Acl>(res, 'GET', path).metadata, etag: String(res.headers.etag ?? '') };
  }

  /**
   * Records one sandbox's exceptions (undefined: none) in the ACL's config and rewrites the rules from the whole
   * config; creates the ACL when missing. Incus checks the ETag before it writes but not atomically with the
   * write, so two clients at the same moment can both pass it: the write is read back and done again until
   * this sandbox's entry is what it should be.
   */
  private async setExceptions(instance: string, value: string | undefined): Promise<Acl> {
    const key = ALLOW_KEY + instance;
    for (let attempt = 1; ; attempt++) {
      const current = await this.readAcl();
      if (current && current.config[key] === value && attempt > 1) return current;
      const config = { ...(current?.config ?? {}) };
      if (value) config[key] = value;
      else delete config[key];
      const next: Acl = {
        name: GUARD_ACL,
        description: 'Pixels host guard: sandboxes on this network do not reach private addresses',
        config,
        egress: guardRules(recordedExceptions(config)),
        ingress: [],
      };
      const method = current ? 'PUT' : 'POST';
      const path = current ? `/1.0/network-acls/${enc(GUARD_ACL)}` : '/1.0/network-acls';
      const res = await this.client.raw(
        method,
        path,
        current
          ? {
              body: { description: next.description, config, egress: next.egress, ingress: [] },
              headers: current.etag ? { 'If-Match': current.etag } : {},
            }
          : { body: next },
      );
      if (attempt >= 6) {
        this.client.envelope(res, method, path);
        throw new ServerError(
          `The host guard's ACL ${GUARD_ACL} kept changing under this change (other clients at the same time); try again.`,
        );
      }
      // 412: changed since we read it. A failed create: another client created it just now (Incus answers
      // 409, or 500 from its database's unique key). Either way: read again and redo.
      if (res.status === 412 || (!current && res.status >= 400 && (await this.readAcl()))) continue;
      this.client.envelope(res, method, path);
      // Read back on the next turn (returns there when the entry holds).
    }
  }

  /**
   * Incus rebuilds the network's firewall on every change of the ACL or the network, and two such rebuilds at
   * once can fail inside Incus ("nft -f -: No such file or directory"). Each step here is computed from the
   * state it reads, so the whole change is simply done again, a bounded number of times.
   */
  private async retried<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        if (!(err instanceof ServerError) || attempt >= 4) throw err;
        this.log.warn(`host guard: Incus failed a change (${err.message}); trying again`);
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  }

  /** Adds the ACL to the network; unmatched traffic keeps flowing (default actions "allow" unless set). */
  private async attach(name: string): Promise<void> {
    // Read now, not at the start of the sync: another client may have changed the network's ACL list since.
    const network = (await this.client.call<Network>('GET', `/1.0/networks/${enc(name)}`)).metadata;
    const acls = list(network.config['security.acls']);
    if (acls.includes(GUARD_ACL)) return;
    const patch: Record<string, string> = { 'security.acls': [...acls, GUARD_ACL].join(',') };
    // Incus rejects everything an ACL does not match once one is attached: keep that traffic as it was.
    const setDefaults = ['egress', 'ingress'].filter((d) => !network.config[DEFAULT_ACTION(d)]);
    for (const d of setDefaults) patch[DEFAULT_ACTION(d)] = 'allow';
    if (setDefaults.length) patch[DEFAULTS_KEY] = setDefaults.join(',');
    await this.client.call('PATCH', `/1.0/networks/${enc(network.name)}`, { body: { config: patch } });
    this.log.info(`host guard: attached ${GUARD_ACL} to network ${network.name}`);
  }

  /** Setting off: takes the ACL off the network, puts the default actions back, deletes it when unused. */
  private async detach(name: string): Promise<void> {
    const network = (await this.client.call<Network>('GET', `/1.0/networks/${enc(name)}`)).metadata;
    const acls = list(network.config['security.acls']);
    if (!acls.includes(GUARD_ACL)) return;
    const patch: Record<string, string> = {
      'security.acls': acls.filter((a) => a !== GUARD_ACL).join(','),
      [DEFAULTS_KEY]: '',
    };
    for (const d of list(network.config[DEFAULTS_KEY])) patch[DEFAULT_ACTION(d)] = '';
    await this.client.call('PATCH', `/1.0/networks/${enc(name)}`, { body: { config: patch } });
    this.log.info(`host guard: detached ${GUARD_ACL} from network ${name} (setting off)`);
  }
}
