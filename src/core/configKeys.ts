// Which keys the configuration knows, so that a typo (`egres = "agent"`, `pixels.defaults.egres`) is reported with
// where it is and the key that was probably meant, instead of being silently ignored (and failing open).
import { closestKey } from './closest';

/**
 * Every key of the pixels CLI's TOML file (its reference, docs in /work/shared/docs/pixels-reference.md), including
 * those this extension does not use: the file is shared with the CLI, so a valid CLI key is never a typo here.
 * `[env]` holds variable names (any key); `[mcp.bases.<name>]` tables hold the base keys.
 */
const TOML_TABLES: Record<string, readonly string[]> = {
  truenas: ['host', 'port', 'username', 'api_key', 'insecure_skip_verify'],
  incus: ['socket', 'remote', 'client_cert', 'client_key', 'server_cert', 'project'],
  defaults: ['image', 'cpu', 'memory', 'pool', 'nic_type', 'parent', 'network', 'dns'],
  ssh: ['user', 'key', 'strict_host_keys'],
  checkpoint: ['dataset_prefix'],
  provision: ['enabled', 'devtools'],
  network: ['egress', 'allow'],
  mcp: [
    'prefix',
    'base_prefix',
    'default_image',
    'idle_stop_after',
    'hard_destroy_after',
    'reap_interval',
    'exec_timeout_max',
    'listen_addr',
    'endpoint_path',
    'state_file',
    'pid_file',
    'bases',
  ],
};
const TOML_TOP_LEVEL_KEYS = ['backend'];
const FREE_TABLES = new Set(['env']);
const MCP_BASE_KEYS = ['parent_image', 'from', 'setup_script', 'description'];

export interface UnknownKey {
  /** Dotted path: `egres`, `network.egres`, `mcp.bases.web.form`. */
  key: string;
  /** The table it is in ('' for the top level), for finding its line. */
  table: string;
  name: string;
  message: string;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function unknown(table: string, name: string, known: readonly string[], what: string): UnknownKey {
  const near = closestKey(name, known);
  // A key of a table written at the top level (`egress = "agent"` without `[network]`) says where it belongs.
  const home = table === '' ? Object.keys(TOML_TABLES).find((t) => TOML_TABLES[t].includes(name)) : undefined;
  // A misspelt table key at the top level (`egres = "agent"`): the nearest key of any table.
  const inner =
    table === '' && !home && !near ? closestKey(name, Object.values(TOML_TABLES).flat()) : undefined;
  const innerTable = inner ? Object.keys(TOML_TABLES).find((t) => TOML_TABLES[t].includes(inner)) : '';
  const hint = home
    ? `; it belongs in the [${home}] table`
    : near
      ? `; did you mean "${near}"?`
      : inner
        ? `; did you mean "${inner}" in the [${innerTable}] table?`
        : `; known ${what}: ${known.join(', ')}`;
  return {
    key: table ? `${table}.${name}` : name,
    table,
    name,
    message: `unknown ${table ? `key in [${table}]` : 'key or table'} "${name}" (ignored)${hint}`,
  };
}

/** The keys and tables of a parsed pixels TOML that neither this extension nor the pixels CLI knows. */
export function unknownTomlKeys(data: Record<string, unknown>): UnknownKey[] {
  const out: UnknownKey[] = [];
  const topLevel = [...TOML_TOP_LEVEL_KEYS, ...Object.keys(TOML_TABLES), ...FREE_TABLES];
  for (const [name, value] of Object.entries(data)) {
    if (FREE_TABLES.has(name) || TOML_TOP_LEVEL_KEYS.includes(name)) continue;
    const keys = TOML_TABLES[name];
    if (!keys) {
      out.push(unknown('', name, topLevel, 'keys and tables'));
      continue;
    }
    if (!isTable(value)) continue; // reported as "must be a table" by the loader
    for (const [key, inner] of Object.entries(value)) {
      if (!keys.includes(key)) {
        out.push(unknown(name, key, keys, 'keys'));
        continue;
      }
      if (name === 'mcp' && key === 'bases' && isTable(inner))
        for (const [base, fields] of Object.entries(inner))
          if (isTable(fields))
            for (const field of Object.keys(fields))
              if (!MCP_BASE_KEYS.includes(field))
                out.push(unknown(`mcp.bases.${base}`, field, MCP_BASE_KEYS, 'keys'));
    }
  }
  return out;
}

/**
 * The `pixels.*` settings the user set that the extension does not contribute. `values` is the `pixels` section
 * as VS Code gives it (nested objects); `known` are the contributed keys without the `pixels.` prefix. A known
 * key's own value (an object such as `provision.stepTimeoutSeconds`) is not searched: its schema covers it.
 */
export function unknownSettings(
  values: Record<string, unknown>,
  known: readonly string[],
): Array<{ key: string; message: string }> {
  const out: Array<{ key: string; message: string }> = [];
  const knownSet = new Set(known);
  const walk = (prefix: string, node: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${name}` : name;
      if (knownSet.has(key)) continue;
      // A parent of known keys (`defaults` of `defaults.egress`): look inside.
      if (isTable(value) && known.some((k) => k.startsWith(`${key}.`))) {
        walk(key, value);
        continue;
      }
      const near = closestKey(key, known);
      out.push({
        key: `pixels.${key}`,
        message: `is not a Pixels setting (ignored)${near ? `; did you mean "pixels.${near}"?` : ''}`,
      });
    }
  };
  walk('', values);
  return out;
}
