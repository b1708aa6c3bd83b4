// A stand-in for "the internet" on this machine: extra addresses on the lab bridge (documentation ranges,
// so they count as public to the sandbox's rules), small HTTP listeners on them, and a tiny DNS responder that
// answers A/AAAA for test names. Nothing here leaves the machine; the lab's confinement table stays as it is.
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The stand-in public addresses: IPv4 always, IPv6 where the sandboxes' network has it. */
export interface InternetAddresses {
  allowedV4: string;
  deniedV4: string;
  dnsV4: string;
  otherDnsV4: string;
  allowedV6?: string;
  deniedV6?: string;
  /** Where cdn.test moves to (the re-resolution test). */
  movedV4: string;
}

export const NET = {
  allowedV4: '203.0.113.10',
  deniedV4: '203.0.113.20',
  dnsV4: '203.0.113.53',
  otherDnsV4: '203.0.113.54',
  allowedV6: '2001:db8:77::10',
  deniedV6: '2001:db8:77::20',
  /** Where cdn.test moves to (the re-resolution test). */
  movedV4: '203.0.113.30',
} as const;

/**
 * For the cluster lab (IPv4 only), on its private bridge: another documentation range, so a cluster run beside a
 * main-lab run never takes the other's addresses or its DNS port.
 */
export const CLUSTER_NET: InternetAddresses = {
  allowedV4: '198.51.100.10',
  deniedV4: '198.51.100.20',
  dnsV4: '198.51.100.53',
  otherDnsV4: '198.51.100.54',
  movedV4: '198.51.100.30',
};

export interface Internet {
  /** Port every HTTP listener uses. */
  port: number;
  /** Bridge addresses (the lab's private ones) also get a listener on `port` (privateV6 '' on IPv4 only). */
  privateV4: string;
  privateV6: string;
  /** name -> addresses the DNS responder answers with. */
  names: Map<string, string[]>;
  /** HTTP requests seen, as "address path". */
  requests: string[];
  /** Serves extra paths (e.g. the fake mise installer). */
  route(path: string, body: string | Buffer | ((req: http.IncomingMessage) => string)): void;
  /**
   * Puts the stand-in addresses back on the bridge. Incus re-applies a bridge's own addresses (and drops other
   * global ones) whenever the network's config changes, e.g. when an ACL is attached to it.
   */
  restoreAddresses(): void;
  close(): Promise<void>;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function addAddress(bridge: string, address: string): void {
  const v6 = address.includes(':');
  // `replace` is idempotent: an address left behind by an earlier, killed run is simply taken over.
  ip([
    v6 ? '-6' : '-4',
    'addr',
    'replace',
    `${address}/${v6 ? 128 : 32}`,
    'dev',
    bridge,
    ...(v6 ? ['nodad'] : []),
  ]);
}

function removeAddress(bridge: string, address: string): void {
  const v6 = address.includes(':');
  try {
    ip([v6 ? '-6' : '-4', 'addr', 'del', `${address}/${v6 ? 128 : 32}`, 'dev', bridge]);
  } catch {
    // already gone
  }
}

// ------------------------------------------------------------------------------------------------ DNS
function v6Bytes(address: string): Buffer {
  const [head, tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Answers one DNS query from `names`: A and AAAA records, NXDOMAIN for unknown names. */
export function answerDns(query: Buffer, names: Map<string, string[]>): Buffer | undefined {
  if (query.length < 17) return undefined;
  let offset = 12;
  const labels: string[] = [];
  while (offset < query.length && query[offset] !== 0) {
    const len = query[offset];
    labels.push(query.subarray(offset + 1, offset + 1 + len).toString('ascii'));
    offset += len + 1;
  }
  const qtype = query.readUInt16BE(offset + 1);
  const questionEnd = offset + 5;
  const name = labels.join('.').toLowerCase();
  const known = names.get(name);
  const wanted = (known ?? []).filter((a) =>
    qtype === 1 ? !a.includes(':') : qtype === 28 ? a.includes(':') : false,
  );
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(known ? 0x8180 : 0x8183, 2); // response, RD+RA, NOERROR / NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(wanted.length, 6);
  const answers = wanted.map((a) => {
    const rdata = a.includes(':') ? v6Bytes(a) : Buffer.from(a.split('.').map(Number));
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(5, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}

function startDns(address: string, names: Map<string, string[]>): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      const reply = answerDns(msg, names);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    socket.once('error', reject);
    socket.bind(53, address, () => resolve(socket));
  });
}

// ------------------------------------------------------------------------------------------------ HTTP
function listen(server: http.Server, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve((server.address() as AddressInfo).port));
  });
}

/** `bridgeIpv6` undefined: an IPv4-only network (then `at` has no IPv6 addresses either). */
export async function startInternet(
  bridge: string,
  bridgeIpv4: string,
  bridgeIpv6: string | undefined,
  at: InternetAddresses = NET,
): Promise<Internet> {
  const some = (...list: (string | undefined)[]): string[] => list.filter((a): a is string => !!a);
  const addresses = some(
    at.allowedV4,
    at.deniedV4,
    at.movedV4,
    at.dnsV4,
    at.otherDnsV4,
    at.allowedV6,
    at.deniedV6,
  );
  for (const a of addresses) addAddress(bridge, a);
  const privateV4 = bridgeIpv4.split('/')[0];
  const privateV6 = bridgeIpv6?.split('/')[0] ?? '';
  const names = new Map<string, string[]>([
    ['allowed.test', some(at.allowedV4, at.allowedV6)],
    ['denied.test', some(at.deniedV4, at.deniedV6)],
    ['private.test', some(privateV4, privateV6)],
    ['cdn.test', [at.deniedV4]],
  ]);
  const requests: string[] = [];
  const routes = new Map<string, string | Buffer | ((req: http.IncomingMessage) => string)>();
  const servers: http.Server[] = [];
  const sockets: dgram.Socket[] = [];
  const close = async () => {
    await Promise.all(
      servers.map((s) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())))),
    );
    for (const s of sockets) s.close();
    for (const a of addresses) removeAddress(bridge, a);
  };
  try {
    let port = 0;
    for (const address of some(
      at.allowedV4,
      at.deniedV4,
      at.movedV4,
      privateV4,
      at.allowedV6,
      at.deniedV6,
      privateV6,
    )) {
      const server = http.createServer((req, res) => {
        const local = req.socket.localAddress ?? '';
        requests.push(`${local} ${req.url}`);
        const route = routes.get((req.url ?? '/').split('?')[0]);
        const body =
          route === undefined ? `hello from ${local}\n` : typeof route === 'function' ? route(req) : route;
        res.writeHead(route === undefined && req.url !== '/' ? 404 : 200, { 'content-type': 'text/plain' });
        res.end(body);
      });
      servers.push(server);
      // The same port everywhere; the first listener picks a free one.
      port = await listen(server, address, port);
    }
    sockets.push(await startDns(at.dnsV4, names));
    sockets.push(await startDns(at.otherDnsV4, names));
    return {
      port,
      privateV4,
      privateV6,
      names,
      requests,
      route: (path, body) => routes.set(path, body),
      restoreAddresses: () => {
        for (const a of addresses) addAddress(bridge, a);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
