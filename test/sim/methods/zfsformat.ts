// How libzfs/py-libzfs present ZFS properties: {value, rawvalue, parsed, source}, with `value` in zfs_nicenum
// form ("1.20M", "600M") and `creation` as "Mon Jan  6 10:00 2025".
import type { SimObject, SimValue } from '../ejson.js';

/** zfs_nicenum: binary units, at most 5 characters, trimming precision from 2 decimals down. */
export function nicenum(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let index = 0;
  let n = bytes;
  while (n >= 1024 && index < units.length - 1) {
    n /= 1024;
    index += 1;
  }
  if (index === 0 || Number.isInteger(n)) return `${Math.floor(n)}${units[index]}`;
  for (const precision of [2, 1, 0]) {
    const text = `${n.toFixed(precision)}${units[index]}`;
    if (text.length <= 5) return text;
  }
  return `${Math.round(n)}${units[index]}`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ctime-like "%a %b %e %H:%M %Y" in UTC. */
export function zfsDate(date: Date): string {
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const hh = String(date.getUTCHours()).padStart(2, '0');
  const mm = String(date.getUTCMinutes()).padStart(2, '0');
  return `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${day} ${hh}:${mm} ${date.getUTCFullYear()}`;
}

export function prop(value: string, rawvalue: string, parsed: SimValue, source = 'NONE'): SimObject {
  return { value, rawvalue, parsed, source };
}

export function sizeProp(bytes: number): SimObject {
  return prop(nicenum(bytes), String(bytes), bytes);
}

export function dateProp(date: Date): SimObject {
  return prop(
    zfsDate(date),
    String(Math.floor(date.getTime() / 1000)),
    new Date(Math.floor(date.getTime() / 1000) * 1000),
  );
}

export function stringProp(text: string, source = 'NONE'): SimObject {
  return prop(text, text, text, source);
}
