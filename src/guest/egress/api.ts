// Host side of the egress policy: show, set mode, allow, deny and re-check, each as one script run in the
// sandbox (read the policy file, write it back, apply) — one round trip per operation.
import { ServerError } from '../../core/errors';
import type { EgressMode } from '../../core/sandbox';
import type { Executor } from '../executor';
import { GUEST_PATHS } from '../paths';
import { writeFileScript } from '../shell';
import {
  EGRESS_MACHINERY_MARKER,
  egressMachineryHash,
  installEgressMachinery,
  type EgressGuestOptions,
} from './guest-files';
import {
  buildPolicy,
  effectiveEntries,
  parsePolicy,
  serializePolicy,
  withAllowed,
  withDenied,
  withMode,
  type EgressPolicy,
  type PolicySettings,
} from './policy';

export interface EgressStatus {
  policy: EgressPolicy;
  /** What is allowed right now (preset + user entries for agent, user entries for allowlist). */
  effective: string[];
  /** The nftables table is loaded (restricted modes) or absent (unrestricted), as the policy says. */
  enforced: boolean;
  /** Addresses currently resolved from the allowed domains. */
  resolvedAddresses: number;
  /** The policy file was missing: the sandbox was never given one (pixels-created or unprovisioned). */
  missingPolicy: boolean;
  /** Provisioning sources allowed for now (0 once provisioning has ended). */
  provisioningSources: number;
  /** The hash of the egress machinery installed ('' if none or older than the marker). */
  machinery: string;
}

/** What a re-check found and did. */
export interface EgressRecheck extends EgressStatus {
  /** The rules were not what the policy says (or not loaded) and were applied again. */
  reapplied: boolean;
  /** The machinery came from another version of the extension and was replaced by this one's, then applied. */
  updated: boolean;
}

const BEGIN = '--- pixels-egress policy ---';
const SEPARATOR = '--- pixels-egress status ---';

// Everything before BEGIN (apply's own messages) is ignored; all on stdout, so the order holds over SSH too.
const READ = `echo ${JSON.stringify(BEGIN)}
if [ -f ${GUEST_PATHS.egressPolicy} ]; then cat ${GUEST_PATHS.egressPolicy}; fi
echo ${JSON.stringify(SEPARATOR)}
if [ -x ${GUEST_PATHS.egressScript} ]; then ${GUEST_PATHS.egressScript} status 2>&1 || true; else echo "mode=unrestricted"; echo "enforced=no"; fi
echo "machinery=$(cat ${EGRESS_MACHINERY_MARKER} 2> /dev/null)"`;

function parseStatus(output: string): EgressStatus {
  const begin = output.lastIndexOf(BEGIN);
  const at = output.lastIndexOf(SEPARATOR);
  if (begin === -1 || at < begin)
    throw new ServerError(
      `Could not read the egress policy: ${output.trim().split('\n').pop() ?? 'no output'}`,
    );
  const json = output.slice(begin + BEGIN.length, at).trim();
  const fields = new Map(
    output
      .slice(at + SEPARATOR.length)
      .split('\n')
      .map((l) => l.trim().split('=') as [string, string])
      .filter((kv) => kv.length === 2),
  );
  const policy = json ? parsePolicy(json) : buildPolicy('unrestricted');
  const enforcedNow = fields.get('enforced') === 'yes';
  return {
    policy,
    effective: effectiveEntries(policy),
    enforced: policy.mode === 'unrestricted' ? !enforcedNow : enforcedNow,
    resolvedAddresses: Number(fields.get('resolved') ?? 0),
    missingPolicy: json === '',
    provisioningSources: Number(fields.get('provisioning') ?? 0),
    machinery: fields.get('machinery') ?? '',
  };
}

async function run(exec: Executor, script: string, what: string): Promise<string> {
  const result = await exec(script, { timeoutMs: 120_000 });
  if (result.exitCode !== 0) {
    const last = result.output.trim().split('\n').slice(-3).join(' / ');
    throw new ServerError(`Could not ${what} (exit code ${result.exitCode}): ${last || 'no output'}`);
  }
  return result.output;
}

/** The sandbox's real egress state: the policy file plus whether the rules are loaded. */
export async function showEgress(exec: Executor): Promise<EgressStatus> {
  return parseStatus(await run(exec, READ, 'read the egress policy'));
}

/** Installs the machinery (idempotent), writes the policy and applies it; returns the resulting status. */
export async function applyEgress(
  exec: Executor,
  policy: EgressPolicy,
  guest: EgressGuestOptions = {},
): Promise<EgressStatus> {
  const script = `set -euo pipefail
if [ "${policy.mode}" != unrestricted ] && ! command -v nft > /dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables
fi
${installEgressMachinery(guest)}
${writeFileScript({ path: GUEST_PATHS.egressPolicy, content: serializePolicy(policy), mode: 0o644 })}
${GUEST_PATHS.egressScript} apply 2>&1
${READ}`;
  return parseStatus(await run(exec, script, 'apply the egress policy'));
}

async function update(
  exec: Executor,
  change: (current: EgressPolicy) => EgressPolicy,
  guest?: EgressGuestOptions,
) {
  const current = await showEgress(exec);
  return applyEgress(exec, change(current.policy), guest);
}

export function setEgressMode(
  exec: Executor,
  mode: EgressMode,
  settings: PolicySettings = {},
  guest?: EgressGuestOptions,
) {
  return update(exec, (p) => withMode(p, mode, settings), guest);
}

/** Allows a domain, address or CIDR at once (an unrestricted sandbox becomes allowlist, as in pixels). */
export function allowEgress(exec: Executor, entry: string, guest?: EgressGuestOptions) {
  return update(exec, (p) => withAllowed(p, entry), guest);
}

/** Removes an entry at once; its addresses leave the sets in the same step. */
export function denyEgress(exec: Executor, entry: string, guest?: EgressGuestOptions) {
  return update(exec, (p) => withDenied(p, entry), guest);
}

/**
 * After a restore or a clone: the boot unit should already have applied the policy; if the rules are not what
 * the policy says (an old checkpoint without the unit, a failed boot apply), apply them again. Machinery from
 * another version of the extension (an old checkpoint, a sandbox provisioned before an update) is replaced by
 * this one's, so its fixes reach sandboxes that already exist.
 */
export async function recheckEgress(exec: Executor, guest?: EgressGuestOptions): Promise<EgressRecheck> {
  const status = await showEgress(exec);
  if (status.missingPolicy) return { ...status, reapplied: false, updated: false };
  const updated = status.machinery !== egressMachineryHash(guest);
  if (status.enforced && !updated) {
    // Refresh the resolved addresses too: a restored sandbox may have old ones.
    if (status.policy.mode !== 'unrestricted')
      await run(exec, `${GUEST_PATHS.egressScript} refresh`, 're-resolve the allowed domains');
    return { ...(await showEgress(exec)), reapplied: false, updated: false };
  }
  return { ...(await applyEgress(exec, status.policy, guest)), reapplied: !status.enforced, updated };
}
