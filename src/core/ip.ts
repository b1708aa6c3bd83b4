// IPv4/IPv6 address arithmetic shared by both egress layers: the allow-list validation and nft rules inside the
// sandbox (src/guest) and the host-side Incus ACL (src/backends/incus). Addresses are bigints; a range is
// [start, end] inclusive, so "private ranges minus the addresses a user allowed" is plain interval subtraction.

/** The ranges the agent and allowlist modes refuse unless a specific address is allowed (LAN, link-local). */
export const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'];
export const PRIVATE_V6 = ['fc00::/7', 'fe80::/10'];

/** Why a text is not an address; the caller words the whole message. */
export class AddressProblem extends Error {}

export type IpFamily = 4 | 6;

export interface IpRange {
  family: IpFamily;
  start: bigint;
  end: bigint;
}

const WIDTH: Record<IpFamily, number> = { 4: 32, 6: 128 };

export function parseIPv4(text: string): bigint {
  const parts = text.split('.');
  if (parts.length !== 4) throw new AddressProblem('an IPv4 address has four numbers separated by dots');
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) throw new AddressProblem(`"${part}" is not a number from 0 to 255`);
    if (part.length > 1 && part.startsWith('0'))
      throw new AddressProblem(`"${part}" has a leading zero (ambiguous octal)`);
    const n = Number(part);
    if (n > 255) throw new AddressProblem(`${n} is larger than 255`);
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

export function parseIPv6(text: string): bigint {
  if (text.includes('%')) throw new AddressProblem('zone indexes (%eth0) are not supported');
  const halves = text.split('::');
  if (halves.length > 2) throw new AddressProblem('"::" may appear only once in an IPv6 address');
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    pieces.forEach((piece, i) => {
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
        return;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece))
        throw new AddressProblem(`"${piece}" is not an IPv6 group (1-4 hex digits)`);
      out.push(parseInt(piece, 16));
    });
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  let all: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) throw new AddressProblem('an IPv6 address has at most eight groups');
    all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) throw new AddressProblem('an IPv6 address without "::" needs eight groups');
    all = head;
  }
  return all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

export function formatAddress(family: IpFamily, bits: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((bits >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((bits >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The range of `address[/prefix]` (host bits ignored); throws AddressProblem on anything else. */
export function parseRange(text: string): IpRange {
  const [address, prefixText, extra] = text.split('/');
  if (extra !== undefined) throw new AddressProblem('it has more than one "/"');
  const family: IpFamily = address.includes(':') ? 6 : 4;
  const bits = family === 4 ? parseIPv4(address) : parseIPv6(address);
  const width = WIDTH[family];
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? '0') || prefix > width)
    throw new AddressProblem(`"${prefixText}" is not an IPv${family} prefix length`);
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  return { family, start: bits & ~hostMask, end: (bits & ~hostMask) | hostMask };
}

/** `from` minus `remove`, per family, sorted, adjacent pieces merged. */
export function subtractRanges(from: readonly IpRange[], remove: readonly IpRange[]): IpRange[] {
  const out: IpRange[] = [];
  for (const family of [4, 6] as const) {
    let pieces = mergeRanges(from.filter((r) => r.family === family));
    for (const cut of remove.filter((r) => r.family === family)) {
      const next: IpRange[] = [];
      for (const p of pieces) {
        if (cut.end < p.start || cut.start > p.end) {
          next.push(p);
          continue;
        }
        if (cut.start > p.start) next.push({ family, start: p.start, end: cut.start - 1n });
        if (cut.end < p.end) next.push({ family, start: cut.end + 1n, end: p.end });
      }
      pieces = next;
    }
    out.push(...pieces);
  }
  return out;
}

function mergeRanges(ranges: IpRange[]): IpRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: IpRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end + 1n) {
      if (r.end > last.end) last.end = r.end;
    } else out.push({ ...r });
  }
  return out;
}

/** Whether any address of `r` lies in one of `ranges`. */
export function overlapsAny(r: IpRange, ranges: readonly IpRange[]): boolean {
  return ranges.some((x) => x.family === r.family && x.start <= r.end && r.start <= x.end);
}

/** "a" for one address, "a/n" when the range is exactly a prefix, else "a-b". */
export function rangeText(r: IpRange): string {
  if (r.start === r.end) return formatAddress(r.family, r.start);
  const size = r.end - r.start + 1n;
  const isPowerOfTwo = (size & (size - 1n)) === 0n;
  if (isPowerOfTwo && (r.start & (size - 1n)) === 0n) {
    const prefix = WIDTH[r.family] - (size.toString(2).length - 1);
    return `${formatAddress(r.family, r.start)}/${prefix}`;
  }
  return `${formatAddress(r.family, r.start)}-${formatAddress(r.family, r.end)}`;
}

/** The private ranges of both families, parsed. */
export function privateRanges(): IpRange[] {
  return [...PRIVATE_V4, ...PRIVATE_V6].map(parseRange);
}
