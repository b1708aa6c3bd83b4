// What Pixels needs from a server reply before it reads it. A server (or anything between) that answers with
// something else gets one clear error naming the call, instead of a TypeError deep inside the mapping code.

/** A field's kind; a trailing `?` lets it be missing or null. */
export type FieldKind = 'string' | 'number' | 'boolean' | 'object' | 'array';
export type FieldSpec = FieldKind | `${FieldKind}?`;

/** Returns what is wrong with a reply, or undefined when it has the shape the caller reads. */
export type ReplyCheck = (value: unknown) => string | undefined;

/** Longest text Pixels takes in a name, status or version field: anything longer is not a real answer. */
export const MAX_FIELD_TEXT = 4096;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string')
    return value.length > MAX_FIELD_TEXT ? `${value.length} characters of text` : 'text';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** A field spec taken apart once, not per row (a list reply may have tens of thousands of rows). */
interface Field {
  name: string;
  kind: FieldKind;
  optional: boolean;
}

function compile(fields: Record<string, FieldSpec>): Field[] {
  return Object.entries(fields).map(([name, spec]) => {
    const optional = spec.endsWith('?');
    return { name, kind: (optional ? spec.slice(0, -1) : spec) as FieldKind, optional };
  });
}

function kindProblem(value: unknown, kind: FieldKind, optional: boolean): string | undefined {
  if (value === undefined || value === null) return optional ? undefined : 'missing';
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') return `${describe(value)} instead of text`;
      return value.length > MAX_FIELD_TEXT ? `${value.length} characters long` : undefined;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
        ? undefined
        : `${describe(value)} instead of a number`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${describe(value)} instead of true/false`;
    case 'array':
      return Array.isArray(value) ? undefined : `${describe(value)} instead of a list`;
    case 'object':
      return typeof value === 'object' && !Array.isArray(value)
        ? undefined
        : `${describe(value)} instead of an object`;
  }
}

/** Text (a version string). */
export const text: ReplyCheck = (value) => {
  const problem = kindProblem(value, 'string', false);
  return problem ? `the reply is ${problem === 'missing' ? 'empty' : problem}` : undefined;
};

function whereIs(rowNumber: number | undefined): string {
  return rowNumber === undefined ? 'the reply' : `row ${rowNumber}`;
}

/** What is wrong with one object: the reply itself, or row N of a list (named only when something is). */
function fieldsProblem(row: unknown, fields: Field[], rowNumber?: number): string | undefined {
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    return `${whereIs(rowNumber)} is ${describe(row)}, not an object`;
  const obj = row as Record<string, unknown>;
  for (const { name, kind, optional } of fields) {
    const problem = kindProblem(obj[name], kind, optional);
    if (problem) return `${whereIs(rowNumber)} field "${name}" is ${problem}`;
  }
  return undefined;
}

/** One object with these fields. */
export function objectWith(fields: Record<string, FieldSpec>): ReplyCheck {
  const compiled = compile(fields);
  return (value) => fieldsProblem(value, compiled);
}

/** A list of objects, each with these fields. */
export function rowsWith(fields: Record<string, FieldSpec>): ReplyCheck {
  const compiled = compile(fields);
  return (value) => {
    if (!Array.isArray(value)) return `the reply is ${describe(value)}, not a list`;
    for (let i = 0; i < value.length; i++) {
      const problem = fieldsProblem(value[i], compiled, i + 1);
      if (problem) return problem;
    }
    return undefined;
  };
}
