// The `agent` preset: what an AI coding agent needs to work (AI APIs, package registries, git hosts, the tool
// installers). Shown to the user in groups and extendable in settings; a sandbox stores the entries it was given,
// so `network show` reports exactly what is enforced. Superset of the pixels CLI's built-in `[agent]` preset.

export interface PresetGroup {
  label: string;
  entries: string[];
}

export const AGENT_PRESET: readonly PresetGroup[] = [
  {
    label: 'AI APIs',
    entries: [
      'api.anthropic.com',
      'statsig.anthropic.com',
      'console.anthropic.com',
      'claude.ai',
      'api.openai.com',
      'auth.openai.com',
      'chatgpt.com',
      'generativelanguage.googleapis.com',
      'opencode.ai',
      'models.dev',
    ],
  },
  {
    label: 'Package registries',
    entries: [
      'registry.npmjs.org',
      'pypi.org',
      'files.pythonhosted.org',
      'crates.io',
      'static.crates.io',
      'index.crates.io',
      'proxy.golang.org',
      'sum.golang.org',
    ],
  },
  {
    label: 'Git hosts',
    entries: [
      'github.com',
      'api.github.com',
      'codeload.github.com',
      'objects.githubusercontent.com',
      'raw.githubusercontent.com',
      'release-assets.githubusercontent.com',
      'github-releases.githubusercontent.com',
      'gitlab.com',
    ],
  },
  {
    label: 'Tool installers',
    entries: ['mise.run', 'mise.jdx.dev', 'mise-versions.jdx.dev', 'nodejs.org', 'tuf-repo-cdn.sigstore.dev'],
  },
  {
    label: 'OS package mirrors',
    entries: [
      'deb.debian.org',
      'security.debian.org',
      'archive.ubuntu.com',
      'security.ubuntu.com',
      'ports.ubuntu.com',
    ],
  },
  {
    // CDNs whose addresses rotate faster than a periodic re-resolution can follow.
    label: 'CDN ranges (Google, GitHub)',
    entries: ['142.250.0.0/15', '172.217.0.0/16', '216.58.192.0/19', '185.199.108.0/22'],
  },
];

/** The preset as one flat list, in display order. */
export function agentPresetEntries(): string[] {
  return AGENT_PRESET.flatMap((group) => group.entries);
}
