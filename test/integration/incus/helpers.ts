// Shared pieces of the real-container suites: a backend on the lab, unique names, bounded waits, cleanup.
import type { HostGuardMode } from '../../../src/core/backend';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createIncusBackend } from '../../../src/backends/incus/index';
import type { IncusBackend } from '../../../src/backends/incus/index';
import { GUARD_ACL } from '../../../src/backends/incus/host-guard';
import { IncusRestClient } from '../../../src/backends/incus/rest-client';
import type { Sandbox } from '../../../src/core/sandbox';
import { requireLab } from '../../lab/lab';
import type { Lab } from '../../lab/lab';

/** A short prefix unique to this run, e.g. "t3f9a": sandboxes are "<prefix>-a" -> instance "px-<prefix>-a". */
export function testPrefix(): string {
  return `t${randomBytes(3).toString('hex')}`;
}

export async function labBackend(
  options: { pool?: 'btrfs' | 'dir'; hostGuard?: HostGuardMode } = {},
): Promise<{ lab: Lab; backend: IncusBackend }> {
  const lab = await requireLab();
  const backend = createIncusBackend({
    serverId: 'lab',
    socketPath: lab.socket,
    network: lab.bridge,
    storagePool: options.pool === 'dir' ? lab.poolDir : lab.poolBtrfs,
    hostGuard: options.hostGuard,
  });
  return { lab, backend };
}

/** Polls get() until the sandbox has an IPv4 address (bounded). */
export async function waitForIpv4(backend: IncusBackend, name: string, timeoutMs = 30_000): Promise<Sandbox> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await backend.get(name);
    if (s.ipv4) return s;
    if (Date.now() > deadline) throw new Error(`sandbox ${name} got no IPv4 within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function withLabClient<T>(lab: Lab, work: (client: IncusRestClient) => Promise<T>): Promise<T> {
  const client = new IncusRestClient({ socketPath: lab.socket });
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

/** The lab bridge's config as Incus has it (read without the code under test). */
export function labBridgeConfig(lab: Lab): Promise<Record<string, string>> {
  return withLabClient(
    lab,
    async (client) =>
      (await client.call<{ config: Record<string, string> }>('GET', `/1.0/networks/${lab.bridge}`)).metadata
        .config,
  );
}

export interface GuardAclView {
  config: Record<string, string>;
  egress: { action: string; destination?: string }[];
  used_by?: string[];
}

/** The host guard's ACL as Incus has it, or undefined when there is none. */
export function labGuardAcl(lab: Lab): Promise<GuardAclView | undefined> {
  return withLabClient(lab, async (client) => {
    const path = `/1.0/network-acls/${GUARD_ACL}`;
    const res = await client.raw('GET', path);
    return res.status === 404 ? undefined : client.envelope<GuardAclView>(res, 'GET', path).metadata;
  });
}

/**
 * Takes the host guard off the lab bridge and deletes its ACL, without the code under test: for a run that
 * stopped halfway, so the suites after it find the bridge as test/lab/up.sh made it.
 */
export async function clearHostGuard(lab: Lab): Promise<void> {
  const config = await labBridgeConfig(lab);
  const acls = (config['security.acls'] ?? '').split(',').filter((x) => x && x !== GUARD_ACL);
  const patch: Record<string, string> = { 'security.acls': acls.join(','), 'user.pixels.guard-defaults': '' };
  for (const d of (config['user.pixels.guard-defaults'] ?? '').split(',').filter(Boolean))
    patch[`security.acls.default.${d}.action`] = '';
  await withLabClient(lab, async (client) => {
    await client.call('PATCH', `/1.0/networks/${lab.bridge}`, { body: { config: patch } });
    await client.raw('DELETE', `/1.0/network-acls/${GUARD_ACL}`);
  });
}

/**
 * Gives the instance a second NIC, eth1, on a new host bridge Incus does not manage (no address, nothing routed
 * to it): a NIC the host guard cannot cover. removeUnmanagedBridge takes the bridge away afterwards.
 */
export async function addUnmanagedNic(lab: Lab, instance: string, bridge: string): Promise<void> {
  removeUnmanagedBridge(bridge); // left by a killed run
  execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await withLabClient(lab, (client) =>
    client.call('PATCH', `/1.0/instances/${instance}`, {
      body: { devices: { eth1: { type: 'nic', nictype: 'bridged', parent: bridge, name: 'eth1' } } },
    }),
  );
}

export function removeUnmanagedBridge(name: string): void {
  try {
    execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

/** Deletes every instance of this test run, whatever state the test left it in. */
export async function removeTestInstances(lab: Pick<Lab, 'socket'>, prefix: string): Promise<void> {
  const client = new IncusRestClient({ socketPath: lab.socket });
  try {
    const env = await client.call<{ name: string; project: string }[]>('GET', '/1.0/instances', {
      query: { 'all-projects': 'true', recursion: '1' },
    });
    for (const { name, project } of env.metadata) {
      if (!name.startsWith(`px-${prefix}`)) continue;
      const query = { project };
      await client
        .call('PUT', `/1.0/instances/${name}/state`, { body: { action: 'stop', force: true }, query })
        .catch(() => undefined);
      for (let i = 0; i < 50; i++) {
        const res = await client.raw('DELETE', `/1.0/instances/${name}`, { query });
        if (res.status < 400 || res.status === 404) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    client.close();
  }
}

/**
 * Removes test instances (px-t<6 hex>-…) older than 30 minutes: left by a run that was killed before its `after`
 * hooks. Every suite here is bounded well below that, so a live run's instances are never touched.
 */
export async function sweepStaleTestInstances(lab: Pick<Lab, 'socket'>): Promise<void> {
  const client = new IncusRestClient({ socketPath: lab.socket });
  try {
    const env = await client.call<{ name: string; created_at: string }[]>('GET', '/1.0/instances', {
      query: { recursion: '1' },
    });
    const cutoff = Date.now() - 30 * 60_000;
    const stale = env.metadata.filter(
      (i) => /^px-t[0-9a-f]{6}-/.test(i.name) && new Date(i.created_at).getTime() < cutoff,
    );
    for (const i of stale) await removeTestInstances(lab, i.name.slice(3));
  } finally {
    client.close();
  }
}

/** Names of instances and storage volumes (instances and their snapshots) left by this run. */
export async function leftovers(lab: Lab, prefix: string): Promise<string[]> {
  const client = new IncusRestClient({ socketPath: lab.socket });
  try {
    const found: string[] = [];
    const inst = await client.call<string[]>('GET', '/1.0/instances');
    found.push(...inst.metadata.filter((u) => u.includes(`/px-${prefix}`)));
    for (const pool of [lab.poolBtrfs, lab.poolDir]) {
      const vols = await client.call<string[]>('GET', `/1.0/storage-pools/${pool}/volumes`);
      found.push(...vols.metadata.filter((u) => u.includes(`px-${prefix}`)));
    }
    return found;
  } finally {
    client.close();
  }
}
