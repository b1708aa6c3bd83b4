#!/usr/bin/env bash
# Bring up the lab's 3-member Incus cluster on this machine (root). Idempotent and cached: a warm run takes about a
# second, a run after every process was killed a few seconds, the first run about a minute. It never touches the
# main lab's daemon (/var/lib/incus): each member is its own incusd with its own INCUS_DIR, in a network namespace
# of its own (the approach of Incus's own test suite), joined over a private bridge.
#
#   bash test/lab/cluster-up.sh      # writes $PIXELS_CACHE_DIR/cluster.env; needs test/lab/up.sh first (image)
#
# Layout (all without NAT; nothing is forwarded between the private bridge and any other interface):
#   host bridge pxcllink0 10.80.0.1/24 --veth-- netns pxcl<N>: eth0 10.80.0.1<N>, incusd "pxm<N>" (API :8443)
#   inside each member: the cluster's managed bridge pxclnet0, 10.79.0.1/24 (the same on every member, as on real
#   hosts), handing out addresses only from the member's own block 10.79.0.<64*N>/26; this machine routes each block
#   to its member, so every sandbox's address is reachable from here and tells which member it lives on.
set -euo pipefail

CACHE=${PIXELS_CACHE_DIR:-/var/cache/pixels-dev}
MEMBERS=${CLUSTER_MEMBERS:-3}
BASE=${CLUSTER_DIR:-/var/lib/pixels-cluster}
LINK=pxcllink0
LINK_PREFIX=10.80.0
NET=pxclnet0
NET4=10.79.0.1/24
POOL=pxclbtrfs
POOL_SIZE=${CLUSTER_POOL_SIZE:-4GiB}
IMAGE=${LAB_IMAGE:-pixels-debian-12}
IMAGE_RECIPE=3 # the main lab's image recipe (test/lab/up.sh): the cluster imports the same cached tarballs
DHCP_CONF=/run/pixels-cluster/dhcp.conf
export PATH=/usr/libexec/incus:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

if [ "$(id -u)" != 0 ]; then
  command -v sudo > /dev/null || { echo "cluster-up.sh: run as root" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
LAB_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/lab/daemons.sh
. "$LAB_DIR/daemons.sh"
CACHE=$(realpath -m "$CACHE")
STATE="$CACHE/lab/cluster"
cd /
mkdir -p "$STATE" "$BASE" "$(dirname "$DHCP_CONF")"
T0=$(date +%s.%N)
exec 8> "$STATE/up.lock"
flock -w 300 8 || { echo "cluster-up.sh: another cluster-up/down has held $STATE/up.lock for 5 minutes" >&2; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
step() { echo "==> $*"; }
member() { echo "pxm$1"; }
mdir() { echo "$BASE/$(member "$1")"; }
addr() { echo "$LINK_PREFIX.1$1"; }
# incus CLI against member N's unix socket
minc() {
  local n=$1
  shift
  INCUS_DIR=$(mdir "$n") incus "$@"
}

command -v incusd > /dev/null || { echo "cluster-up.sh: Incus is not installed; run test/lab/up.sh first" >&2; exit 1; }
mountpoint -q /var/lib/lxcfs || { echo "cluster-up.sh: lxcfs is not running; run test/lab/up.sh first" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------ private bridge
if ! ip link show "$LINK" > /dev/null 2>&1; then
  step "creating the private bridge $LINK ($LINK_PREFIX.1/24)"
  ip link add "$LINK" type bridge
fi
# (Output captured, not piped into grep -q: with pipefail, grep leaving early fails the pipe with SIGPIPE.)
[[ $(ip -4 -o addr show dev "$LINK") == *"inet $LINK_PREFIX.1/24"* ]] || ip addr add "$LINK_PREFIX.1/24" dev "$LINK"
ip link set "$LINK" up

# Nothing leaves through the private bridge, and nothing from elsewhere enters it: this machine talks to the
# members and their sandboxes (its own traffic is output/input, not forwarded), the members to each other (bridged).
CONTAIN_RECIPE="pixels-cluster-contain r1 $LINK"
if [[ $(nft list table inet pixels_cluster_contain 2> /dev/null) != *"comment \"$CONTAIN_RECIPE\""* ]]; then
  step "installing host nft table pixels_cluster_contain"
  nft -f - << EOF
table inet pixels_cluster_contain
delete table inet pixels_cluster_contain
table inet pixels_cluster_contain {
  comment "$CONTAIN_RECIPE"
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "$LINK" oifname != "$LINK" counter drop
    oifname "$LINK" iifname != "$LINK" counter drop
  }
}
EOF
fi

# ------------------------------------------------------------------------------------------------ namespaces
# The per-member DHCP block is read by the member's dnsmasq from $DHCP_CONF, which each member's mount namespace
# has bound to a file of its own (the network's raw.dnsmasq is cluster-wide; the block must not be).
[ -e "$DHCP_CONF" ] || : > "$DHCP_CONF"
for n in $(seq 1 "$MEMBERS"); do
  ns="pxcl$n"
  hostif="pxcl${n}h"
  if ! ip netns pid "$ns" > /dev/null 2>&1 && [ ! -e "/run/netns/$ns" ]; then
    step "creating network namespace $ns"
    ip netns add "$ns"
  fi
  if ! ip link show "$hostif" > /dev/null 2>&1; then
    ip netns exec "$ns" ip link del eth0 2> /dev/null || true
    ip link add "$hostif" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$hostif" master "$LINK" up
  ip netns exec "$ns" sh -e -c "
    ip link set lo up
    ip link set eth0 up
    ip addr show dev eth0 | grep -q 'inet $(addr "$n")/24' || ip addr add $(addr "$n")/24 dev eth0
    ip route show default | grep -q . || ip route add default via $LINK_PREFIX.1
    sysctl -q -w net.ipv4.ip_forward=1
  "
  block="10.79.0.$((64 * n))"
  ip route replace "$block/26" via "$(addr "$n")" dev "$LINK"
  d=$(mdir "$n")
  mkdir -p "$d"
  # The block; dnsmasq also hands out the bridge-wide range below, which is a single reserved address.
  printf 'dhcp-range=%s,10.79.0.%s,255.255.255.0,5m\n' "$block" "$((64 * n + 63))" > "$d/dhcp.conf"
done

# ------------------------------------------------------------------------------------------------ daemons
start_member() {
  local n=$1 d
  d=$(mdir "$n")
  repair_if_cwd_gone "$d/incusd.pid" incusd || true
  INCUS_DIR=$d incusd waitready --timeout=1 > /dev/null 2>&1 && return 0
  step "starting incusd $(member "$n") in netns pxcl$n (INCUS_DIR=$d)"
  ulimit -n 1048576 2> /dev/null || ulimit -n "$(ulimit -Hn)"
  # In its own mount namespace: a sysfs of the member's network namespace (incusd reads its bridge there), with this
  # machine's cgroup mounts moved under it (containers need them), and the member's DHCP block bound in.
  start_daemon "$d/incusd.pid" "$d/incusd.stdout" nsenter --net="/run/netns/pxcl$n" \
    unshare --mount --propagation slave /bin/sh -e -c '
      mkdir -p "$1/sys.old"
      mount --move /sys "$1/sys.old"
      mount -t sysfs sysfs /sys
      mount --move "$1/sys.old/fs/cgroup" /sys/fs/cgroup
      umount -l "$1/sys.old"
      mount --bind "$1/dhcp.conf" "$2"
      INCUS_DIR=$1 exec /usr/libexec/incus/incusd --group incus-admin --logfile "$1/incus.log"' \
    _ "$d" "$DHCP_CONF"
}
# An existing cluster: start every member at once (a member waits for the others' database before it is ready).
for n in $(seq 1 "$MEMBERS"); do
  [ -f "$(mdir "$n")/cluster.crt" ] && start_member "$n"
done
for n in $(seq 1 "$MEMBERS"); do
  if [ -f "$(mdir "$n")/cluster.crt" ]; then
    INCUS_DIR=$(mdir "$n") incusd waitready --timeout=120 ||
      { echo "member $(member "$n") not ready; see $(mdir "$n")/incus.log" >&2; exit 1; }
  fi
done

# ------------------------------------------------------------------------------------------------ bootstrap / join
if ! minc 1 cluster list > /dev/null 2>&1; then
  start_member 1
  INCUS_DIR=$(mdir 1) incusd waitready --timeout=60
  step "bootstrapping the cluster on $(member 1)"
  minc 1 admin init --preseed << EOF
config:
  core.https_address: $(addr 1):8443
  images.auto_update_interval: "0"
storage_pools:
- name: $POOL
  driver: btrfs
  config: {size: $POOL_SIZE}
networks:
- name: $NET
  type: bridge
  config:
    ipv4.address: $NET4
    ipv4.nat: "false"
    ipv4.dhcp.ranges: 10.79.0.2-10.79.0.2
    ipv4.dhcp.expiry: 5m
    ipv6.address: none
    raw.dnsmasq: |-
      no-resolv
      dhcp-host=02:00:00:00:00:02,10.79.0.2
      conf-file=$DHCP_CONF
profiles:
- name: default
  devices:
    root: {path: /, pool: $POOL, type: disk}
    eth0: {name: eth0, network: $NET, type: nic}
cluster:
  server_name: $(member 1)
  enabled: true
EOF
fi
# A member whose daemon stopped is seen offline after this many seconds (default 20; tests wait for it).
[ "$(minc 1 config get cluster.offline_threshold)" = 11 ] || minc 1 config set cluster.offline_threshold 11
for n in $(seq 2 "$MEMBERS"); do
  minc 1 cluster show "$(member "$n")" > /dev/null 2>&1 && continue
  step "joining $(member "$n")"
  start_member "$n"
  INCUS_DIR=$(mdir "$n") incusd waitready --timeout=60
  token=$(minc 1 cluster add "$(member "$n")" --quiet)
  cert=$(sed 's/^/    /' "$(mdir 1)/cluster.crt")
  minc "$n" admin init --preseed << EOF
cluster:
  enabled: true
  server_name: $(member "$n")
  server_address: $(addr "$n"):8443
  cluster_address: $(addr 1):8443
  cluster_token: $token
  cluster_certificate: |
$cert
  member_config:
  - {entity: storage-pool, name: $POOL, key: source, value: ""}
  - {entity: storage-pool, name: $POOL, key: size, value: $POOL_SIZE}
EOF
done

# ------------------------------------------------------------------------------------------------ image
if ! minc 1 image info "$IMAGE" > /dev/null 2>&1; then
  rootfs="$CACHE/lab/image/rootfs-r$IMAGE_RECIPE.squashfs"
  meta="$CACHE/lab/image/metadata-r$IMAGE_RECIPE.tar.xz"
  [ -s "$rootfs" ] && [ -s "$meta" ] || { echo "cluster-up.sh: no cached image; run test/lab/up.sh first" >&2; exit 1; }
  step "importing image $IMAGE"
  minc 1 image import "$meta" "$rootfs" --alias "$IMAGE" > /dev/null
fi

# A member left evacuated by an interrupted test is brought back.
for n in $(seq 1 "$MEMBERS"); do
  if [[ $(minc 1 cluster show "$(member "$n")") == *$'\nstatus: Evacuated'* ]]; then
    step "restoring $(member "$n") left evacuated by an interrupted run"
    minc 1 cluster restore "$(member "$n")" --force > /dev/null
  fi
done

# ------------------------------------------------------------------------------------------------ facts
members=$(for n in $(seq 1 "$MEMBERS"); do printf '%s,' "$(member "$n")"; done)
dirs=$(for n in $(seq 1 "$MEMBERS"); do printf '%s,' "$(mdir "$n")"; done)
cat > "$CACHE/cluster.env.tmp" << EOF
CLUSTER_SOCKET=$(mdir 1)/unix.socket
CLUSTER_HTTPS_ADDRESS=$(addr 1):8443
CLUSTER_MEMBERS=${members%,}
CLUSTER_MEMBER_DIRS=${dirs%,}
CLUSTER_NETWORK=$NET
CLUSTER_NETWORK_IPV4=$NET4
CLUSTER_LINK=$LINK
CLUSTER_LINK_IPV4=$LINK_PREFIX.1/24
CLUSTER_POOL=$POOL
CLUSTER_IMAGE=$IMAGE
EOF
mv "$CACHE/cluster.env.tmp" "$CACHE/cluster.env"
chmod 644 "$CACHE/cluster.env"
echo "cluster up in $(since "$T0")s ($MEMBERS members; settings in $CACHE/cluster.env)"
