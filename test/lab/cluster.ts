// The facts of the lab's 3-member Incus cluster (test/lab/cluster-up.sh), for tests that need several members.
// requireCluster() throws a loud, specific error when it is missing or down: such tests fail, they never skip.
// A test that stops a member starts it again itself (startMembers) before it ends.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClusterLab {
  /** Member 1's unix socket: any member answers for the whole cluster. */
  socket: string;
  httpsAddress: string;
  /** Member names, e.g. pxm1, pxm2, pxm3. */
  members: string[];
  /** Each member's INCUS_DIR (its unix socket, pid file and logs), by member name. */
  memberDirs: Record<string, string>;
  network: string;
  networkIpv4: string;
  /** The private bridge this machine reaches the members on (its address is this machine's, for the sandboxes). */
  link: string;
  linkIpv4: string;
  pool: string;
  image: string;
}

export function clusterEnvPath(): string {
  return join(process.env.PIXELS_CACHE_DIR ?? '/var/cache/pixels-dev', 'cluster.env');
}

/** cluster-up.sh beside this file (from the repository root when bundled, where import.meta has no dirname). */
function upScript(): string {
  return join(
    (import.meta as { dirname?: string }).dirname ?? join(process.cwd(), 'test', 'lab'),
    'cluster-up.sh',
  );
}
const HOW_TO = `Bring it up with: sudo bash test/lab/up.sh && sudo bash test/lab/cluster-up.sh`;

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function ping(socket: string, path = '/1.0'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`GET ${path} answered HTTP ${res.statusCode}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Resolves once at least 3 members are listed and all are online; throws after timeoutMs, naming the others. */
async function allOnline(socket: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await ping(socket, '/1.0/cluster/members?recursion=1');
    const listed = (JSON.parse(body) as { metadata: { server_name: string; status: string }[] }).metadata;
    const offline = listed.filter((m) => m.status !== 'Online').map((m) => `${m.server_name} (${m.status})`);
    if (listed.length >= 3 && offline.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `INCUS CLUSTER LAB DEGRADED: ${listed.length} members, not online: ${offline.join(', ') || 'none'}. ${HOW_TO}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

let cached: Promise<ClusterLab> | undefined;

/** The cluster, checked once per process: cluster.env exists and every member is online. */
export function requireCluster(): Promise<ClusterLab> {
  cached ??= (async () => {
    const path = clusterEnvPath();
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new Error(`INCUS CLUSTER LAB MISSING: ${path} does not exist. ${HOW_TO}`);
    }
    const env = parseEnv(text);
    const need = [
      'CLUSTER_SOCKET',
      'CLUSTER_MEMBERS',
      'CLUSTER_MEMBER_DIRS',
      'CLUSTER_NETWORK',
      'CLUSTER_POOL',
    ];
    const missing = need.filter((k) => !env[k]);
    if (missing.length)
      throw new Error(`INCUS CLUSTER LAB BROKEN: ${path} lacks ${missing.join(', ')}. ${HOW_TO}`);
    const members = env.CLUSTER_MEMBERS.split(',');
    const dirs = env.CLUSTER_MEMBER_DIRS.split(',');
    try {
      await ping(env.CLUSTER_SOCKET);
    } catch (err) {
      throw new Error(
        `INCUS CLUSTER LAB DOWN: member 1 does not answer on ${env.CLUSTER_SOCKET} (${(err as Error).message}). ${HOW_TO}`,
        { cause: err },
      );
    }
    // A member started a moment ago is online after its first heartbeat: wait a little for that, not longer.
    await allOnline(env.CLUSTER_SOCKET, 20_000);
    return {
      socket: env.CLUSTER_SOCKET,
      httpsAddress: env.CLUSTER_HTTPS_ADDRESS ?? '',
      members,
      memberDirs: Object.fromEntries(members.map((m, i) => [m, dirs[i]])),
      network: env.CLUSTER_NETWORK,
      networkIpv4: env.CLUSTER_NETWORK_IPV4 ?? '',
      link: env.CLUSTER_LINK ?? 'pxcllink0',
      linkIpv4: env.CLUSTER_LINK_IPV4 ?? '',
      pool: env.CLUSTER_POOL,
      image: env.CLUSTER_IMAGE ?? 'pixels-debian-12',
    };
  })();
  return cached;
}

/** The member's daemon pid as cluster-up.sh recorded it, checked to still be that incusd. */
function memberPid(cluster: ClusterLab, member: string): number {
  const dir = cluster.memberDirs[member];
  if (!dir) throw new Error(`no cluster member ${member}`);
  const pid = Number(readFileSync(join(dir, 'incusd.pid'), 'utf8').trim());
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm !== 'incusd') throw new Error(`pid ${pid} recorded for ${member} is ${comm}, not incusd`);
  return pid;
}

/**
 * Stops one member's daemon (TERM, as a crashed or rebooting host looks to the others; its containers keep
 * running). Bounded: waits at most 30 s for it to exit.
 */
export async function stopMember(cluster: ClusterLab, member: string): Promise<void> {
  const pid = memberPid(cluster, member);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts whatever member is not running (cluster-up.sh, idempotent) and waits until all are online (bounded). */
export async function startMembers(cluster: ClusterLab): Promise<void> {
  await run('bash', [upScript()], { timeout: 180_000 });
  await allOnline(cluster.socket, 60_000);
}

/** Runs the incus CLI against the cluster (through member 1), without the code under test. */
export async function clusterIncus(cluster: ClusterLab, ...args: string[]): Promise<string> {
  const { stdout } = await run('incus', args, {
    env: { ...process.env, INCUS_DIR: cluster.memberDirs[cluster.members[0]] },
    timeout: 120_000,
  });
  return stdout;
}
