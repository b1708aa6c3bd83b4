#!/usr/bin/env bash
# Tear the Pixels Incus lab down: instances, image, network, pools, the host nft table, incusd and lxcfs, and
# /var/lib/incus itself (the lab is a one-member cluster; a clean slate is simpler than undoing that).
# Installed packages, the local user pxnas (LAB_NAS_USER) and the cached image tarballs in
# $PIXELS_CACHE_DIR/lab/image stay, so up.sh is quick again.
#   bash test/lab/down.sh            # KEEP_IMAGE_CACHE=0 also drops the cached image tarballs
set -uo pipefail
CACHE=${PIXELS_CACHE_DIR:-/var/cache/pixels-dev}
STATE="$CACHE/lab"
export PATH=/usr/libexec/incus:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
if [ "$(id -u)" != 0 ]; then
  command -v sudo > /dev/null || { echo "down.sh: run as root" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
[ -f "$CACHE/lab.env" ] && . "$CACHE/lab.env"
mkdir -p "$STATE"
exec 8> "$STATE/up.lock"
flock -w 300 8 || { echo "down.sh: up.sh has held $STATE/up.lock for 5 minutes" >&2; exit 1; }

if command -v incusd > /dev/null && incusd waitready --timeout=2 > /dev/null 2>&1; then
  # Every project's instances (the simulator's Incus engine uses projects of its own), then the projects.
  for p in $(incus project list -f csv -c n | sed 's/ (current)$//'); do
    for i in $(incus list --project "$p" -f csv -c n); do
      echo "deleting instance $p/$i"
      incus delete -f --project "$p" "$i"
    done
    [ "$p" = default ] || incus project delete "$p"
  done
  incus image list -f csv -c f | while read -r f; do incus image delete "$f"; done
  incus profile device remove default eth0 > /dev/null 2>&1
  incus profile device remove default root > /dev/null 2>&1
  [ -n "${LAB_BRIDGE:-}" ] && incus network delete "$LAB_BRIDGE" 2> /dev/null
  [ -n "${LAB_NAT_BRIDGE:-}" ] && incus network delete "$LAB_NAT_BRIDGE" 2> /dev/null
  for p in ${LAB_POOL_BTRFS:-} ${LAB_POOL_DIR:-}; do incus storage delete "$p" 2> /dev/null; done
  echo "stopping incusd"
  incus admin shutdown --timeout 60 2> /dev/null || true
fi
# Whatever is still running from up.sh (by the pids it recorded, never by name).
for f in "$STATE/incusd.pid" "$STATE/lxcfs.pid"; do
  if [ -f "$f" ]; then
    pid=$(cat "$f")
    kill "$pid" 2> /dev/null && for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    rm -f "$f"
  fi
done
fusermount -u /var/lib/lxcfs 2> /dev/null || umount -l /var/lib/lxcfs 2> /dev/null || true
nft delete table inet pixels_lab_contain 2> /dev/null || true
nft delete table inet incus 2> /dev/null || true # incusd's own rules for the deleted bridge
ip link del "${LAB_BRIDGE:-pxlabbr0}" 2> /dev/null || true
ip link del "${LAB_NAT_BRIDGE:-pxnatbr0}" 2> /dev/null || true
for m in /var/lib/incus/storage-pools/* /var/lib/incus/guestapi /var/lib/incus/shmounts; do
  mountpoint -q "$m" 2> /dev/null && umount -l "$m"
done
for img in /var/lib/incus/disks/*.img; do
  [ -e "$img" ] || continue
  losetup -j "$img" | cut -d: -f1 | while read -r dev; do losetup -d "$dev"; done
done
rm -rf /var/lib/incus
mkdir -p /var/lib/incus
[ "${KEEP_IMAGE_CACHE:-1}" = 0 ] && rm -rf "$STATE/image"
rm -f "$CACHE/lab.env"
echo "lab down"
