// The middleware's generic filter_list (utils/filter_list.py, api/base QueryFilters/QueryOptions) over plain
// simulator objects: filters [[field, op, value]] or ["OR", [branch, ...]], dotted field names, a "C" prefix for
// case-insensitive matches, and the options count/get/select/order_by/offset/limit.
import { ERRNO, MatchNotFound, ValidationErrors } from './errors.js';
import { isSimObject, type SimObject, type SimValue } from './ejson.js';

const OPS = new Set(['=', '!=', '>', '>=', '<', '<=', '~', 'in', 'nin', 'rin', 'rnin', '^', '!^', '$', '!$']);
const OPTION_KEYS = new Set([
  'relationships',
  'extend',
  'extend_context',
  'prefix',
  'extra',
  'order_by',
  'select',
  'count',
  'get',
  'offset',
  'limit',
  'force_sql_filters',
]);

export interface QueryOptions {
  extra: SimObject;
  orderBy: string[];
  select: (string | [string, string])[];
  count: boolean;
  get: boolean;
  offset: number;
  limit: number;
}

type Predicate = (item: SimObject) => boolean;

/** Reads a dotted path ("image.os"); undefined when any part is missing. */
export function getPath(item: SimValue, path: string): SimValue | undefined {
  let current: SimValue | undefined = item;
  for (const part of path.split('.')) {
    if (!isSimObject(current) || !(part in current)) return undefined;
    current = current[part];
  }
  return current;
}

/** Validates the `filters` argument and compiles it to one predicate (all top-level filters ANDed). */
export function compileFilters(filters: SimValue | undefined, attribute = 'filters'): Predicate {
  if (filters === undefined || filters === null) return () => true;
  if (!Array.isArray(filters))
    throw ValidationErrors.one(attribute, 'Input should be a valid list', ERRNO.EINVAL);
  const predicates = filters.map((entry, index) => compileOne(entry, `${attribute}.${index}`));
  return (item) => predicates.every((p) => p(item));
}

function compileOne(entry: SimValue, attribute: string): Predicate {
  if (!Array.isArray(entry)) throw ValidationErrors.one(attribute, 'Input should be a valid list');
  if (entry.length === 2 && entry[0] === 'OR') {
    const branches = entry[1];
    if (!Array.isArray(branches))
      throw ValidationErrors.one(attribute, 'OR filter requires a list of filters');
    const compiled = branches.map((branch, index) => {
      // A branch is either one filter [f, op, v] or a list of filters ANDed together.
      if (Array.isArray(branch) && branch.length > 0 && Array.isArray(branch[0])) {
        return compileFilters(branch, `${attribute}.1.${index}`);
      }
      return compileOne(branch, `${attribute}.1.${index}`);
    });
    return (item) => compiled.some((p) => p(item));
  }
  if (entry.length !== 3) throw ValidationErrors.one(attribute, `Invalid filter ${JSON.stringify(entry)}`);
  const [field, rawOp, value] = entry;
  if (typeof field !== 'string' || typeof rawOp !== 'string') {
    throw ValidationErrors.one(attribute, `Invalid filter ${JSON.stringify(entry)}`);
  }
  const insensitive = rawOp.startsWith('C');
  const op = insensitive ? rawOp.slice(1) : rawOp;
  if (!OPS.has(op) || (insensitive && op === '~')) {
    throw ValidationErrors.one(attribute, `Invalid operation: ${rawOp}`);
  }
  let regex: RegExp | undefined;
  if (op === '~') {
    if (typeof value !== 'string')
      throw ValidationErrors.one(attribute, 'Regular expression must be a string');
    try {
      regex = new RegExp(`^(?:${value})`);
    } catch {
      throw ValidationErrors.one(attribute, `Invalid regular expression: ${value}`);
    }
  }
  const fold = (v: SimValue | undefined): SimValue | undefined => {
    if (!insensitive) return v;
    if (typeof v === 'string') return v.toLowerCase();
    if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x.toLowerCase() : x));
    return v;
  };
  const right = fold(value);
  return (item) => match(op, fold(getPath(item, field)), right, regex);
}

function match(op: string, x: SimValue | undefined, y: SimValue | undefined, regex?: RegExp): boolean {
  switch (op) {
    case '=':
      return equal(x, y);
    case '!=':
      return !equal(x, y);
    case '>':
    case '>=':
    case '<':
    case '<=': {
      if (x === undefined || x === null || y === undefined || y === null) return false;
      const c = compare(x, y);
      if (c === undefined) return false;
      return op === '>' ? c > 0 : op === '>=' ? c >= 0 : op === '<' ? c < 0 : c <= 0;
    }
    case '~':
      return typeof x === 'string' && regex !== undefined && regex.test(x);
    case 'in':
      return contains(y, x);
    case 'nin':
      return !contains(y, x);
    case 'rin':
      return x !== undefined && x !== null && contains(x, y);
    case 'rnin':
      return x !== undefined && x !== null && !contains(x, y);
    case '^':
      return typeof x === 'string' && typeof y === 'string' && x.startsWith(y);
    case '!^':
      return typeof x === 'string' && typeof y === 'string' && !x.startsWith(y);
    case '$':
      return typeof x === 'string' && typeof y === 'string' && x.endsWith(y);
    case '!$':
      return typeof x === 'string' && typeof y === 'string' && !x.endsWith(y);
    default:
      return false;
  }
}

function contains(container: SimValue | undefined, needle: SimValue | undefined): boolean {
  if (typeof container === 'string') return typeof needle === 'string' && container.includes(needle);
  if (Array.isArray(container)) return container.some((item) => equal(item, needle));
  if (container instanceof Set) return [...container].some((item) => equal(item, needle));
  if (isSimObject(container)) return typeof needle === 'string' && needle in container;
  return false;
}

export function equal(a: SimValue | undefined, b: SimValue | undefined): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') {
    // Python: True == 1 and False == 0.
    const na = typeof a === 'boolean' ? Number(a) : a;
    const nb = typeof b === 'boolean' ? Number(b) : b;
    return na === nb;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => equal(v, b[i]));
  }
  if (isSimObject(a) || isSimObject(b)) {
    if (!isSimObject(a) || !isSimObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
  }
  return a === b;
}

/** Python-style ordering for comparable pairs; undefined when Python would raise TypeError. */
export function compare(a: SimValue, b: SimValue): number | undefined {
  const na = a instanceof Date ? a.getTime() : typeof a === 'boolean' ? Number(a) : a;
  const nb = b instanceof Date ? b.getTime() : typeof b === 'boolean' ? Number(b) : b;
  if (typeof na === 'number' && typeof nb === 'number') return na - nb;
  if (typeof na === 'string' && typeof nb === 'string') return na < nb ? -1 : na > nb ? 1 : 0;
  return undefined;
}

/** Validates the `options` argument (QueryOptions is extra="forbid"). */
export function parseOptions(options: SimValue | undefined, attribute = 'options'): QueryOptions {
  const result: QueryOptions = {
    extra: {},
    orderBy: [],
    select: [],
    count: false,
    get: false,
    offset: 0,
    limit: 0,
  };
  if (options === undefined || options === null) return result;
  if (!isSimObject(options)) throw ValidationErrors.one(attribute, 'Input should be a valid dictionary');
  const errors: [string, string, number][] = [];
  for (const [key, value] of Object.entries(options)) {
    const at = `${attribute}.${key}`;
    if (!OPTION_KEYS.has(key)) {
      errors.push([at, 'Extra inputs are not permitted', ERRNO.EINVAL]);
      continue;
    }
    switch (key) {
      case 'extra':
        if (!isSimObject(value)) errors.push([at, 'Input should be a valid dictionary', ERRNO.EINVAL]);
        else result.extra = value;
        break;
      case 'order_by':
        if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
          errors.push([at, 'Input should be a valid list', ERRNO.EINVAL]);
        } else result.orderBy = value as string[];
        break;
      case 'select':
        if (!Array.isArray(value)) errors.push([at, 'Input should be a valid list', ERRNO.EINVAL]);
        else {
          for (const entry of value) {
            if (typeof entry === 'string') result.select.push(entry);
            else if (
              Array.isArray(entry) &&
              entry.length === 2 &&
              typeof entry[0] === 'string' &&
              typeof entry[1] === 'string'
            ) {
              result.select.push([entry[0], entry[1]]);
            } else errors.push([at, `Invalid select entry: ${JSON.stringify(entry)}`, ERRNO.EINVAL]);
          }
        }
        break;
      case 'count':
      case 'get':
        if (typeof value !== 'boolean') errors.push([at, 'Input should be a valid boolean', ERRNO.EINVAL]);
        else result[key] = value;
        break;
      case 'offset':
      case 'limit':
        if (typeof value !== 'number' || !Number.isInteger(value)) {
          errors.push([at, 'Input should be a valid integer', ERRNO.EINVAL]);
        } else if (value < 0) errors.push([at, 'Input should be greater than or equal to 0', ERRNO.EINVAL]);
        else result[key] = value;
        break;
      default:
        break; // relationships/extend/prefix/force_sql_filters: accepted, no effect on in-memory lists
    }
  }
  if (result.get && (result.offset > 0 || result.limit > 1)) {
    errors.push([
      `${attribute}.get`,
      'Cannot combine get with offset or with a limit greater than 1',
      ERRNO.EINVAL,
    ]);
  }
  if (errors.length) throw new ValidationErrors(errors);
  return result;
}

function orderKey(spec: string): { path: string; desc: boolean; nulls: 'first' | 'last' } {
  let rest = spec;
  let nulls: 'first' | 'last' = 'last';
  if (rest.startsWith('nulls_first:')) {
    nulls = 'first';
    rest = rest.slice('nulls_first:'.length);
  } else if (rest.startsWith('nulls_last:')) {
    rest = rest.slice('nulls_last:'.length);
  }
  const desc = rest.startsWith('-');
  return { path: desc ? rest.slice(1) : rest, desc, nulls };
}

function setPath(target: SimObject, path: string, value: SimValue): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (!isSimObject(next)) node[part] = {};
    node = node[part] as SimObject;
  }
  node[parts[parts.length - 1]] = value;
}

/** Applies filters and options. Returns a list, an entry (get), or a number (count). */
export function filterList(
  items: SimObject[],
  filters: SimValue | undefined,
  options: QueryOptions,
): SimValue {
  const predicate = compileFilters(filters);
  let rows = items.filter(predicate);
  if (options.count) return rows.length;
  for (const spec of [...options.orderBy].reverse()) {
    const { path, desc, nulls } = orderKey(spec);
    rows = [...rows].sort((a, b) => {
      const va = getPath(a, path) ?? null;
      const vb = getPath(b, path) ?? null;
      if (va === null || vb === null) {
        if (va === vb) return 0;
        return (va === null) === (nulls === 'first') ? -1 : 1;
      }
      const c = compare(va, vb) ?? 0;
      return desc ? -c : c;
    });
  }
  if (options.select.length) {
    rows = rows.map((row) => {
      const out: SimObject = {};
      for (const entry of options.select) {
        const [path, alias] = typeof entry === 'string' ? [entry, entry] : entry;
        const value = getPath(row, path);
        if (value !== undefined) setPath(out, alias, value);
      }
      return out;
    });
  }
  if (options.get) {
    if (rows.length === 0) throw new MatchNotFound();
    return rows[0];
  }
  if (options.offset) rows = rows.slice(options.offset);
  if (options.limit) rows = rows.slice(0, options.limit);
  return rows;
}

/** Convenience: validate both arguments and run. */
export function query(
  items: SimObject[],
  filters: SimValue | undefined,
  options: SimValue | undefined,
): SimValue {
  const parsed = parseOptions(options);
  return filterList(items, filters, parsed);
}
