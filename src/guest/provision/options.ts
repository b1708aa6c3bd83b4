// What a sandbox gets when it is provisioned, and where every download comes from. Each location is
// configurable so tests serve fakes from a local listener and users can point at their own mirrors.
import { ValidationError } from '../../core/errors';
import type { EgressPolicy } from '../egress/policy';
import { parseEgressEntry } from '../../core/egressEntry';

export interface ToolSpec {
  /** mise tool name, with backend when needed: `node`, `npm:@openai/codex`. */
  name: string;
  /** mise version spec: `lts`, `latest`, `22`, `1.2.3`. */
  version: string;
}

/** Node LTS and the three coding agents, installed through mise. */
export const DEFAULT_TOOLS: readonly ToolSpec[] = [
  { name: 'node', version: 'lts' },
  { name: 'npm:@anthropic-ai/claude-code', version: 'latest' },
  { name: 'npm:@openai/codex', version: 'latest' },
  { name: 'npm:opencode-ai', version: 'latest' },
  // pixels installs these two with the agents; agents lean on them for searching a repository.
  { name: 'ripgrep', version: 'latest' },
  { name: 'fd', version: 'latest' },
];

export const DEFAULT_PACKAGES: readonly string[] = ['git', 'curl', 'ca-certificates', 'tmux'];

export interface DownloadSources {
  /** The mise installer script (default https://mise.run). */
  miseInstallerUrl: string;
  /** npm registry for npm: tools and later npm installs (default: npm's own). */
  npmRegistry?: string;
  /** Node.js download mirror used by mise (MISE_NODE_MIRROR_URL). */
  nodeMirror?: string;
  /** Debian/Ubuntu mirror; when set it replaces the image's apt sources. */
  aptMirror?: string;
  /** Components for the apt mirror (default `main`). */
  aptComponents?: string;
  /** Accept an unsigned apt mirror (`[trusted=yes]`): only for a local mirror you control. */
  aptTrusted?: boolean;
  /** Extra environment for the mise installer and `mise install` (e.g. MISE_VERSION, GITHUB_TOKEN is NOT for this). */
  miseEnv?: Record<string, string>;
}

export const DEFAULT_SOURCES: DownloadSources = { miseInstallerUrl: 'https://mise.run' };

export interface SetupScript {
  content: string;
  /** Run as `pixel` (default) or as root. */
  runAs?: 'pixel' | 'root';
}

export interface ProvisionOptions {
  /** Public keys (OpenSSH one-liners) appended to root's and pixel's authorized_keys. Never overwrites. */
  userPublicKeys: string[];
  /** The pinned host key's public line; the private part is placed by the SSH layer (prepareSandboxAccess). */
  hostPublicKey?: string;
  /** Variables for /etc/environment and profile.d (resolved `[env]` image variables). */
  environment?: Record<string, string>;
  /** Session variable names sshd must accept (AcceptEnv). */
  acceptEnv?: string[];
  /** Install mise and the tools (pixels `provision.devtools`). */
  devtools: boolean;
  tools?: ToolSpec[];
  /** apt packages installed when missing. */
  packages?: string[];
  sources?: Partial<DownloadSources>;
  setupScript?: SetupScript;
  /**
   * The initial egress policy. In agent/allowlist mode it goes on first, with the provisioning sources allowed
   * until the downloads are done; in unrestricted mode it is the last step.
   */
  egress: EgressPolicy;
  egressRefreshSeconds?: number;
  /** Per-step timeout overrides in ms, by step id. */
  timeouts?: Partial<Record<string, number>>;
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(message, [{ field, message }]);
}

export function validateUrl(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(field, `${field}: "${value}" is not a URL.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw invalid(field, `${field}: only http and https URLs are supported (got ${url.protocol}).`);
  if (url.username || url.password) throw invalid(field, `${field}: credentials in the URL are not allowed.`);
  return url.toString();
}

export function validateTool(tool: ToolSpec): ToolSpec {
  if (!/^[A-Za-z0-9@][A-Za-z0-9@/:._+-]*$/.test(tool.name))
    throw invalid(
      'tools',
      `Tool "${tool.name}" is not a valid mise tool name (e.g. node, npm:@openai/codex).`,
    );
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(tool.version))
    throw invalid(
      'tools',
      `Version "${tool.version}" of ${tool.name} is not a valid version (e.g. lts, latest, 22).`,
    );
  return tool;
}

export function validatePackage(name: string): string {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name))
    throw invalid('packages', `"${name}" is not a valid package name.`);
  return name;
}

export function validatePublicKey(line: string): string {
  const trimmed = line.trim();
  if (
    !/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n\r]*)?$/.test(
      trimmed,
    )
  )
    throw invalid(
      'userPublicKeys',
      'An SSH public key must be one OpenSSH line, e.g. "ssh-ed25519 AAAA... comment".',
    );
  return trimmed;
}

export function resolveSources(sources: Partial<DownloadSources> = {}): DownloadSources {
  const merged = { ...DEFAULT_SOURCES, ...sources };
  const out: DownloadSources = { miseInstallerUrl: validateUrl('miseInstallerUrl', merged.miseInstallerUrl) };
  if (merged.npmRegistry) out.npmRegistry = validateUrl('npmRegistry', merged.npmRegistry);
  if (merged.nodeMirror) out.nodeMirror = validateUrl('nodeMirror', merged.nodeMirror);
  if (merged.aptMirror) out.aptMirror = validateUrl('aptMirror', merged.aptMirror);
  if (merged.aptComponents) {
    if (!/^[a-z0-9-]+( [a-z0-9-]+)*$/.test(merged.aptComponents))
      throw invalid('aptComponents', 'aptComponents is a space-separated list such as "main universe".');
    out.aptComponents = merged.aptComponents;
  }
  if (merged.aptTrusted) {
    if (!out.aptMirror) throw invalid('aptTrusted', 'aptTrusted only applies together with aptMirror.');
    out.aptTrusted = true;
  }
  if (merged.miseEnv) {
    for (const key of Object.keys(merged.miseEnv))
      if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw invalid('miseEnv', `"${key}" is not a valid variable name.`);
    out.miseEnv = merged.miseEnv;
  }
  return out;
}

/** Where the default sources download from, beyond their own host: the mise installer fetches mise from
 * GitHub releases (or mise.jdx.dev), and `mise install` reads its version index from mise-versions.jdx.dev. */
const DEFAULT_MISE_HOSTS = [
  'mise.run',
  'mise.jdx.dev',
  'mise-versions.jdx.dev',
  'github.com',
  'api.github.com',
  'objects.githubusercontent.com',
  'release-assets.githubusercontent.com',
];
const DEFAULT_NPM_REGISTRY_HOST = 'registry.npmjs.org';
const DEFAULT_NODE_MIRROR_HOST = 'nodejs.org';

function hostEntry(field: string, url: string): string {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  try {
    return parseEgressEntry(host).value;
  } catch (err) {
    throw invalid(
      field,
      `${field}: the host "${host}" cannot be allowed by the egress policy during provisioning (${(err as Error).message}); use a fully qualified name or an address.`,
    );
  }
}

/**
 * The hosts provisioning downloads from (the apt mirror, the mise installer, the npm registry, the Node
 * mirror), as egress entries allowed by name while provisioning runs in agent/allowlist mode. Without an
 * apt mirror the image's own apt sources are read inside the sandbox and added there.
 */
export function provisioningSources(sources: DownloadSources, devtools: boolean): string[] {
  const hosts: string[] = [];
  if (sources.aptMirror) hosts.push(hostEntry('aptMirror', sources.aptMirror));
  if (devtools) {
    if (new URL(sources.miseInstallerUrl).hostname === 'mise.run') hosts.push(...DEFAULT_MISE_HOSTS);
    else hosts.push(hostEntry('miseInstallerUrl', sources.miseInstallerUrl));
    hosts.push(
      sources.npmRegistry ? hostEntry('npmRegistry', sources.npmRegistry) : DEFAULT_NPM_REGISTRY_HOST,
    );
    hosts.push(sources.nodeMirror ? hostEntry('nodeMirror', sources.nodeMirror) : DEFAULT_NODE_MIRROR_HOST);
  }
  return [...new Set(hosts)];
}
