#!/usr/bin/env bash
# Bring the Pixels Incus lab up on a Debian 12 machine (run as root). Idempotent: each step checks its result first,
# so a second run on a live lab takes about a second, and after all processes were killed (CI) a few seconds.
#
#   bash test/lab/up.sh            # writes $PIXELS_CACHE_DIR/lab.env (default /var/cache/pixels-dev/lab.env)
#
# What it sets up:
#   - Incus 6.0 LTS (incus-base from bookworm-backports), lxcfs + incusd started by hand when PID 1 is not systemd
#   - storage pools: btrfs on a loop file (fast CoW snapshots) and dir
#   - managed bridge with IPv4 + IPv6 and NO NAT, plus a host nft table that drops anything forwarded between the
#     bridge and any other interface: container traffic never leaves this machine
#   - a second managed bridge standing in for a NAS's automatic (NAT'd) Incus bridge, also without NAT and
#     contained: only processes of the local user $NAS_USER (an sshd session standing in for the NAS) may open TCP
#     connections to it, so sandboxes there are reachable only through a jump host, as from a laptop
#   - the HTTPS API on loopback only (127.0.0.1:8443) and a single-member cluster (LAB_CLUSTER=0 to skip)
#   - a Debian bookworm image built locally with debootstrap, cached as tarballs in $PIXELS_CACHE_DIR/lab/image
set -euo pipefail

CACHE=${PIXELS_CACHE_DIR:-/var/cache/pixels-dev}
STATE="$CACHE/lab"
BRIDGE=${LAB_BRIDGE:-pxlabbr0}
BR4=${LAB_BRIDGE_IPV4:-10.77.0.1/24}
BR6=${LAB_BRIDGE_IPV6:-fd42:7078:6c61::1/64}
# The "automatic bridge" of a stock NAS (NAT'd there, not here): the test client cannot reach it, the NAS can.
NATBR=${LAB_NAT_BRIDGE:-pxnatbr0}
NATBR4=${LAB_NAT_BRIDGE_IPV4:-10.78.0.1/24}
NATBR6=${LAB_NAT_BRIDGE_IPV6:-fd42:7078:6c62::1/64}
# The local user standing in for the NAS's SSH user: the only one whose connections reach the automatic bridge.
NAS_USER=${LAB_NAS_USER:-pxnas}
DHCP_EXPIRY=${LAB_DHCP_EXPIRY:-5m}
POOL_BTRFS=${LAB_POOL_BTRFS:-pxbtrfs}
POOL_DIR=${LAB_POOL_DIR:-pxdir}
BTRFS_SIZE=${LAB_BTRFS_SIZE:-12GiB}
IMAGE=${LAB_IMAGE:-pixels-debian-12}
HTTPS_ADDR=${LAB_HTTPS_ADDRESS:-127.0.0.1:8443}
CLUSTER=${LAB_CLUSTER:-1}
MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
# Bump when the image recipe below changes: the cached tarballs are keyed by it.
IMAGE_RECIPE=4
SOCKET=/var/lib/incus/unix.socket
export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/libexec/incus:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

if [ "$(id -u)" != 0 ]; then
  # It installs packages and starts daemons: root, through sudo when that is there.
  command -v sudo > /dev/null || { echo "up.sh: run as root" >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi
LAB_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/lab/daemons.sh
. "$LAB_DIR/daemons.sh"
CACHE=$(realpath -m "$CACHE")
STATE="$CACHE/lab"
# Nothing started below may keep the folder of the clone that ran this script: it may be deleted later.
cd /
mkdir -p "$STATE"
T0=$(date +%s.%N)
# One run at a time: two incusd started at once fight over the database (and the second dies). The daemons
# started below must not inherit the lock's fd (8>&-), or they would hold the lock for as long as they live.
exec 8> "$STATE/up.lock"
flock -w 300 8 || { echo "up.sh: another up.sh/down.sh has held $STATE/up.lock for 5 minutes" >&2; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
step() { echo "==> $*"; }
apt_get() { flock /tmp/pixels-apt.lock apt-get -q -o DPkg::Lock::Timeout=900 "$@"; }

# ------------------------------------------------------------------------------------------------ packages
PKGS=(incus-base incus-client lxcfs dnsmasq-base btrfs-progs debootstrap squashfs-tools xz-utils nftables
  openssh-client openssl curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb $MIRROR bookworm-backports main" > /etc/apt/sources.list.d/pixels-bookworm-backports.list
  fi
  apt_get update > "$STATE/apt-update.log" 2>&1 || { tail -20 "$STATE/apt-update.log"; exit 1; }
  # --no-install-recommends: the full 'incus' package would pull qemu for VMs (no /dev/kvm here anyway)
  apt_get install -y -t bookworm-backports --no-install-recommends "${missing[@]}" > "$STATE/apt.log" 2>&1 ||
    { tail -20 "$STATE/apt.log"; exit 1; }
fi

# ------------------------------------------------------------------------------------------------ daemons
if [ "$(ps -p 1 -o comm=)" = systemd ]; then
  systemctl enable --now lxcfs.service incus.socket incus.service >/dev/null
else
  # After every process was killed from outside, lxcfs leaves a dead FUSE mount
  # ("Transport endpoint is not connected"); it must go before lxcfs can mount again.
  if ! stat /var/lib/lxcfs >/dev/null 2>&1; then
    step "removing the dead lxcfs mount"
    fusermount -u /var/lib/lxcfs 2>/dev/null || umount -l /var/lib/lxcfs 2>/dev/null || true
  fi
  mkdir -p /var/lib/lxcfs /var/log/incus
  chown root:incus-admin /var/log/incus
  # lxcfs serves /proc files to running containers: restarting it under them breaks those, so it is repaired
  # only when no container runs (a deleted folder does not hurt lxcfs itself, which runs no tools).
  if [ -z "$(ls /run/incus 2> /dev/null)" ] && repair_if_cwd_gone "$STATE/lxcfs.pid" lxcfs; then
    fusermount -u /var/lib/lxcfs 2> /dev/null || umount -l /var/lib/lxcfs 2> /dev/null || true
  fi
  if ! mountpoint -q /var/lib/lxcfs; then
    step "starting lxcfs"
    start_daemon "$STATE/lxcfs.pid" "$STATE/lxcfs.log" /usr/bin/lxcfs /var/lib/lxcfs
    for _ in $(seq 1 50); do mountpoint -q /var/lib/lxcfs && break; sleep 0.1; done
    mountpoint -q /var/lib/lxcfs || { echo "lxcfs did not mount; see $STATE/lxcfs.log" >&2; exit 1; }
  fi
  # An incusd started from a folder that was deleted since (an old clone) cannot run rsync: restart it from /.
  # Its containers keep running (as when incusd was killed) and it takes them back when it starts.
  repair_if_cwd_gone "$STATE/incusd.pid" incusd || true
  if ! incusd waitready --timeout=1 > /dev/null 2>&1; then
    step "starting incusd"
    # The hard fd limit may be below what incusd asks for in a sandbox; take what we can get.
    ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    start_daemon "$STATE/incusd.pid" "$STATE/incusd.stdout" \
      /usr/libexec/incus/incusd --group incus-admin --logfile /var/log/incus/incus.log
  fi
fi
incusd waitready --timeout=120 || { echo "incusd not ready; see /var/log/incus/incus.log" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------ server config
[ "$(incus config get images.auto_update_interval)" = 0 ] || incus config set images.auto_update_interval 0
# HTTPS API for the client-certificate tests; loopback only.
[ "$(incus config get core.https_address)" = "$HTTPS_ADDR" ] || incus config set core.https_address "$HTTPS_ADDR"
# ------------------------------------------------------------------------------------------------ storage
if ! incus storage show "$POOL_DIR" > /dev/null 2>&1; then
  step "creating dir pool $POOL_DIR"
  incus storage create "$POOL_DIR" dir > /dev/null
fi
if ! incus storage show "$POOL_BTRFS" > /dev/null 2>&1; then
  step "creating btrfs pool $POOL_BTRFS (loop file, $BTRFS_SIZE)"
  incus storage create "$POOL_BTRFS" btrfs size="$BTRFS_SIZE" > /dev/null
fi

# btrfs quotas (qgroups) let Incus report how much space each snapshot holds (checkpoint sizes in the tree).
POOL_MNT=/var/lib/incus/storage-pools/$POOL_BTRFS
if mountpoint -q "$POOL_MNT" && ! btrfs qgroup show "$POOL_MNT" > /dev/null 2>&1; then
  btrfs quota enable "$POOL_MNT"
fi

# ------------------------------------------------------------------------------------------------ network
clustered() { incus query /1.0 | grep -q '"server_clustered": true'; }
# Creates a managed bridge without NAT (on a cluster, the member's pending definition comes first).
make_bridge() {
  local name=$1 v4=$2 v6=$3
  incus network show "$name" > /dev/null 2>&1 && return 0
  step "creating bridge $name ($v4, $v6), no NAT"
  if clustered; then
    for member in $(incus cluster list -f csv -c n); do incus network create "$name" --target "$member" > /dev/null; done
  fi
  incus network create "$name" ipv4.address="$v4" ipv4.nat=false ipv6.address="$v6" ipv6.nat=false \
    ipv6.dhcp.stateful=true raw.dnsmasq=no-resolv > /dev/null
}
make_bridge "$BRIDGE" "$BR4" "$BR6"
make_bridge "$NATBR" "$NATBR4" "$NATBR6"
for br in "$BRIDGE" "$NATBR"; do
  # Whatever was there before: NAT stays off. (no-resolv: dnsmasq answers local names only, forwards nothing.)
  for k in ipv4.nat ipv6.nat; do
    [ "$(incus network get "$br" "$k")" = false ] || incus network set "$br" "$k" false
  done
  # Deleted instances keep their DHCP lease until it expires: with tests making hundreds of containers an hour,
  # the default 1 h leases would exhaust the /24. Short leases keep addresses flowing.
  for k in ipv4.dhcp.expiry ipv6.dhcp.expiry; do
    [ "$(incus network get "$br" "$k")" = "$DHCP_EXPIRY" ] || incus network set "$br" "$k" "$DHCP_EXPIRY"
  done
done

# The host-guard suite attaches an ACL to the bridge and takes it off again; a run killed in between would
# leave it on, and the other suites reach the bridge's private address. Start from a bridge without ACLs.
if [ -n "$(incus network get "$BRIDGE" security.acls)" ]; then
  step "removing ACLs left on $BRIDGE by an interrupted run"
  incus network unset "$BRIDGE" security.acls
  for k in security.acls.default.egress.action security.acls.default.ingress.action user.pixels.guard-defaults; do
    incus network unset "$BRIDGE" "$k" 2> /dev/null || true
  done
fi

# The NAS's SSH user: a system user with a shell and no password (sshd without PAM refuses a locked "!" account).
if ! id -u "$NAS_USER" > /dev/null 2>&1; then
  step "creating local user $NAS_USER (the NAS's SSH user in jump-host tests)"
  useradd --system --create-home --home-dir "/var/lib/$NAS_USER" --shell /bin/sh "$NAS_USER"
fi
[ "$(getent shadow "$NAS_USER" | cut -d: -f2)" = '*' ] || usermod -p '*' "$NAS_USER"
NAS_UID=$(id -u "$NAS_USER")

# Keep the bridges' traffic on this machine: nothing is forwarded between a bridge and any other interface
# (containers reach the host itself and their own bridge's neighbours; that is all the tests need).
# The automatic bridge is also closed to this machine's own new TCP connections, except those of $NAS_USER's
# processes (an sshd session forwarding for a jump): that is what a laptop sees of a NAS's NAT'd bridge. DHCP,
# DNS and router advertisements (UDP/ICMP) are untouched. The table is rewritten when its recipe changes.
CONTAIN_RECIPE="pixels-lab-contain r2 $BRIDGE $NATBR uid=$NAS_UID"
if ! nft list table inet pixels_lab_contain 2> /dev/null | grep -qF "comment \"$CONTAIN_RECIPE\""; then
  step "installing host nft table pixels_lab_contain"
  nft -f - << EOF
table inet pixels_lab_contain
delete table inet pixels_lab_contain
table inet pixels_lab_contain {
  comment "$CONTAIN_RECIPE"
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "$BRIDGE" oifname != "$BRIDGE" counter drop
    oifname "$BRIDGE" iifname != "$BRIDGE" counter drop
    iifname "$NATBR" oifname != "$NATBR" counter drop
    oifname "$NATBR" iifname != "$NATBR" counter drop
  }
  chain output {
    type filter hook output priority filter - 10; policy accept;
    oifname "$NATBR" meta l4proto tcp ct state new meta skuid != $NAS_UID counter reject with icmpx admin-prohibited
  }
}
EOF
fi

# The default profile gets a root disk and a NIC so that plain `incus create IMAGE name` works.
if ! incus profile device get default root pool > /dev/null 2>&1; then
  incus profile device add default root disk path=/ pool="$POOL_BTRFS" > /dev/null
fi
if ! incus profile device get default eth0 network > /dev/null 2>&1; then
  incus profile device add default eth0 nic name=eth0 network="$BRIDGE" > /dev/null
fi

# ------------------------------------------------------------------------------------------------ cluster
# Enabled after pools and bridge exist: clustering converts them (creating them later needs per-member steps).
if [ "$CLUSTER" = 1 ] && [ "$(incus query /1.0 | grep -c '"server_clustered": true')" = 0 ]; then
  step "enabling clustering (single member 'lab1')"
  incus cluster enable lab1 > /dev/null
fi

# ------------------------------------------------------------------------------------------------ image
IMG_DIR="$STATE/image"
ROOTFS_TAR="$IMG_DIR/rootfs-r$IMAGE_RECIPE.squashfs"
META_TAR="$IMG_DIR/metadata-r$IMAGE_RECIPE.tar.xz"
build_image() {
  local t r m
  t=$(date +%s.%N)
  r="$IMG_DIR/rootfs"
  rm -rf "$r"
  mkdir -p "$IMG_DIR"
  step "building the image with debootstrap (a few minutes; log: $IMG_DIR/debootstrap.log)"
  # udev is required: with /sys writable, systemd-networkd waits for udev and never configures eth0 without it.
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,udev,dbus,openssh-server,sudo,curl,ca-certificates,nftables,iproute2,iputils-ping,netcat-openbsd,less,tmux,git \
    bookworm "$r" "$MIRROR" > "$IMG_DIR/debootstrap.log" 2>&1 || { tail -20 "$IMG_DIR/debootstrap.log"; exit 1; }
  # DHCPv4 + router advertisements / DHCPv6 from the bridge's dnsmasq.
  printf '[Match]\nName=eth0\n\n[Network]\nDHCP=yes\nIPv6AcceptRA=yes\n' > "$r/etc/systemd/network/10-eth0.network"
  cat > "$r/etc/systemd/system/ssh-hostkeys.service" << 'EOF'
[Unit]
Description=Generate SSH host keys when none were provided
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
EOF
  chroot "$r" systemctl enable -q systemd-networkd ssh ssh-hostkeys.service
  chroot "$r" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service 2> /dev/null || true
  # No resolved in the image: point DNS at the bridge's dnsmasq (it also resolves <name>.incus).
  printf 'nameserver %s\n' "${BR4%/*}" > "$r/etc/resolv.conf"
  rm -f "$r"/etc/ssh/ssh_host_*                                        # per instance
  : > "$r/etc/machine-id"; rm -f "$r/var/lib/dbus/machine-id"          # per instance (systemd fills it on boot)
  echo "deb $MIRROR bookworm main" > "$r/etc/apt/sources.list"
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin
  # mksquashfs warns about posix_acl xattrs it cannot store; harmless.
  mksquashfs "$r" "$ROOTFS_TAR.tmp" -comp zstd -noappend -quiet -no-progress 2>&1 | grep -v posix_acl || true
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  m="$IMG_DIR/meta"
  rm -rf "$m"; mkdir -p "$m/templates"
  cat > "$m/metadata.yaml" << EOF
architecture: x86_64
creation_date: $(date +%s)
properties:
  os: debian
  release: bookworm
  variant: pixels-lab
  recipe: "$IMAGE_RECIPE"
  architecture: amd64
  description: Debian 12 (bookworm) Pixels lab image
templates:
  /etc/hostname: {when: [create, copy], template: hostname.tpl}
  /etc/hosts: {when: [create, copy], template: hosts.tpl}
EOF
  printf '{{ instance.name }}\n' > "$m/templates/hostname.tpl"
  printf '127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n::1 localhost ip6-localhost ip6-loopback\n' \
    > "$m/templates/hosts.tpl"
  tar -C "$m" -cJf "$META_TAR" metadata.yaml templates
  rm -rf "$r" "$m"
  echo "    image built in $(since "$t")s"
}
# An image of an older recipe is replaced (instances made from it keep their own copy); the new one is built
# first, so the alias is missing only for the moment of the swap.
if ! incus image info "$IMAGE" 2> /dev/null | grep -qx "    recipe: $IMAGE_RECIPE"; then
  [ -s "$ROOTFS_TAR" ] && [ -s "$META_TAR" ] || build_image
  if incus image info "$IMAGE" > /dev/null 2>&1; then
    step "replacing image $IMAGE (older recipe)"
    incus image delete "$IMAGE"
  fi
  step "importing image $IMAGE"
  incus image import "$META_TAR" "$ROOTFS_TAR" --alias "$IMAGE" > /dev/null
fi

# ------------------------------------------------------------------------------------------------ facts
cat > "$CACHE/lab.env.tmp" << EOF
INCUS_SOCKET=$SOCKET
INCUS_HTTPS_ADDRESS=$HTTPS_ADDR
LAB_BRIDGE=$BRIDGE
LAB_BRIDGE_IPV4=$BR4
LAB_BRIDGE_IPV6=$BR6
LAB_NAT_BRIDGE=$NATBR
LAB_NAT_BRIDGE_IPV4=$NATBR4
LAB_NAT_BRIDGE_IPV6=$NATBR6
LAB_NAS_USER=$NAS_USER
LAB_IMAGE=$IMAGE
LAB_POOL_BTRFS=$POOL_BTRFS
LAB_POOL_DIR=$POOL_DIR
LAB_CLUSTERED=$([ "$(incus query /1.0 | grep -c '"server_clustered": true')" = 1 ] && echo 1 || echo 0)
EOF
mv "$CACHE/lab.env.tmp" "$CACHE/lab.env"
chmod 644 "$CACHE/lab.env"
# The variables are for the tests (test/lab/lab.ts reads the file); printing them read like an error to newcomers.
echo "lab up in $(since "$T0")s (settings in $CACHE/lab.env)"
