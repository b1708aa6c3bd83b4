// The egress policy of one sandbox. It lives in one file inside the sandbox (/etc/pixels/egress.json), written
// by the host and read by the in-sandbox `pixels-egress` script at boot, by its re-resolution timer, and by
// `network show`. Runtime changes (allow/deny) edit this file, so nothing is lost and agent mode stays agent.
import type { EgressMode } from '../../core/sandbox';
import { NotFoundError, ValidationError } from '../../core/errors';
import { normalizeEgressEntry, parseEgressEntry } from '../../core/egressEntry';
import { agentPresetEntries } from './presets';

export const EGRESS_MODES: readonly EgressMode[] = ['unrestricted', 'agent', 'allowlist'];

export interface EgressPolicy {
  version: 1;
  mode: EgressMode;
  /** The agent preset entries in force for this sandbox (empty unless mode is agent). */
  preset: string[];
  /** The user's own entries (domains, addresses, CIDR ranges), including those added at runtime. */
  allow: string[];
  /** DNS servers the sandbox may query; empty = the nameservers in the sandbox's resolv.conf at apply time. */
  resolvers: string[];
}

export interface PolicySettings {
  /** Entries added to the agent preset in settings (`network.allow` merges into agent mode, like pixels). */
  presetExtra?: string[];
  /** Replace the built-in agent preset entirely. */
  presetOverride?: string[];
  resolvers?: string[];
}

export function isEgressMode(value: string): value is EgressMode {
  return (EGRESS_MODES as readonly string[]).includes(value);
}

export function validateEgressMode(value: string): EgressMode {
  if (!isEgressMode(value))
    throw new ValidationError(`Unknown egress mode "${value}": use unrestricted, agent or allowlist.`, [
      { field: 'egress', message: 'use unrestricted, agent or allowlist' },
    ]);
  return value;
}

function normalizeList(entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const value = normalizeEgressEntry(entry);
    if (!out.includes(value)) out.push(value);
  }
  return out;
}

function normalizeResolvers(resolvers: readonly string[]): string[] {
  return resolvers.map((r) => {
    const entry = parseEgressEntry(r);
    if (entry.kind !== 'cidr' || !entry.single)
      throw new ValidationError(`DNS resolver "${r}" must be a single IPv4 or IPv6 address.`, [
        { field: 'resolvers', message: 'must be a single address' },
      ]);
    return entry.value;
  });
}

function presetFor(mode: EgressMode, settings: PolicySettings): string[] {
  if (mode !== 'agent') return [];
  return normalizeList([
    ...(settings.presetOverride ?? agentPresetEntries()),
    ...(settings.presetExtra ?? []),
  ]);
}

/** A validated policy for a new sandbox. */
export function buildPolicy(
  mode: EgressMode,
  allow: readonly string[] = [],
  settings: PolicySettings = {},
): EgressPolicy {
  return {
    version: 1,
    mode: validateEgressMode(mode),
    preset: presetFor(mode, settings),
    allow: normalizeList(allow),
    resolvers: normalizeResolvers(settings.resolvers ?? []),
  };
}

/** Changes the mode and keeps the sandbox's own entries (pixels re-derived them from config and lost them). */
export function withMode(
  policy: EgressPolicy,
  mode: EgressMode,
  settings: PolicySettings = {},
): EgressPolicy {
  return { ...policy, mode: validateEgressMode(mode), preset: presetFor(mode, settings) };
}

/** Adds an entry. On an unrestricted sandbox this switches to allowlist, as the pixels CLI does. */
export function withAllowed(policy: EgressPolicy, entry: string): EgressPolicy {
  const value = normalizeEgressEntry(entry);
  const mode = policy.mode === 'unrestricted' ? 'allowlist' : policy.mode;
  if (policy.allow.includes(value) || (mode === 'agent' && policy.preset.includes(value)))
    return { ...policy, mode };
  return { ...policy, mode, allow: [...policy.allow, value] };
}

/** Removes an entry from the user's list or from this sandbox's copy of the preset. */
export function withDenied(policy: EgressPolicy, entry: string): EgressPolicy {
  const value = normalizeEgressEntry(entry);
  if (!policy.allow.includes(value) && !policy.preset.includes(value))
    throw new NotFoundError(`"${value}" is not in this sandbox's allow list.`);
  return {
    ...policy,
    allow: policy.allow.filter((e) => e !== value),
    preset: policy.preset.filter((e) => e !== value),
  };
}

/** Everything allowed, deduplicated, in order (preset first). */
export function effectiveEntries(policy: EgressPolicy): string[] {
  if (policy.mode === 'unrestricted') return [];
  const all = policy.mode === 'agent' ? [...policy.preset, ...policy.allow] : [...policy.allow];
  return all.filter((e, i) => all.indexOf(e) === i);
}

/** A short label for the tree row and `network show`: "agent · 41 allowed", "allowlist · 2 allowed", "unrestricted". */
export function egressSummary(policy: EgressPolicy): string {
  if (policy.mode === 'unrestricted') return 'unrestricted';
  return `${policy.mode} · ${effectiveEntries(policy).length} allowed`;
}

/**
 * The file format: pretty JSON, one list item per line. The in-sandbox script parses it with sed, which is
 * safe because every value was validated to contain no quotes, commas, brackets or spaces.
 */
export function serializePolicy(policy: EgressPolicy): string {
  const checked = parsePolicy(JSON.stringify(policy));
  return `${JSON.stringify(checked, null, 2)}\n`;
}

/** Reads egress.json, refusing anything malformed with a specific error. */
export function parsePolicy(text: string): EgressPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(
      `The sandbox's egress policy file is not valid JSON (${(err as Error).message}).`,
    );
  }
  if (typeof raw !== 'object' || raw === null)
    throw new ValidationError('The egress policy file is not an object.');
  const obj = raw as Record<string, unknown>;
  const list = (key: string): string[] => {
    const value = obj[key] ?? [];
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
      throw new ValidationError(`The egress policy field "${key}" must be a list of strings.`);
    return value as string[];
  };
  if (obj.version !== 1)
    throw new ValidationError(`Unsupported egress policy version ${String(obj.version)}.`);
  return {
    version: 1,
    mode: validateEgressMode(String(obj.mode)),
    preset: normalizeList(list('preset')),
    allow: normalizeList(list('allow')),
    resolvers: normalizeResolvers(list('resolvers')),
  };
}
