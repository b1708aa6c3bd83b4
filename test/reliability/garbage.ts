// Kinds of garbage a server reply can turn into, and the verdict on what the product made of one.
import { PixelsError } from '../../src/core/errors';
import { bounded } from './tally';

export interface Garbage {
  name: string;
  /** the garbled body: for JSON-RPC the whole reply frame, for Incus the HTTP body (both JSON text) */
  apply(body: string): string | Buffer;
}

/** The reply's payload: JSON-RPC `result`, Incus `metadata`. */
function payloadKey(msg: Record<string, unknown>): string {
  return 'result' in msg ? 'result' : 'metadata';
}

function withPayload(body: string, change: (payload: unknown) => unknown): string {
  const msg = JSON.parse(body) as Record<string, unknown>;
  const key = payloadKey(msg);
  msg[key] = change(msg[key]);
  return JSON.stringify(msg);
}

function otherType(v: unknown): unknown {
  if (Array.isArray(v)) return 'not a list';
  if (typeof v === 'string') return { unexpected: true };
  if (typeof v === 'object' && v !== null) return [1, 2, 3];
  return 'text';
}

/** Every field of every object (recursively) through `leaf`. */
function mapLeaves(v: unknown, leaf: (x: unknown) => unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => mapLeaves(x, leaf));
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapLeaves(x, leaf)]));
  return leaf(v);
}

export const GARBAGE: Garbage[] = [
  { name: 'wrong type', apply: (b) => withPayload(b, otherType) },
  {
    name: 'wrong field types',
    apply: (b) =>
      withPayload(b, (p) =>
        typeof p === 'object' && p !== null
          ? mapLeaves(p, (x) => (typeof x === 'string' ? 7 : 'seven'))
          : otherType(p),
      ),
  },
  {
    name: 'missing fields',
    apply: (b) =>
      withPayload(b, (p) => (Array.isArray(p) ? p.map(() => ({})) : typeof p === 'object' && p ? {} : null)),
  },
  {
    // The first strings grow by 300,000 characters each (a few MB in all), every number becomes 1e308.
    name: 'huge values',
    apply: (b) => {
      let grown = 0;
      return withPayload(b, (p) =>
        mapLeaves(p, (x) =>
          typeof x === 'string' && grown++ < 16 ? x + 'x'.repeat(300_000) : typeof x === 'number' ? 1e308 : x,
        ),
      );
    },
  },
  {
    name: 'invalid UTF-8',
    apply: (b) => {
      const at = Math.max(1, b.indexOf('"', b.indexOf(':') + 1) + 1);
      return Buffer.concat([
        Buffer.from(b.slice(0, at)),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from(b.slice(at)),
      ]);
    },
  },
  { name: 'truncated', apply: (b) => b.slice(0, Math.floor(b.length / 2)) },
];

export interface FuzzCase {
  where: string;
  outcome: 'typed error' | 'valid result' | 'crash' | 'hang';
  detail: string;
}

/** Runs one fuzzed call and judges it: a PixelsError naming the method, or a result, within the bound. */
export async function judgeFuzz(
  where: string,
  method: string,
  boundMs: number,
  work: () => Promise<unknown>,
): Promise<FuzzCase> {
  const r = await bounded(boundMs, work);
  if (!r.done) return { where, outcome: 'hang', detail: `no answer within ${boundMs / 1000} s` };
  if (r.error === undefined) return { where, outcome: 'valid result', detail: '' };
  const e = r.error;
  if (e instanceof PixelsError && e.message.includes(method))
    return { where, outcome: 'typed error', detail: e.message.slice(0, 200) };
  return {
    where,
    outcome: 'crash',
    detail: `${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`.slice(0, 300),
  };
}
