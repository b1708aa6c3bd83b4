// The `agent` preset: what an AI coding agent needs to work (AI APIs, package registries, git hosts, the tool
// installers). Shown to the user in groups and extendable in settings; a sandbox stores the entries it was given,
// so `network show` reports exactly what is enforced. Host names only: see the note after the list.

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
];
// No address ranges: a provider's front-end range (Google's 142.250.0.0/15, GitHub Pages' 185.199.108.0/22, ...)
// also serves endpoints anyone can own (storage buckets, run.app, appspot, *.github.io) — an exfiltration channel.
// Everything here is allowed by its resolved addresses only; docs/egress.md explains the trade-off.

/** The preset as one flat list, in display order. */
export function agentPresetEntries(): string[] {
  return AGENT_PRESET.flatMap((group) => group.entries);
}
