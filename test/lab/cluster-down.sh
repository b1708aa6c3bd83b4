#!/usr/bin/env bash
# Tear the lab's 3-member cluster down (test/lab/cluster-up.sh): every member's daemon and containers, the network
# namespaces, the private bridge and its host routes and nft table, and the members' INCUS_DIRs. The main lab
# (test/lab/up.sh) is not touched.
#   bash test/lab/cluster-down.sh
set -uo pipefail
CACHE=${PIXELS_CACHE_DIR:-/var/cache/pixels-dev}
MEMBERS=${CLUSTER_MEMBERS:-3}
BASE=${CLUSTER_DIR:-/var/lib/pixels-cluster}
export PATH=/usr/libexec/incus:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
if [ "$(id -u)" != 0 ]; then
  command -v sudo > /dev/null || { echo "cluster-down.sh: run as root" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
LAB_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/lab/daemons.sh
. "$LAB_DIR/daemons.sh"
STATE="$(realpath -m "$CACHE")/lab/cluster"
mkdir -p "$STATE"
cd /
exec 8> "$STATE/up.lock"
flock -w 300 8 || { echo "cluster-down.sh: cluster-up.sh has held $STATE/up.lock for 5 minutes" >&2; exit 1; }

# Containers first (they outlive a stopped daemon), through the cluster while it answers.
if INCUS_DIR=$BASE/pxm1 incusd waitready --timeout=2 > /dev/null 2>&1; then
  for i in $(INCUS_DIR=$BASE/pxm1 incus list --all-projects -f csv -c e,n | tr ',' '/'); do
    echo "deleting instance $i"
    INCUS_DIR=$BASE/pxm1 incus delete -f --project "${i%%/*}" "${i#*/}"
  done
fi
for n in $(seq 1 "$MEMBERS"); do
  d=$BASE/pxm$n
  INCUS_DIR=$d incus admin shutdown --timeout 30 > /dev/null 2>&1 || true
  stop_daemon "$d/incusd.pid" incusd
  ip route del "10.79.0.$((64 * n))/26" 2> /dev/null || true
  ip link del "pxcl${n}h" 2> /dev/null || true
  ip netns del "pxcl$n" 2> /dev/null || true
done
nft delete table inet pixels_cluster_contain 2> /dev/null || true
ip link del pxcllink0 2> /dev/null || true
rm -rf "$BASE" "$CACHE/cluster.env" /run/pixels-cluster
echo "cluster down"
