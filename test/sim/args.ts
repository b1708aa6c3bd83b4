// A small stand-in for the middleware's pydantic argument models: positional-argument counting and dict models
// with extra="forbid", producing the same [attribute, message, errno] triples and wording as pydantic v2.
import { ERRNO, ValidationErrors, type ValidationItem } from './errors.js';
import { isSimObject, type SimObject, type SimValue } from './ejson.js';

export type FieldType = 'str' | 'int' | 'bool' | 'dict' | 'list' | 'any';

export interface Field {
  type: FieldType;
  nullable?: boolean;
  required?: boolean;
  default?: SimValue;
  literals?: string[];
  minLength?: number;
  maxLength?: number;
  ge?: number;
  /** extra check on a present, well-typed, non-null value: a message, [attribute suffix, message], or null */
  check?: (value: SimValue) => string | [string, string] | null;
}

export type Model = Record<string, Field>;

/** "Too many arguments (expected N, found M)" (api/base/handler/accept.py). */
export function checkArgCount(args: SimValue[], max: number): void {
  if (args.length > max) {
    throw new ValidationErrors([
      ['', `Too many arguments (expected ${max}, found ${args.length})`, ERRNO.EINVAL],
    ]);
  }
}

function literalMessage(literals: string[]): string {
  const quoted = literals.map((l) => `'${l}'`);
  if (quoted.length === 1) return `Input should be ${quoted[0]}`;
  return `Input should be ${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

function typeError(type: FieldType, value: SimValue): string | null {
  switch (type) {
    case 'str':
      return typeof value === 'string' ? null : 'Input should be a valid string';
    case 'int':
      if (typeof value !== 'number') return 'Input should be a valid integer';
      return Number.isInteger(value)
        ? null
        : 'Input should be a valid integer, got a number with a fractional part';
    case 'bool':
      return typeof value === 'boolean' ? null : 'Input should be a valid boolean';
    case 'dict':
      return isSimObject(value) ? null : 'Input should be a valid dictionary';
    case 'list':
      return Array.isArray(value) ? null : 'Input should be a valid list';
    default:
      return null;
  }
}

/**
 * Validates `value` against `model`, appending errors to `errors` (attributes are `${prefix}.${field}`), and
 * returns the value with defaults filled in. A non-dict gives one error at `prefix`.
 */
export function validateModel(
  value: SimValue | undefined,
  prefix: string,
  model: Model,
  errors: ValidationItem[],
): SimObject {
  const at = (field: string) => (prefix ? `${prefix}.${field}` : field);
  if (!isSimObject(value)) {
    errors.push([prefix, 'Input should be a valid dictionary', ERRNO.EINVAL]);
    return {};
  }
  const out: SimObject = {};
  for (const [name, field] of Object.entries(model)) {
    if (!(name in value)) {
      if (field.required) errors.push([at(name), 'Field required', ERRNO.EINVAL]);
      else if (field.default !== undefined) out[name] = field.default;
      continue;
    }
    const item = value[name];
    if (item === null) {
      if (field.nullable) out[name] = null;
      else errors.push([at(name), typeError(field.type, item) ?? 'Input should not be None', ERRNO.EINVAL]);
      continue;
    }
    const bad = typeError(field.type, item);
    if (bad) {
      errors.push([at(name), bad, ERRNO.EINVAL]);
      continue;
    }
    if (field.literals && !field.literals.includes(item as string)) {
      errors.push([at(name), literalMessage(field.literals), ERRNO.EINVAL]);
      continue;
    }
    if (typeof item === 'string') {
      if (field.minLength !== undefined && item.length < field.minLength) {
        const unit = field.minLength === 1 ? 'character' : 'characters';
        errors.push([at(name), `String should have at least ${field.minLength} ${unit}`, ERRNO.EINVAL]);
        continue;
      }
      if (field.maxLength !== undefined && item.length > field.maxLength) {
        errors.push([at(name), `String should have at most ${field.maxLength} characters`, ERRNO.EINVAL]);
        continue;
      }
    }
    if (typeof item === 'number' && field.ge !== undefined && item < field.ge) {
      errors.push([at(name), `Input should be greater than or equal to ${field.ge}`, ERRNO.EINVAL]);
      continue;
    }
    const custom = field.check?.(item);
    if (custom) {
      const [suffix, message] = typeof custom === 'string' ? ['', custom] : custom;
      errors.push([`${at(name)}${suffix}`, message, ERRNO.EINVAL]);
      continue;
    }
    out[name] = item;
  }
  for (const key of Object.keys(value)) {
    if (!(key in model)) errors.push([at(key), 'Extra inputs are not permitted', ERRNO.EINVAL]);
  }
  return out;
}

/** validateModel, throwing ValidationErrors when anything failed. */
export function parseModel(value: SimValue | undefined, prefix: string, model: Model): SimObject {
  const errors: ValidationItem[] = [];
  const out = validateModel(value, prefix, model, errors);
  if (errors.length) throw new ValidationErrors(errors);
  return out;
}

export function str(value: SimValue | undefined): string {
  return typeof value === 'string' ? value : '';
}
export function bool(value: SimValue | undefined): boolean {
  return value === true;
}
export function num(value: SimValue | undefined, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

/** Reads a required positional string argument (an id); pydantic wording when missing or not a string. */
export function idArg(args: SimValue[], index: number, name: string): string {
  if (args.length <= index) throw new ValidationErrors([[name, 'Field required', ERRNO.EINVAL]]);
  const value = args[index];
  if (typeof value !== 'string')
    throw new ValidationErrors([[name, 'Input should be a valid string', ERRNO.EINVAL]]);
  return value;
}
