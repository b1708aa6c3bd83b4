// TrueNAS "ejson" (truenas_api_client/ejson.py): JSON plus a few tagged objects.
// Inside the simulator values are plain JS with Date/Set/DateOnly/TimeOfDay; on the wire they are the tagged forms:
//   Date -> {"$date": ms}, Set -> {"$set": [...]}, DateOnly -> {"$type":"date","$value":"YYYY-MM-DD"},
//   TimeOfDay -> {"$time":"HH:MM:SS"}, Ipv4Interface -> {"$ipv4_interface":"10.0.0.1/24"}.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A calendar date without time (Python `date`). */
export class DateOnly {
  constructor(readonly iso: string) {}
}
/** A time of day (Python `time`). */
export class TimeOfDay {
  constructor(readonly text: string) {}
}
/** An IPv4 interface (Python `ipaddress.IPv4Interface`). */
export class Ipv4Interface {
  constructor(readonly text: string) {}
}

export type SimValue =
  | null
  | boolean
  | number
  | string
  | Date
  | DateOnly
  | TimeOfDay
  | Ipv4Interface
  | Set<SimValue>
  | SimValue[]
  | SimObject;
export interface SimObject {
  [key: string]: SimValue;
}

export function isSimObject(value: unknown): value is SimObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    !(value instanceof Set) &&
    !(value instanceof DateOnly) &&
    !(value instanceof TimeOfDay) &&
    !(value instanceof Ipv4Interface)
  );
}

/** Turns a simulator value into plain JSON with the ejson tags. */
export function encode(value: SimValue | undefined): Json {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return { $date: value.getTime() };
  if (value instanceof Set) return { $set: [...value].map(encode) };
  if (value instanceof DateOnly) return { $type: 'date', $value: value.iso };
  if (value instanceof TimeOfDay) return { $time: value.text };
  if (value instanceof Ipv4Interface) return { $ipv4_interface: value.text };
  if (Array.isArray(value)) return value.map(encode);
  if (typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = encode(item);
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

/** Turns parsed JSON back into simulator values (the server decodes what clients send, e.g. $date in filters). */
export function decode(value: unknown): SimValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [key] = keys;
      const tagged = obj[key];
      if (key === '$date' && typeof tagged === 'number') return new Date(tagged);
      if (key === '$set' && Array.isArray(tagged)) return new Set(tagged.map(decode));
      if (key === '$time' && typeof tagged === 'string') return new TimeOfDay(tagged);
      if (key === '$ipv4_interface' && typeof tagged === 'string') return new Ipv4Interface(tagged);
    }
    if (keys.length === 2 && obj.$type === 'date' && typeof obj.$value === 'string')
      return new DateOnly(obj.$value);
    const out: SimObject = {};
    for (const [key, item] of Object.entries(obj)) out[key] = decode(item);
    return out;
  }
  throw new TypeError(`cannot decode ${typeof value}`);
}

export function stringify(value: SimValue | undefined): string {
  return JSON.stringify(encode(value));
}

/** Deep copy, so callers can never mutate simulator state through a returned object. */
export function clone<T extends SimValue>(value: T): T {
  return decode(encode(value)) as T;
}
