// The egress choices of the create flow, in the order shown: the effective default (settings, PIXELS_*, the pixels
// TOML, else `agent`) first and preselected, marked as the default, so pressing Enter never loosens it.
import type { EgressMode } from './sandbox';

export interface EgressChoice {
  label: EgressMode;
  description: string;
  value: EgressMode;
}

const CHOICES: readonly EgressChoice[] = [
  {
    label: 'agent',
    description: 'AI APIs, package registries, git hosts and tool installers only',
    value: 'agent',
  },
  { label: 'allowlist', description: 'Only the domains and addresses you allow', value: 'allowlist' },
  {
    label: 'unrestricted',
    description: 'No restrictions: the sandbox reaches everything',
    value: 'unrestricted',
  },
];

export function egressChoices(effectiveDefault: EgressMode): EgressChoice[] {
  const first = CHOICES.find((c) => c.value === effectiveDefault);
  const rest = CHOICES.filter((c) => c.value !== effectiveDefault);
  return [
    ...(first ? [{ ...first, description: `${first.description} (default)` }] : []),
    ...rest.map((c) => ({ ...c })),
  ];
}
