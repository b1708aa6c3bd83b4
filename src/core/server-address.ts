// What a person types as a TrueNAS address — `nas.lan`, `192.168.1.10:8443`, `[fd00::2]`, `https://nas.lan`,
// `wss://nas.lan/api/current`, the web UI's URL, or `http://127.0.0.1:8090` for a local simulator — parsed into
// host, port and transport, or one specific sentence saying what is wrong (shown as they type).
import * as net from 'node:net';

export interface ServerAddress {
  /** Host name or IP address, without brackets. */
  host: string;
  /** Undefined: the transport's default (443 for wss, 80 for ws). */
  port?: number;
  /** wss:// (TLS). Plain ws:// only for loopback hosts. */
  secure: boolean;
}

export type AddressResult = { ok: true; address: ServerAddress } | { ok: false; problem: string };

/** True for localhost, 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    if (h === '::1' || /^0*:(0*:){0,6}0*1$/.test(h) || h === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? mapped[1].startsWith('127.') : false;
  }
  return false;
}

export function defaultPort(secure: boolean): number {
  return secure ? 443 : 80;
}

/** `wss://host[:port]/api/current`, the URL the client will use. */
export function addressUrl(a: ServerAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${a.secure ? 'wss' : 'ws'}://${host}${a.port ? `:${a.port}` : ''}/api/current`;
}

const SECURE_SCHEMES = new Set(['https', 'wss']);
const PLAIN_SCHEMES = new Set(['http', 'ws']);
/** Paths a pasted URL may carry: the API endpoint, the legacy one, or any page of the web UI. */
const IGNORED_PATH = /^(\/?|\/api\/current\/?|\/api\/v[\w.]+\/?|\/websocket\/?|\/ui(\/.*)?)$/;

const fail = (problem: string): AddressResult => ({ ok: false, problem });

function hostProblem(host: string): string | undefined {
  if (host === '') return 'The host is missing: enter a host name or IP address, e.g. truenas.local.';
  if (/^[\d.]+$/.test(host)) {
    return net.isIPv4(host)
      ? undefined
      : `"${host}" is not a valid IPv4 address (four numbers 0–255 separated by dots).`;
  }
  if (host.length > 253) return 'That host name is too long (at most 253 characters).';
  const bad = /[^A-Za-z0-9.-]/.exec(host);
  if (bad)
    return `"${bad[0]}" cannot be part of a host name: use letters, digits, hyphens and dots (e.g. nas-1.lan).`;
  for (const label of host.replace(/\.$/, '').split('.')) {
    if (label === '') return `"${host}" has an empty part between dots.`;
    if (label.length > 63) return `"${label}" is too long for a part of a host name (at most 63 characters).`;
    if (label.startsWith('-') || label.endsWith('-'))
      return `"${label}": a part of a host name cannot start or end with a hyphen.`;
  }
  return undefined;
}

function portProblem(text: string): { port?: number; problem?: string } {
  if (text === '') return { problem: 'The port is missing after ":" (e.g. nas.lan:443).' };
  if (!/^\d+$/.test(text)) return { problem: `The port must be a number from 1 to 65535, not "${text}".` };
  const port = Number(text);
  if (port < 1 || port > 65535) return { problem: `Port ${text} is out of range: ports are 1 to 65535.` };
  return { port };
}

/** Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
function splitHostPort(authority: string): { host: string; portText?: string; problem?: string } {
  if (authority.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(authority);
    if (!m)
      return { host: '', problem: 'An IPv6 address in brackets needs its closing "]", e.g. [fd00::2]:443.' };
    if (!net.isIPv6(m[1])) return { host: '', problem: `"${m[1]}" is not a valid IPv6 address.` };
    return { host: m[1], portText: m[2] };
  }
  const colons = authority.split(':').length - 1;
  if (colons > 1) {
    if (net.isIPv6(authority)) return { host: authority };
    return { host: '', problem: 'Put an IPv6 address in brackets to give a port, e.g. [fd00::2]:443.' };
  }
  const at = authority.lastIndexOf(':');
  return at === -1
    ? { host: authority }
    : { host: authority.slice(0, at), portText: authority.slice(at + 1) };
}

export function parseServerAddress(input: string): AddressResult {
  let text = input.trim();
  if (text === '') return fail('Enter the NAS host name or IP address, e.g. truenas.local or 192.168.1.10.');
  let secure = true;
  let scheme: string | undefined;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (schemeMatch) {
    scheme = schemeMatch[1].toLowerCase();
    if (PLAIN_SCHEMES.has(scheme)) secure = false;
    else if (!SECURE_SCHEMES.has(scheme))
      return fail(`"${scheme}://" is not a TrueNAS address: use https://host or wss://host/api/current.`);
    text = text.slice(schemeMatch[0].length);
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/[^/]/.test(text)) {
    return fail('A URL needs two slashes after the scheme, e.g. https://nas.lan.');
  }
  const end = text.search(/[/?#]/);
  const authority = end === -1 ? text : text.slice(0, end);
  const rest = end === -1 ? '' : text.slice(end);
  if (rest && !scheme)
    return fail('Enter just the host (and :port), or a whole URL such as https://nas.lan.');
  const path = rest.replace(/#.*$/, '');
  const pathOnly = path.replace(/\?.*$/, '');
  if (!IGNORED_PATH.test(pathOnly) || (path.includes('?') && !pathOnly.startsWith('/ui')))
    return fail(`Only the address is needed (the API is always at /api/current): remove "${rest}".`);
  if (authority.includes('@'))
    return fail('Leave the user name out of the address: Add Server asks for the user in a later step.');
  const split = splitHostPort(authority);
  if (split.problem) return fail(split.problem);
  const host = split.host.toLowerCase();
  const problem = net.isIPv6(host) ? undefined : hostProblem(host);
  if (problem) return fail(problem);
  let port: number | undefined;
  if (split.portText !== undefined) {
    const p = portProblem(split.portText);
    if (p.problem) return fail(p.problem);
    port = p.port;
  }
  if (!secure && !isLoopbackHost(host)) {
    return fail(
      `Plain ${scheme}:// would send the API key without TLS, and TrueNAS revokes a key that arrives that way. ` +
        `Use https://${authority} instead (a self-signed certificate can be trusted in the next step).`,
    );
  }
  return { ok: true, address: { host, port, secure } };
}
