#!/usr/bin/env bash
# Build the emulated Raspberry Pi: an arm64 Debian Bookworm root filesystem with python3,
# python3-venv, openssh-server, systemd, dbus and sudo, and a `pi` user that logs in with a
# key and has passwordless sudo (like Raspberry Pi OS).
#
# Built once and cached outside the repository in $EDGECNN_TESTBED_CACHE
# (default /var/cache/edgecnn-testbed): about 6 minutes and 400 MB the first time, instant
# afterwards. Idempotent and safe to run concurrently: a lock serialises builders, the root
# is assembled in a .partial directory and renamed into place only when complete (with a
# stamp naming the recipe version), and a leftover .partial from an interrupted build is
# removed first.
#
# Usage: deploy/testbed/build.sh [--rebuild]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

rebuild=0
case "${1:-}" in
    --rebuild) rebuild=1 ;;
    "") ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (usage: build.sh [--rebuild])" ;;
esac

need_root
need_tools debootstrap qemu-aarch64-static systemd-nspawn ssh-keygen flock chroot
ensure_binfmt
mkdir -p "$CACHE"

exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
fi

if root_ready && [ "$rebuild" -eq 0 ]; then
    log "root filesystem up to date: $ROOT"
    exit 0
fi

started=$(date +%s)
partial="$ROOT.partial"
if [ -e "$partial" ]; then
    log "removing an interrupted build: $partial"
    unmount_below "$partial"
    rm -rf --one-file-system "$partial"
fi
trap 'unmount_below "$partial"' EXIT

mirror=$(debian_mirror)
log "debootstrap $TESTBED_SUITE $TESTBED_ARCH from $mirror (several minutes under emulation)"
debootstrap --arch="$TESTBED_ARCH" --variant=minbase \
    --include=python3,python3-venv,python3-pip,openssh-server,sudo \
    "$TESTBED_SUITE" "$partial" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }

log "installing systemd, systemd-sysv and dbus"
cp /etc/resolv.conf "$partial/etc/resolv.conf"
mount -t proc proc "$partial/proc"
mount --rbind /dev "$partial/dev"
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$partial/usr/sbin/policy-rc.d"
chmod 755 "$partial/usr/sbin/policy-rc.d"
chroot "$partial" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus \
           libpam-systemd iproute2 procps && apt-get clean' >"$CACHE/apt.log" 2>&1 \
    || { tail -n 30 "$CACHE/apt.log" >&2; die "apt-get in the arm64 root failed (log: $CACHE/apt.log)"; }
rm -f "$partial/usr/sbin/policy-rc.d"
unmount_below "$partial"

log "configuring the board"
echo edgecnn-pi > "$partial/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tedgecnn-pi\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    > "$partial/etc/hosts"
: > "$partial/etc/machine-id"     # systemd-nspawn gives each boot a transient id
rm -f "$partial/etc/resolv.conf"
rm -rf "$partial"/var/lib/apt/lists/*

# Timers that would run apt or man-db in the background of a slow emulated board.
for unit in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$partial/etc/systemd/system/$unit"
done

fix_container_units "$partial"

# sshd: keys only. The listen address and port are written at boot (boot.sh), because the
# container shares the host's network.
cat > "$partial/etc/ssh/sshd_config.d/10-testbed.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
EOF

# The pi user: groups as on Raspberry Pi OS that matter here, passwordless sudo.
chroot "$partial" /usr/sbin/useradd --create-home --shell /bin/bash --groups sudo,video "$BOARD_USER"
echo "$BOARD_USER ALL=(ALL) NOPASSWD: ALL" > "$partial/etc/sudoers.d/010_pi-nopasswd"
chmod 440 "$partial/etc/sudoers.d/010_pi-nopasswd"
if [ ! -f "$KEY" ]; then
    ssh-keygen -q -t ed25519 -N '' -C "edgecnn-testbed" -f "$KEY"
fi
install -d -m 700 "$partial/home/$BOARD_USER/.ssh"
install -m 600 "$KEY.pub" "$partial/home/$BOARD_USER/.ssh/authorized_keys"
chroot "$partial" /bin/chown -R "$BOARD_USER:$BOARD_USER" "/home/$BOARD_USER/.ssh"

python_version=$(chroot "$partial" /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
elapsed=$(( $(date +%s) - started ))
{
    echo "version=$TESTBED_VERSION"
    echo "suite=$TESTBED_SUITE"
    echo "arch=$TESTBED_ARCH"
    echo "python=$python_version"
    echo "mirror=$mirror"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "build_seconds=$elapsed"
} > "$partial/.edgecnn-testbed-stamp"

if [ -e "$ROOT" ]; then
    log "replacing the old root filesystem"
    unmount_below "$ROOT"
    rm -rf --one-file-system "$ROOT"
fi
mv "$partial" "$ROOT"
trap - EXIT
log "built $ROOT in ${elapsed}s ($(du -sh "$ROOT" | cut -f1), python $python_version)"
