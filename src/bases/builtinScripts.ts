// The setup scripts of the built-in bases (pixels' `mcp:bases/<x>.sh`): run as root in a provisioned sandbox.
// apt waits for the image's own first-boot apt run (unattended-upgrades) instead of failing on its lock.
import type { EmbeddedScriptName } from '../core/basesConfig';

const APT = [
  'set -eu',
  'export DEBIAN_FRONTEND=noninteractive',
  // Waits up to 10 minutes for another apt/dpkg to let go of the lock, instead of failing at once.
  'apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y "$@"; }',
].join('\n');

const DEV = `${APT}
apt_get update
apt_get install --no-install-recommends git curl wget jq vim ca-certificates build-essential
echo "dev base: $(git --version), $(gcc --version | head -1)"
`;

const PYTHON = `${APT}
apt_get update
apt_get install --no-install-recommends python3 python3-pip python3-venv pipx
echo "python base: $(python3 --version)"
`;

// NodeSource's signing key is checked against its published fingerprint before apt trusts it.
const NODE = `${APT}
NODESOURCE_FPR=6F71F525282841EEDAF851B42F59B5F99B1BE0B4
apt_get update
apt_get install --no-install-recommends ca-certificates curl gnupg
install -d -m 0755 /etc/apt/keyrings
curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key -o /tmp/nodesource.asc
gpg --batch --dearmor -o /etc/apt/keyrings/nodesource.gpg /tmp/nodesource.asc
got=$(gpg --batch --with-colons --show-keys /etc/apt/keyrings/nodesource.gpg | awk -F: '/^fpr:/ {print $10; exit}')
if [ "$got" != "$NODESOURCE_FPR" ]; then
  rm -f /etc/apt/keyrings/nodesource.gpg
  echo "NodeSource key fingerprint is $got, expected $NODESOURCE_FPR" >&2
  exit 1
fi
echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_22.x nodistro main" > /etc/apt/sources.list.d/nodesource.list
apt_get update
apt_get install nodejs
echo "node base: node $(node --version), npm $(npm --version)"
`;

/** `mcp:bases/<file>` → script text. */
export const BUILTIN_SCRIPTS: Readonly<Record<EmbeddedScriptName, string>> = {
  'dev.sh': DEV,
  'python.sh': PYTHON,
  'node.sh': NODE,
};
