// The provisioning steps, generated from one place. Each step is a bash script that is safe to run again; the
// runner wraps it with a marker (/var/lib/pixels/provision/<id>.done holding the hash of the script), so a
// re-run after a failure continues where it stopped and a clone of a provisioned sandbox skips every step.
import { createHash } from 'node:crypto';
import { ValidationError } from '../../core/errors';
import { installEgressMachinery } from '../egress/guest-files';
import { serializePolicy } from '../egress/policy';
import { envScript } from '../env';
import { GUEST_PATHS, PIXEL_USER } from '../paths';
import { shq, writeFileScript } from '../shell';
import {
  DEFAULT_PACKAGES,
  DEFAULT_TOOLS,
  provisioningSources,
  resolveSources,
  validatePackage,
  validatePublicKey,
  validateTool,
  type DownloadSources,
  type ProvisionOptions,
  type ToolSpec,
} from './options';

export type StepId =
  'egress' | 'user' | 'packages' | 'ssh' | 'env' | 'mise' | 'tools' | 'close-sources' | 'setup';

export interface ProvisionStep {
  id: StepId;
  title: string;
  timeoutMs: number;
  /** The step's own bash (without the marker wrapper). */
  body: string;
  /** sha256 of the body: the marker content. A changed step runs again. */
  hash: string;
  /** The step downloads (from the provisioning sources). */
  downloads?: boolean;
  /**
   * Opens or closes the provisioning sources around the downloading steps. Both run whenever a downloading
   * step is to run (a re-run after a failure, which closed them), and neither when none is (a finished or
   * cloned sandbox): their markers do not decide.
   */
  sources?: 'open' | 'close';
}

const MINUTE = 60_000;
const DEFAULT_TIMEOUTS: Record<StepId, number> = {
  user: 1 * MINUTE,
  packages: 10 * MINUTE,
  ssh: 2 * MINUTE,
  env: 1 * MINUTE,
  mise: 5 * MINUTE,
  tools: 20 * MINUTE,
  setup: 20 * MINUTE,
  egress: 3 * MINUTE,
  'close-sources': 2 * MINUTE,
};

// Installs the packages that are missing; with nothing missing it touches no network at all.
const APT_PRELUDE = [
  'export DEBIAN_FRONTEND=noninteractive',
  'apt_install() {',
  '  local p missing=()',
  '  for p in "$@"; do',
  '    dpkg-query -W -f=\'${Status}\' "$p" 2>/dev/null | grep -q \'install ok installed\' || missing+=("$p")',
  '  done',
  '  [ ${#missing[@]} -eq 0 ] && { echo "packages already installed: $*"; return 0; }',
  '  echo "installing: ${missing[*]}"',
  '  apt-get update -q',
  '  apt-get install -y -q --no-install-recommends "${missing[@]}"',
  '}',
].join('\n');

const U = PIXEL_USER;
/** Runs a command line as pixel with a login environment. */
function asPixel(command: string): string {
  return `runuser -l ${U.name} -c ${shq(command)}`;
}

/** Default users of distribution images that hold uid 1000; provisioning renames them to pixel. */
const DEFAULT_IMAGE_USERS = ['ubuntu', 'debian'];

function userStep(): string {
  return `set -euo pipefail
if getent passwd ${U.name} > /dev/null; then
  uid=$(id -u ${U.name})
  [ "$uid" = ${U.uid} ] || { echo "user ${U.name} exists with uid $uid; Pixels needs uid ${U.uid}" >&2; exit 1; }
else
  owner=$(getent passwd ${U.uid} | cut -d: -f1 || true)
  case "$owner" in
    '')
      if ! getent group ${U.name} > /dev/null; then
        group=$(getent group ${U.gid} | cut -d: -f1 || true)
        [ -z "$group" ] || { echo "gid ${U.gid} is already taken by group $group" >&2; exit 1; }
        groupadd -g ${U.gid} ${U.name}
      fi
      useradd -m -u ${U.uid} -g ${U.gid} -s /bin/bash -d ${U.home} ${U.name}
      echo "created user ${U.name} (${U.uid}:${U.gid})"
      ;;
    ${DEFAULT_IMAGE_USERS.join('|')})
      # The image's default user holds uid ${U.uid} (Ubuntu/Debian images): it becomes ${U.name}, files and all.
      old_home=$(getent passwd "$owner" | cut -d: -f6)
      old_group=$(id -gn "$owner")
      pkill -KILL -u "$owner" 2> /dev/null || true
      usermod -l ${U.name} -d ${U.home} "$owner"
      if [ "$old_group" = "$owner" ] && ! getent group ${U.name} > /dev/null; then groupmod -n ${U.name} "$owner"; fi
      mkdir -p ${U.home}
      if [ -d "$old_home" ] && [ "$old_home" != ${U.home} ]; then
        for f in "$old_home"/.[!.]* "$old_home"/*; do
          if [ -e "$f" ] && [ ! -e "${U.home}/$(basename "$f")" ]; then cp -a "$f" ${U.home}/; fi
        done
        rm -rf "$old_home"
      fi
      echo "renamed the image's user $owner (uid ${U.uid}) to ${U.name}"
      ;;
    *)
      echo "uid ${U.uid} is already taken by user $owner; Pixels needs it for ${U.name}" >&2
      exit 1
      ;;
  esac
fi
[ "$(id -g ${U.name})" = ${U.gid} ] || { echo "user ${U.name} has primary group $(id -g ${U.name}); Pixels needs gid ${U.gid}" >&2; exit 1; }
[ "$(getent passwd ${U.name} | cut -d: -f7)" = /bin/bash ] || usermod -s /bin/bash ${U.name}
# '*': no password login, yet not "locked" (sshd refuses keys for locked accounts without PAM).
usermod -p '*' ${U.name}
install -d -m 0750 -o ${U.uid} -g ${U.gid} ${U.home}
# The home may exist already (keys pushed before first boot): give it the skeleton files it lacks.
for f in /etc/skel/.[!.]* /etc/skel/*; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  if [ ! -e "${U.home}/$b" ]; then cp -r "$f" "${U.home}/$b" && chown -R ${U.uid}:${U.gid} "${U.home}/$b"; fi
done
`;
}

/** Bash that points apt at the configured mirror (the image's sources set aside), or nothing without one. */
function aptMirrorScript(sources: DownloadSources): string {
  return sources.aptMirror
    ? `. /etc/os-release
codename=\${VERSION_CODENAME:?the image does not name its release in /etc/os-release}
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -f "$f" ] && [ "$f" != /etc/apt/sources.list.d/pixels-mirror.list ]; then mv -f "$f" "$f.pixels-disabled"; fi
done
printf 'deb %s%s %s %s\\n' ${shq(sources.aptTrusted ? '[trusted=yes] ' : '')} ${shq(sources.aptMirror)} "$codename" ${shq(sources.aptComponents ?? 'main')} > /etc/apt/sources.list.d/pixels-mirror.list
echo "apt mirror:" ${shq(sources.aptMirror)}
`
    : '';
}

function packagesStep(sources: DownloadSources, packages: string[]): string {
  return `set -euo pipefail
${APT_PRELUDE}
${aptMirrorScript(sources)}apt_install ${packages.map(shq).join(' ')}
`;
}

function sshStep(keys: string[], hostPublicKey: string | undefined, acceptEnv: string[]): string {
  const homes: Array<[string, number]> = [
    ['/root', 0],
    [U.home, U.uid],
  ];
  const appendKeys = homes
    .map(
      ([home, uid]) => `install -d -m 0700 -o ${uid} -g ${uid} ${home}/.ssh
touch ${home}/.ssh/authorized_keys && chmod 0600 ${home}/.ssh/authorized_keys && chown ${uid}:${uid} ${home}/.ssh/authorized_keys
for key in ${keys.map(shq).join(' ')}; do
  grep -qxF -- "$key" ${home}/.ssh/authorized_keys || printf '%s\\n' "$key" >> ${home}/.ssh/authorized_keys
done`,
    )
    .join('\n');
  const pinned = hostPublicKey ? hostPublicKey.split(/\s+/).slice(0, 2).join(' ') : '';
  const hostKeyCheck = pinned
    ? `installed=$(awk '{ print $1" "$2 }' /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null || true)
[ "$installed" = ${shq(pinned)} ] || { echo "the pinned host key is not installed in /etc/ssh/ssh_host_ed25519_key" >&2; exit 1; }
chmod 0600 /etc/ssh/ssh_host_ed25519_key && chown 0:0 /etc/ssh/ssh_host_ed25519_key`
    : '';
  const dropIn = [
    '# Managed by Pixels.',
    ...(pinned ? ['HostKey /etc/ssh/ssh_host_ed25519_key'] : []),
    acceptEnv.length ? `AcceptEnv ${acceptEnv.join(' ')}` : '# No session variables forwarded.',
  ].join('\n');
  return `set -euo pipefail
[ -x /usr/sbin/sshd ] || { echo "sshd is not installed (the packages step installs openssh-server)" >&2; exit 1; }
${appendKeys}
${hostKeyCheck}
${writeFileScript({ path: GUEST_PATHS.sshdDropIn, content: dropIn, mode: 0o644 })}
mkdir -p /run/sshd
/usr/sbin/sshd -t
svc=ssh
systemctl cat ssh.service > /dev/null 2>&1 || svc=sshd
systemctl enable --quiet "$svc"
if systemctl is-active --quiet "$svc"; then systemctl reload "$svc"; else systemctl start "$svc"; fi
echo "sshd ready ($svc), ${keys.length} key(s) authorised"
`;
}

function miseToml(tools: ToolSpec[]): string {
  return [
    '# Managed by Pixels: the tools of this sandbox.',
    '[tools]',
    ...tools.map((t) => `"${t.name}" = "${t.version}"`),
  ].join('\n');
}

function envAssignments(env: Record<string, string | undefined>): string {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${shq(v)}`)
    .join(' ');
}

function miseStep(sources: DownloadSources, tools: ToolSpec[]): string {
  const mise = `${U.home}/.local/bin/mise`;
  const activate = `eval "$(${mise} activate bash)"`;
  const shims = `export PATH="$HOME/.local/bin:$HOME/.local/share/mise/shims:$PATH"`;
  const env = envAssignments({ ...sources.miseEnv, MISE_INSTALL_PATH: mise });
  return `set -euo pipefail
install -d -m 0755 -o ${U.uid} -g ${U.gid} ${U.home}/.config ${U.home}/.config/mise ${U.home}/.local ${U.home}/.local/bin
${writeFileScript({ path: `${U.home}/.config/mise/config.toml`, content: miseToml(tools), mode: 0o644, uid: U.uid, gid: U.gid })}
if [ -x ${mise} ]; then
  echo "mise already installed"
else
  echo "downloading the mise installer from" ${shq(sources.miseInstallerUrl)}
  ${asPixel(`set -o pipefail; curl -fsSL --retry 2 --connect-timeout 20 ${shq(sources.miseInstallerUrl)} | env ${env} sh`)}
fi
${asPixel(`${mise} --version`)}
# Interactive shells activate mise; login shells (Remote-SSH, ssh host cmd) get the shims on PATH.
touch ${U.home}/.bashrc ${U.home}/.profile && chown ${U.uid}:${U.gid} ${U.home}/.bashrc ${U.home}/.profile
grep -qxF ${shq(activate)} ${U.home}/.bashrc || printf '%s\\n' ${shq(activate)} >> ${U.home}/.bashrc
grep -qxF ${shq(shims)} ${U.home}/.profile || printf '%s\\n' ${shq(shims)} >> ${U.home}/.profile
`;
}

function toolsStep(sources: DownloadSources, tools: ToolSpec[]): string {
  const env = envAssignments({
    ...sources.miseEnv,
    MISE_YES: '1',
    NPM_CONFIG_REGISTRY: sources.npmRegistry,
    MISE_NODE_MIRROR_URL: sources.nodeMirror,
  });
  const npmrc = sources.npmRegistry
    ? writeFileScript({
        path: `${U.home}/.npmrc`,
        content: `registry=${sources.npmRegistry}`,
        mode: 0o644,
        uid: U.uid,
        gid: U.gid,
      })
    : '';
  return `set -euo pipefail
${npmrc}
echo "installing: ${tools.map((t) => `${t.name}@${t.version}`).join(', ')}"
${asPixel(`cd ~ && env ${env} ${U.home}/.local/bin/mise install`)}
${asPixel(`cd ~ && ${U.home}/.local/bin/mise ls --current`)}
`;
}

function setupStep(content: string, runAs: 'pixel' | 'root'): string {
  const path = `${GUEST_PATHS.provisionState}/user-setup.sh`;
  const run = runAs === 'root' ? `bash ${path}` : asPixel(`bash ${path}`);
  return `set -euo pipefail
${writeFileScript({ path, content, mode: 0o755 })}
chmod 0755 ${GUEST_PATHS.provisionState}
${run}
`;
}

function installPolicy(options: ProvisionOptions): string {
  const policy = writeFileScript({
    path: GUEST_PATHS.egressPolicy,
    content: serializePolicy(options.egress),
    mode: 0o644,
  });
  return `${installEgressMachinery({ refreshSeconds: options.egressRefreshSeconds })}
# The policy is written once: a re-run or a clone keeps the sandbox's own (runtime) changes.
if [ ! -f ${GUEST_PATHS.egressPolicy} ]; then
${policy}
fi`;
}

/** Unrestricted mode: the machinery and the policy go on last (pixel must exist for its sudo rule). */
function egressStep(options: ProvisionOptions): string {
  return `set -euo pipefail
${installPolicy(options)}
${GUEST_PATHS.egressScript} apply
`;
}

/**
 * Agent/allowlist mode, the first step: the chosen policy goes on before anything is downloaded, with the
 * provisioning sources allowed by name until close-sources removes them (they also expire by themselves after
 * \`expiresSeconds\`, should provisioning die without closing them). Only an image without nftables downloads
 * first: the nftables package, from the apt sources, before any other step runs.
 */
function openSourcesStep(
  options: ProvisionOptions,
  sources: DownloadSources,
  allowed: string[],
  expiresSeconds: number,
): string {
  const P = GUEST_PATHS.egressProvisioning;
  const imageSources = sources.aptMirror
    ? ''
    : `# The image's own apt sources (no mirror configured): their hosts are provisioning sources too.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sed 's/#.*//' "$f"
done | grep -oE 'https?://[^/[:space:]]+' | sed -E 's#^https?://##; s/:[0-9]+$//; s/^\\[//; s/\\]$//' | tr 'A-Z' 'a-z' | sort -u >> "$tmp" || true
`;
  return `set -euo pipefail
${APT_PRELUDE}
if ! command -v nft > /dev/null; then
  echo "nftables is missing: installing it before the egress policy can go on"
${aptMirrorScript(sources)}  apt_install nftables
fi
${installPolicy(options)}
mkdir -p /etc/pixels
tmp=$(mktemp ${P}.XXXXXX)
echo "expires $(( $(date +%s) + ${expiresSeconds} ))" > "$tmp"
printf '%s\\n' ${allowed.map(shq).join(' ')} >> "$tmp"
${imageSources}chmod 0644 "$tmp" && mv -f "$tmp" ${P}
echo "provisioning sources allowed until provisioning ends: $(awk '$1 != "expires"' ${P} | paste -sd' ' -)"
${GUEST_PATHS.egressScript} apply
`;
}

/** Removes the provisioning sources and re-applies the policy: run as the step after the downloads, and after a failure. */
export const CLOSE_SOURCES_SCRIPT = `set -euo pipefail
rm -f ${GUEST_PATHS.egressProvisioning}
if [ -x ${GUEST_PATHS.egressScript} ]; then ${GUEST_PATHS.egressScript} apply; fi
`;

function step(
  id: StepId,
  title: string,
  body: string,
  options: ProvisionOptions,
  extra: Pick<ProvisionStep, 'downloads' | 'sources'> = {},
): ProvisionStep {
  const timeoutMs = options.timeouts?.[id] ?? DEFAULT_TIMEOUTS[id];
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1000)
    throw new ValidationError(`The timeout of step "${id}" must be at least one second.`);
  return { id, title, timeoutMs, body, hash: createHash('sha256').update(body).digest('hex'), ...extra };
}

/** The ordered step list for these options (validated; throws ValidationError before anything runs). */
export function provisionSteps(options: ProvisionOptions): ProvisionStep[] {
  const sources = resolveSources(options.sources);
  const keys = options.userPublicKeys.map(validatePublicKey);
  if (keys.length === 0)
    throw new ValidationError('Provisioning needs at least one SSH public key to authorise.');
  const hostKey = options.hostPublicKey ? validatePublicKey(options.hostPublicKey) : undefined;
  const acceptEnv = [...new Set(options.acceptEnv ?? [])].sort();
  for (const key of acceptEnv)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new ValidationError(`"${key}" is not a valid variable name.`);
  const restricted = options.egress.mode !== 'unrestricted';
  const packages = [
    ...new Set([
      ...(options.packages ?? DEFAULT_PACKAGES),
      'openssh-server',
      'sudo',
      ...(restricted ? ['nftables'] : []),
      ...(options.devtools ? ['curl', 'ca-certificates'] : []),
    ]),
  ].map(validatePackage);
  // A tool named twice (defaults plus a user's own version) keeps the last spec: TOML keys must be unique.
  const byName = new Map((options.tools ?? DEFAULT_TOOLS).map((t) => [validateTool(t).name, t]));
  const tools = [...byName.values()];
  const steps: ProvisionStep[] = [
    step('user', 'Create user pixel', userStep(), options),
    step('packages', 'Install system packages', packagesStep(sources, packages), options, {
      downloads: true,
    }),
    step('ssh', 'Set up SSH access', sshStep(keys, hostKey, acceptEnv), options),
    step('env', 'Write environment', envScript(options.environment ?? {}), options),
  ];
  if (options.devtools) {
    steps.push(step('mise', 'Install mise', miseStep(sources, tools), options, { downloads: true }));
    if (tools.length)
      steps.push(step('tools', 'Install dev tools', toolsStep(sources, tools), options, { downloads: true }));
  }
  const setup = options.setupScript?.content.trim()
    ? step(
        'setup',
        'Run setup script',
        setupStep(options.setupScript.content, options.setupScript.runAs ?? 'pixel'),
        options,
      )
    : undefined;
  if (!restricted) {
    steps.push(
      ...(setup ? [setup] : []),
      step('egress', 'Apply egress policy', egressStep(options), options),
    );
    return steps;
  }
  // Restricted: the policy first, the downloads under it, the provisioning sources closed before user code runs.
  const close = step('close-sources', 'Close the provisioning sources', CLOSE_SOURCES_SCRIPT, options, {
    sources: 'close',
  });
  const all = [...steps, close, ...(setup ? [setup] : [])];
  const expiresSeconds = Math.ceil(all.reduce((sum, s) => sum + s.timeoutMs, 0) / 1000) + 600;
  const allowed = provisioningSources(sources, options.devtools);
  const open = step(
    'egress',
    'Apply egress policy (provisioning sources allowed)',
    openSourcesStep(options, sources, allowed, expiresSeconds),
    options,
    { sources: 'open' },
  );
  return [open, ...all];
}
