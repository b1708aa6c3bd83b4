// A fake mise installer, served by the test "internet": like the real one it installs a `mise` binary at
// $MISE_INSTALL_PATH; the stand-in's `install` fetches each tool from the configured mirrors (npm registry,
// Node mirror), so the test sees that provisioning passed the download locations through.
export const FAKE_MISE_INSTALLER = `#!/bin/sh
set -eu
: "\${MISE_INSTALL_PATH:?the installer needs MISE_INSTALL_PATH}"
mkdir -p "$(dirname "$MISE_INSTALL_PATH")"
cat > "$MISE_INSTALL_PATH" << 'FAKE'
#!/bin/bash
set -euo pipefail
state=$HOME/.local/share/mise/installed
case "\${1:-}" in
  --version) echo "2099.1.0 linux-x64 (fake)" ;;
  activate) echo 'export PATH="$HOME/.local/share/mise/shims:$PATH"' ;;
  install)
    mkdir -p "$(dirname "$state")"
    : > "$state"
    sed -n 's/^"\\([^"]*\\)" = "\\([^"]*\\)"$/\\1 \\2/p' "$HOME/.config/mise/config.toml" | while read -r name version; do
      case "$name" in
        node) url="\${MISE_NODE_MIRROR_URL:?no node mirror}/index.json" ;;
        npm:*) url="\${NPM_CONFIG_REGISTRY:?no npm registry}/\${name#npm:}" ;;
        ripgrep | fd) url="" ;; # binary releases from GitHub, which this lab cannot serve: recorded, not fetched
        *) echo "fake mise: unknown tool $name" >&2; exit 1 ;;
      esac
      if [ -n "$url" ]; then echo "fetching $url"; fi
      if [ -n "$url" ]; then curl -fsS --max-time 10 "$url" > /dev/null; fi
      echo "$name $version" >> "$state"
    done ;;
  ls) cat "$state" ;;
  *) echo "fake mise: unsupported command $*" >&2; exit 2 ;;
esac
FAKE
chmod 0755 "$MISE_INSTALL_PATH"
echo "fake mise installed at $MISE_INSTALL_PATH"
`;
