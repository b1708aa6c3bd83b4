// The facts of the real Incus lab (test/lab/up.sh), for tests that need real containers. requireLab() throws a
// loud, specific error when the lab is missing or down: such tests fail, they never skip.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

export interface Lab {
  socket: string;
  httpsAddress: string;
  bridge: string;
  bridgeIpv4: string;
  bridgeIpv6: string;
  /** The stand-in for a NAS's automatic (NAT'd) bridge: this machine's TCP clients cannot reach it, except
   *  processes of `nasUser` (an sshd session standing in for the NAS, i.e. a jump host). */
  natBridge: string;
  natBridgeIpv4: string;
  natBridgeIpv6: string;
  nasUser: string;
  image: string;
  poolBtrfs: string;
  poolDir: string;
  clustered: boolean;
}

export function labEnvPath(): string {
  return join(process.env.PIXELS_CACHE_DIR ?? '/var/cache/pixels-dev', 'lab.env');
}

const HOW_TO = 'Bring it up with: sudo bash test/lab/up.sh';

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function ping(socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: '/1.0', method: 'GET', timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`GET /1.0 answered HTTP ${res.statusCode}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

let cached: Promise<Lab> | undefined;

/** The lab, checked once per process: lab.env exists and incusd answers on its socket. */
export function requireLab(): Promise<Lab> {
  cached ??= (async () => {
    const path = labEnvPath();
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new Error(
        `INCUS LAB MISSING: ${path} does not exist, so the Incus lab was never brought up. ${HOW_TO}`,
      );
    }
    const env = parseEnv(text);
    const need = [
      'INCUS_SOCKET',
      'LAB_BRIDGE',
      'LAB_BRIDGE_IPV4',
      'LAB_NAT_BRIDGE',
      'LAB_NAT_BRIDGE_IPV4',
      'LAB_NAS_USER',
      'LAB_IMAGE',
      'LAB_POOL_BTRFS',
      'LAB_POOL_DIR',
    ];
    const missing = need.filter((k) => !env[k]);
    if (missing.length) throw new Error(`INCUS LAB BROKEN: ${path} lacks ${missing.join(', ')}. ${HOW_TO}`);
    try {
      await ping(env.INCUS_SOCKET);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM')
        throw new Error(
          `INCUS LAB NOT ACCESSIBLE: ${env.INCUS_SOCKET} exists but this user may not use it; run the tests as root ` +
            'or add the user to the incus-admin group.',
          { cause: err },
        );
      throw new Error(
        `INCUS LAB DOWN: incusd does not answer on ${env.INCUS_SOCKET} (${(err as Error).message}). ${HOW_TO}`,
        { cause: err },
      );
    }
    return {
      socket: env.INCUS_SOCKET,
      httpsAddress: env.INCUS_HTTPS_ADDRESS ?? '',
      bridge: env.LAB_BRIDGE,
      bridgeIpv4: env.LAB_BRIDGE_IPV4,
      bridgeIpv6: env.LAB_BRIDGE_IPV6 ?? '',
      natBridge: env.LAB_NAT_BRIDGE,
      natBridgeIpv4: env.LAB_NAT_BRIDGE_IPV4,
      natBridgeIpv6: env.LAB_NAT_BRIDGE_IPV6 ?? '',
      nasUser: env.LAB_NAS_USER,
      image: env.LAB_IMAGE,
      poolBtrfs: env.LAB_POOL_BTRFS,
      poolDir: env.LAB_POOL_DIR,
      clustered: env.LAB_CLUSTERED === '1',
    };
  })();
  return cached;
}
