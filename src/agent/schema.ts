// The small JSON Schema subset the agent tools declare (objects of strings, integers, booleans, string arrays and
// string maps), and a validator for it. VS Code checks LM tool input itself; MCP clients send anything, so every
// call is checked here first and a bad input is answered with what to fix.
import { ValidationError } from '../core/errors';

export type JsonSchema =
  | { type: 'string'; description?: string; enum?: readonly string[]; minLength?: number }
  | { type: 'integer'; description?: string; minimum?: number; maximum?: number }
  | { type: 'boolean'; description?: string }
  | { type: 'array'; description?: string; items: { type: 'string' }; minItems?: number }
  | {
      type: 'object';
      description?: string;
      additionalProperties: { type: 'string' } | false;
      properties?: Record<string, JsonSchema>;
      required?: readonly string[];
    };

/** A tool's input: always an object at the top level (VS Code and MCP require it). */
export interface ObjectSchema {
  type: 'object';
  properties: Record<string, JsonSchema>;
  required: readonly string[];
  additionalProperties: false;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  return `a ${typeof value}`;
}

function problemOf(schema: JsonSchema, value: unknown, where: string): string | undefined {
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return `${where} must be a string, not ${typeName(value)}`;
      if (schema.minLength !== undefined && value.length < schema.minLength)
        return `${where} must not be empty`;
      if (schema.enum && !schema.enum.includes(value))
        return `${where} must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`;
      return undefined;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value))
        return `${where} must be an integer, not ${typeName(value)}`;
      if (schema.minimum !== undefined && value < schema.minimum)
        return `${where} must be at least ${schema.minimum}`;
      if (schema.maximum !== undefined && value > schema.maximum)
        return `${where} must be at most ${schema.maximum}`;
      return undefined;
    case 'boolean':
      return typeof value === 'boolean'
        ? undefined
        : `${where} must be true or false, not ${typeName(value)}`;
    case 'array': {
      if (!Array.isArray(value)) return `${where} must be an array of strings, not ${typeName(value)}`;
      if (schema.minItems !== undefined && value.length < schema.minItems)
        return `${where} must have at least ${schema.minItems} element${schema.minItems === 1 ? '' : 's'}`;
      const bad = value.findIndex((v) => typeof v !== 'string');
      return bad === -1 ? undefined : `${where}[${bad}] must be a string, not ${typeName(value[bad])}`;
    }
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return `${where} must be an object, not ${typeName(value)}`;
      const record = value as Record<string, unknown>;
      for (const key of schema.required ?? [])
        if (record[key] === undefined) return `${where ? `${where}.` : ''}${key} is required`;
      for (const [key, v] of Object.entries(record)) {
        const path = where ? `${where}.${key}` : key;
        const declared = schema.properties?.[key];
        if (declared) {
          const p = problemOf(declared, v, path);
          if (p) return p;
        } else if (schema.additionalProperties === false) {
          const known = Object.keys(schema.properties ?? {});
          return `${path} is not an argument of this tool (it takes ${known.join(', ') || 'no arguments'})`;
        } else {
          const p = problemOf(schema.additionalProperties, v, path);
          if (p) return p;
        }
      }
      return undefined;
    }
  }
}

/** Checks `input` against the tool's schema; throws a ValidationError naming the first problem. */
export function validateInput<T>(schema: ObjectSchema, input: unknown, tool: string): T {
  const problem = problemOf(schema, input ?? {}, '');
  if (problem)
    throw new ValidationError(
      `Invalid arguments for ${tool}: ${problem}. Fix the arguments and call it again.`,
    );
  return (input ?? {}) as T;
}
