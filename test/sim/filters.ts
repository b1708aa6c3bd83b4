// The middleware's generic filter_list (utils/filter_list.py, api/base QueryFilters/QueryOptions) over plain
// simulator objects: filters [[field, op, value]] or ["OR", [branch, ...]], dotted field names, a "C" prefix for
// case-insensitive matches, and the options count/get/select/order_by/offset/limit.
import { ERRNO, MatchNotFound, pyRepr, ValidationErrors } from './errors.js';
import { isSimObject, type SimObject, type SimValue } from './ejson.js';

/** filter_list MAX_LIMIT: a larger `limit` is refused. */
const MAX_LIMIT = 10_000;
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
  /** strings or [name, alias] pairs (validated: exactly two strings) */
  select: (string | SimValue[])[];
  count: boolean;
  get: boolean;
  offset: number;
  limit: number;
}

type Predicate = (item: SimObject) => boolean;

/** Reads a dotted path ("image.os", "a\\.b" for a key with a dot); undefined when any part is missing. */
export function getPath(item: SimValue, path: string): SimValue | undefined {
  let current: SimValue | undefined = item;
  let right = path;
  while (right) {
    const [part, rest] = partition(right);
    right = rest;
    if (!isSimObject(current) || !Object.hasOwn(current, part)) return undefined;
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
  const test = (item: SimValue, path: string): boolean => {
    const found = lookup(item, path);
    if (found.kind === 'missing') return false;
    if (found.kind === 'each') return found.items.some((entry) => test(entry, found.rest));
    return match(op, fold(found.value), right, regex);
  };
  return (item) => test(item, field);
}

/**
 * filter_list get_impl() for a filter: a key missing from a dict makes the filter false whatever its operator
 * (filterop: "Key / attribute doesn't exist in value"); a part after a value that is neither dict nor list is
 * ignored (that value is compared); in a list, a number picks an element (None past the end) and `*` tries every
 * element with the rest of the name.
 */
function lookup(
  item: SimValue,
  path: string,
):
  | { kind: 'missing' }
  | { kind: 'value'; value: SimValue }
  | { kind: 'each'; items: SimValue[]; rest: string } {
  let current: SimValue = item;
  let right = path;
  while (right) {
    const [left, rest] = partition(right);
    right = rest;
    if (isSimObject(current)) {
      if (!Object.hasOwn(current, left)) return { kind: 'missing' };
      current = current[left];
    } else if (Array.isArray(current)) {
      if (left === '*') return { kind: 'each', items: current, rest: right };
      if (!/^\d+$/.test(left)) throw new Error(`${left}: must be array index or wildcard character`);
      current = current[Number(left)] ?? null;
    }
  }
  return { kind: 'value', value: current };
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
        // pydantic list[str | list]: an entry that is neither fails both union members.
        if (!Array.isArray(value)) errors.push([at, 'Input should be a valid list', ERRNO.EINVAL]);
        else
          value.forEach((entry, i) => {
            if (typeof entry === 'string' || Array.isArray(entry)) result.select.push(entry);
            else {
              errors.push([`${at}.${i}.str`, 'Input should be a valid string', ERRNO.EINVAL]);
              errors.push([`${at}.${i}.list[any]`, 'Input should be a valid list', ERRNO.EINVAL]);
            }
          });
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
  if (errors.length) throw new ValidationErrors(errors);
  // The model validator (filter_list validate_options) runs once the fields are valid; its ValueError is one
  // error on the whole options model.
  const problem = optionsProblem(result);
  if (problem) throw ValidationErrors.one(attribute, `Value error, ${problem}`);
  return result;
}

/** filter_list.validate_options / validate_select, first failure only, in their order. */
function optionsProblem(o: QueryOptions): string | undefined {
  if (o.get && o.limit > 1) return 'Invalid options combination. `get` implies a single result.';
  if (o.get && o.offset) return 'Invalid options combination. `get` implies a single result.';
  if (o.limit > MAX_LIMIT) return `Options limit must be between 1 and ${MAX_LIMIT}`;
  for (const s of o.select) {
    if (typeof s === 'string') continue;
    if (s.length !== 2)
      return (
        `${pyLiteral(s)}: A select as list may only contain two parameters: the name of the parameter ` +
        'being selected, and the name to which to assign it in resulting data.'
      );
    const bad = s.findIndex((x) => typeof x !== 'string');
    if (bad >= 0) return `${pyLiteral(s)}: ${bad === 0 ? 'first' : 'second'} item must be a string.`;
  }
  return undefined;
}

/** Python's repr of a JSON value (what an f-string prints for a list from the request). */
function pyLiteral(value: SimValue): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string') return pyRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(', ')}]`;
  if (isSimObject(value))
    return `{${Object.entries(value)
      .map(([k, v]) => `${pyRepr(k)}: ${pyLiteral(v)}`)
      .join(', ')}}`;
  return String(value);
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

/**
 * filter_list partition(): the first part of a dotted name and the rest; `\\.` is a literal dot. A name with an
 * empty part (".a", "a..b") fails like Python's `left[-1]` on an empty string.
 */
export function partition(path: string): [string, string] {
  let done = '';
  let rest = path;
  for (;;) {
    const dot = rest.indexOf('.');
    if (dot < 0) return [done + rest, ''];
    const left = rest.slice(0, dot);
    if (left === '') throw new Error('string index out of range');
    if (!left.endsWith('\\')) return [done + left, rest.slice(dot + 1)];
    done += left.slice(0, -1) + '.';
    rest = rest.slice(dot + 1);
  }
}

const NOT_FOUND = Symbol('MatchNotFound');

/**
 * filter_list select_path(): walks the dicts of a dotted name. A part missing from a dict is "not found"; a part
 * after a value that is not a dict is ignored (the value reached so far is selected, under the keys walked so
 * far); a list on the way is refused.
 */
function selectPath(row: SimObject, path: string): { keys: string[]; value: SimValue | typeof NOT_FOUND } {
  const keys: string[] = [];
  let current: SimValue | typeof NOT_FOUND = row;
  let right = path;
  while (right) {
    const [left, rest] = partition(right);
    right = rest;
    if (isSimObject(current)) {
      current = Object.hasOwn(current, left) ? current[left] : NOT_FOUND;
      keys.push(left);
    } else if (Array.isArray(current)) throw new Error('Selecting by list index is not supported');
  }
  return { keys, value: current };
}

/** Python's type name for the TypeError of an assignment into a value that is not a dict. */
function pyTypeName(value: SimValue): string {
  if (value === null) return 'NoneType';
  if (typeof value === 'string') return 'str';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (value instanceof Date) return 'datetime.datetime';
  if (value instanceof Set) return 'set';
  return 'object';
}

/**
 * filter_list do_select() on one row: each name in the order given; `[name, alias]` puts the value under the alias
 * as one key (dots and all); a plain dotted name rebuilds the nesting; a name not found is left out, silently.
 */
export function selectFields(row: SimObject, select: (string | SimValue[])[]): SimObject {
  const out: SimObject = {};
  for (const entry of select) {
    const [target, alias] = typeof entry === 'string' ? [entry, undefined] : (entry as [string, string]);
    const { keys, value } = selectPath(row, target);
    if (value === NOT_FOUND) continue;
    if (alias !== undefined) {
      out[alias] = value;
      continue;
    }
    const last = keys.pop();
    if (last === undefined) throw new Error('pop from empty list');
    let node: SimValue = out;
    for (const key of keys) {
      if (!Object.hasOwn(node, key)) node[key] = {};
      const next: SimValue = node[key];
      if (Array.isArray(next)) throw new Error('list indices must be integers or slices, not str');
      if (!isSimObject(next))
        throw new Error(`'${pyTypeName(next)}' object does not support item assignment`);
      node = next;
    }
    node[last] = value;
  }
  return out;
}

function orderRows(rows: SimObject[], orderBy: string[]): SimObject[] {
  for (const spec of [...orderBy].reverse()) {
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
  return rows;
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
  // filter_list selects first and orders the selected rows (an order_by name that is not selected sees None).
  if (options.select.length) rows = rows.map((row) => selectFields(row, options.select));
  rows = orderRows(rows, options.orderBy);
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
  return filterList(items, filters, parseOptions(options));
}

/**
 * The snapshot queries (zfs.snapshot.query 25.04/25.10, pool.snapshot.query 25.10/26): `select` is taken out of
 * the options before filter_list runs and applied afterwards by keeping the top-level keys named in it. A dotted
 * name ("properties.used") or a `[name, alias]` pair matches no key and selects nothing; an unknown name, too.
 */
export function snapshotQuery(
  items: SimObject[],
  filters: SimValue | undefined,
  options: SimValue | undefined,
): SimValue {
  const parsed = parseOptions(options);
  const result = filterList(items, filters, { ...parsed, select: [] });
  if (!parsed.select.length) return result;
  // Python's `k in select`: a key equals a string entry; a list entry equals no key.
  const names = new Set(parsed.select.filter((s): s is string => typeof s === 'string'));
  const keep = (row: SimObject): SimObject => {
    const out: SimObject = {};
    for (const key of Object.keys(row)) if (names.has(key)) out[key] = row[key];
    return out;
  };
  if (Array.isArray(result)) return result.map((row) => keep(row as SimObject));
  return isSimObject(result) ? keep(result) : result;
}
