// Bases and the agent lifecycle policy from the pixels TOML: `[mcp.bases.<name>]` tables (parent_image | from,
// setup_script, description) merged over the built-ins dev/python/node (the user's table wins on a name clash),
// and `[mcp]` base_prefix / idle_stop_after / hard_destroy_after (with their PIXELS_MCP_* variables).
// A bad base is reported with its file, line and key, and left out (with every base built from it); the rest load.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseGoDuration } from './duration';
import { sandboxNameProblem } from './names';

/** Where a base's setup script comes from: one embedded in the extension, or a file on this machine. */
export type SetupScriptRef = { kind: 'embedded'; name: EmbeddedScriptName } | { kind: 'file'; path: string };

export interface BaseDefinition {
  name: string;
  /** Built from this image (with the usual provisioning)… */
  parentImage?: string;
  /** …or cloned from the newest checkpoint of this other base. Exactly one of the two. */
  from?: string;
  setupScript?: SetupScriptRef;
  description?: string;
  builtin: boolean;
}

export interface AgentLifecycleConfig {
  /** A running agent sandbox with no activity for this long is stopped (0: never). */
  idleStopAfterMs: number;
  /** An agent sandbox older than this is destroyed (0: never). */
  maxAgeMs: number;
}

export interface BasesConfig {
  bases: BaseDefinition[];
  /** The sandbox of base `dev` is `<basePrefix>dev` (pixels: `base-`, so `px-base-dev`). */
  basePrefix: string;
  lifecycle: AgentLifecycleConfig;
}

/** One problem, in the shape the config loader reports (its `ConfigProblem`). */
export interface BasesProblem {
  source: string;
  line?: number;
  key?: string;
  message: string;
}

/** `mcp:bases/<name>` names a setup script embedded in the extension (src/bases/builtinScripts.ts has the texts). */
export const EMBEDDED_SCRIPT_PREFIX = 'mcp:bases/';
export const EMBEDDED_SCRIPT_NAMES = ['dev.sh', 'python.sh', 'node.sh'] as const;
export type EmbeddedScriptName = (typeof EMBEDDED_SCRIPT_NAMES)[number];

function isEmbeddedScriptName(name: string): name is EmbeddedScriptName {
  return (EMBEDDED_SCRIPT_NAMES as readonly string[]).includes(name);
}

export const DEFAULT_BASE_PREFIX = 'base-';
export const DEFAULT_LIFECYCLE: AgentLifecycleConfig = {
  idleStopAfterMs: 3_600_000,
  maxAgeMs: 24 * 3_600_000,
};

/** pixels' built-ins (`internal/config/defaults.go`): dev from ubuntu/24.04; python and node from dev. */
export const BUILTIN_BASES: readonly BaseDefinition[] = [
  {
    name: 'dev',
    parentImage: 'ubuntu/24.04',
    setupScript: { kind: 'embedded', name: 'dev.sh' },
    description: 'Ubuntu 24.04 with git, curl, wget, jq, vim and build-essential',
    builtin: true,
  },
  {
    name: 'python',
    from: 'dev',
    setupScript: { kind: 'embedded', name: 'python.sh' },
    description: 'dev + python3, pip, venv and pipx',
    builtin: true,
  },
  {
    name: 'node',
    from: 'dev',
    setupScript: { kind: 'embedded', name: 'node.sh' },
    description: 'dev + Node.js 22 (NodeSource)',
    builtin: true,
  },
];

const BASE_KEYS = ['parent_image', 'from', 'setup_script', 'description'] as const;

export interface ParseBasesInput {
  /** The parsed `[mcp]` table (anything: a wrong type is reported). */
  mcp: unknown;
  env?: NodeJS.ProcessEnv;
  /** The TOML file, for messages. */
  file: string;
  /** Line of `key` in `[table]`, for messages (the loader's lineOfKey over the file's text). */
  lineOf?: (table: string, key: string) => number | undefined;
  home?: string;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export function parseBases(input: ParseBasesInput): { config: BasesConfig; problems: BasesProblem[] } {
  const env = input.env ?? process.env;
  const home = input.home ?? homedir();
  const problems: BasesProblem[] = [];
  const problem = (table: string, key: string, message: string, source = input.file) =>
    problems.push({
      source,
      line: source === input.file ? input.lineOf?.(table, key) : undefined,
      key: source === input.file ? `${table}.${key}` : key,
      message,
    });
  const mcp = isTable(input.mcp) ? input.mcp : {};
  const fromEnv = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

  // --- [mcp] base_prefix, idle_stop_after, hard_destroy_after (environment first, as pixels)
  const stringField = (key: string, envName: string): { value: string; source: string } | undefined => {
    const e = fromEnv(envName);
    if (e !== undefined) return { value: e, source: 'environment' };
    const v = mcp[key];
    if (v === undefined || v === '') return undefined;
    if (typeof v === 'string') return { value: v, source: input.file };
    problem('mcp', key, `must be a string, got ${describe(v)}`);
    return undefined;
  };
  let basePrefix = DEFAULT_BASE_PREFIX;
  const prefix = stringField('base_prefix', 'PIXELS_MCP_BASE_PREFIX');
  if (prefix) {
    const bad = sandboxNameProblem(`${prefix.value}x`);
    if (bad)
      problem(
        'mcp',
        prefix.source === 'environment' ? 'PIXELS_MCP_BASE_PREFIX' : 'base_prefix',
        `"${prefix.value}" cannot start a sandbox name: ${bad}`,
        prefix.source,
      );
    else basePrefix = prefix.value;
  }
  const lifecycle = { ...DEFAULT_LIFECYCLE };
  const duration = (key: string, envName: string): number | undefined => {
    const v = stringField(key, envName);
    if (!v) return undefined;
    const parsed = parseGoDuration(v.value);
    if (typeof parsed === 'number') return parsed;
    problem('mcp', v.source === 'environment' ? envName : key, parsed.problem, v.source);
    return undefined;
  };
  lifecycle.idleStopAfterMs =
    duration('idle_stop_after', 'PIXELS_MCP_IDLE_STOP_AFTER') ?? lifecycle.idleStopAfterMs;
  lifecycle.maxAgeMs = duration('hard_destroy_after', 'PIXELS_MCP_HARD_DESTROY_AFTER') ?? lifecycle.maxAgeMs;

  // --- [mcp.bases.<name>]
  const byName = new Map<string, BaseDefinition>(BUILTIN_BASES.map((b) => [b.name, { ...b }]));
  const rawBases = mcp.bases;
  if (rawBases !== undefined && !isTable(rawBases))
    problem('mcp', 'bases', `must be a table of bases ([mcp.bases.<name>]), got ${describe(rawBases)}`);
  const broken = new Set<string>();
  for (const [name, raw] of Object.entries(isTable(rawBases) ? rawBases : {})) {
    const table = `mcp.bases.${name}`;
    const bad = (key: string, message: string) => {
      problem(table, key, message);
      broken.add(name);
    };
    const nameBad = sandboxNameProblem(`${basePrefix}${name}`);
    if (nameBad) {
      problems.push({
        source: input.file,
        line: input.lineOf?.('mcp.bases', name),
        key: table,
        message: `base "${name}" cannot be a sandbox name (${basePrefix}${name}): ${nameBad}`,
      });
      byName.delete(name);
      continue;
    }
    if (!isTable(raw)) {
      problems.push({ source: input.file, key: table, message: `must be a table, got ${describe(raw)}` });
      byName.delete(name);
      continue;
    }
    const def: BaseDefinition = { name, builtin: false };
    for (const key of BASE_KEYS) {
      const v = raw[key];
      if (v === undefined) continue;
      if (typeof v !== 'string') {
        bad(key, `must be a string, got ${describe(v)}`);
        continue;
      }
      if (v === '') continue;
      if (key === 'parent_image') def.parentImage = v;
      else if (key === 'from') def.from = v;
      else if (key === 'description') def.description = v;
      else {
        if (v.startsWith(EMBEDDED_SCRIPT_PREFIX)) {
          const file = v.slice(EMBEDDED_SCRIPT_PREFIX.length);
          if (!isEmbeddedScriptName(file))
            bad(
              key,
              `"${v}" is not an embedded script; the embedded ones are ${EMBEDDED_SCRIPT_NAMES.map(
                (f) => `${EMBEDDED_SCRIPT_PREFIX}${f}`,
              ).join(', ')}`,
            );
          else def.setupScript = { kind: 'embedded', name: file };
        } else def.setupScript = { kind: 'file', path: expandHome(v, home) };
      }
    }
    if (def.parentImage && def.from)
      bad(
        'from',
        'a base has either parent_image (built from an image) or from (built on another base), not both',
      );
    else if (!def.parentImage && !def.from && !broken.has(name))
      bad('parent_image', 'a base needs parent_image (an image, e.g. "ubuntu/24.04") or from (another base)');
    // The user's table replaces a built-in of the same name as a whole (pixels: the user config wins).
    byName.set(name, def);
  }

  // --- from: the base must exist, and the chain must end at an image (no cycle)
  for (const def of byName.values()) {
    if (broken.has(def.name) || !def.from) continue;
    if (def.from === def.name || !byName.has(def.from)) {
      problem(
        `mcp.bases.${def.name}`,
        'from',
        def.from === def.name
          ? `base "${def.name}" cannot be built from itself`
          : `base "${def.from}" is not defined; known bases: ${[...byName.keys()].sort().join(', ')}`,
        def.builtin ? 'built-in bases' : input.file,
      );
      broken.add(def.name);
    }
  }
  for (const def of byName.values()) {
    if (broken.has(def.name)) continue;
    const seen = [def.name];
    let at = def;
    while (at.from) {
      const next = byName.get(at.from);
      if (!next || broken.has(next.name)) {
        problem(
          `mcp.bases.${def.name}`,
          'from',
          `base "${def.name}" is built on "${at.from}", which has a problem of its own (see above)`,
        );
        broken.add(def.name);
        break;
      }
      if (seen.includes(next.name)) {
        problem(
          `mcp.bases.${def.name}`,
          'from',
          `bases are built on each other in a cycle: ${[...seen, next.name].join(' → ')}`,
        );
        broken.add(def.name);
        break;
      }
      seen.push(next.name);
      at = next;
    }
  }
  const bases = [...byName.values()]
    .filter((b) => !broken.has(b.name))
    .sort((a, b) => a.name.localeCompare(b.name));
  return { config: { bases, basePrefix, lifecycle }, problems };
}

/** The chain of bases `name` is built on, the one built from an image first, `name` last. */
export function baseChain(bases: readonly BaseDefinition[], name: string): BaseDefinition[] {
  const chain: BaseDefinition[] = [];
  let at = bases.find((b) => b.name === name);
  while (at) {
    chain.unshift(at);
    if (chain.length > bases.length) break;
    at = at.from ? bases.find((b) => b.name === at?.from) : undefined;
  }
  return chain;
}

function expandHome(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isTable(v)) return 'a table';
  if (typeof v === 'string') return `"${v}"`;
  return `${typeof v} ${String(v)}`;
}
