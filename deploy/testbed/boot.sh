#!/usr/bin/env bash
# Boot an instance of the emulated Raspberry Pi with systemd-nspawn and wait until systemd
# has finished starting and sshd accepts connections.
#
# Each instance is an overlay on the cached root filesystem (which stays untouched): its
# changes live in $EDGECNN_TESTBED_CACHE/instances/NAME/upper and survive a stop/boot unless
# --fresh is given. The container shares the host's network, so its sshd listens on its own
# loopback address and port. The host directory instances/NAME/share is mounted at /mnt/host
# on the board (to hand it files).
#
# The emulated CPU is a Raspberry Pi 4's Cortex-A72 ($EDGECNN_TESTBED_CPU, e.g. cortex-a76 for a
# Pi 5), and /proc/cpuinfo is a Pi 4's (see common.sh for why both matter).
#
# Usage: deploy/testbed/boot.sh [--name NAME] [--addr 127.0.0.2] [--port 2222] [--fresh]
#                               [--timeout SECONDS]
# Then:  deploy/testbed/exec.sh --name NAME -- COMMAND...      (root, via nsenter)
#        ssh -i $EDGECNN_TESTBED_CACHE/id_ed25519 -p 2222 pi@127.0.0.2
#        deploy/testbed/stop.sh --name NAME
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

name=board addr=127.0.0.2 port=2222 fresh=0 timeout=300
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --addr) addr="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --fresh) fresh=1; shift ;;
        --timeout) timeout="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$addr" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--addr must be a loopback address (127.x.y.z)"
[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"

need_root
need_tools systemd-nspawn nsenter setsid mount
ensure_binfmt
root_ready || die "no testbed root filesystem at $ROOT: run deploy/testbed/build.sh first"
dir=$(instance_dir "$name")
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

if [ -n "$(leader_pid "$dir")" ]; then
    log "instance $name is already running (nspawn pid $(cat "$dir/nspawn.pid"))"
    exit 0
fi

merged="$dir/merged"
unmount_below "$merged"
base=$(grep '^built=' "$STAMP")
if [ -f "$dir/base" ] && [ "$(cat "$dir/base")" != "$base" ]; then
    log "the root filesystem was rebuilt since instance $name was made: starting it afresh"
    fresh=1
fi
if [ "$fresh" -eq 1 ]; then
    rm -rf --one-file-system "$dir/upper" "$dir/work"
fi
mkdir -p "$dir/upper" "$dir/work" "$merged" "$dir/share"
echo "$base" > "$dir/base"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$dir/upper,workdir=$dir/work" "$merged"

fix_container_units "$merged"
install_pi_cpuinfo "$merged"
install_qemu_cpu "$merged" "$TESTBED_CPU"
echo "$TESTBED_CPU" > "$dir/cpu"
# sshd on its own loopback address and port; the pi user's key from the cache.
printf 'ListenAddress %s:%s\n' "$addr" "$port" > "$merged/etc/ssh/sshd_config.d/20-listen.conf"
install -m 600 "$KEY.pub" "$merged/home/$BOARD_USER/.ssh/authorized_keys"
chroot "$merged" /bin/chown "$BOARD_USER:$BOARD_USER" "/home/$BOARD_USER/.ssh/authorized_keys"
printf 'addr=%s\nport=%s\n' "$addr" "$port" > "$dir/ssh"

started=$(date +%s)
# --register=no --keep-unit: the host's init is not systemd, there is no machined to register with.
setsid systemd-nspawn --register=no --keep-unit --quiet --machine="edgecnn-$name" --setenv=QEMU_CPU="$TESTBED_CPU" \
    --directory="$merged" --bind="$dir/share:/mnt/host" --boot --console=pipe \
    </dev/null >"$dir/console.log" 2>&1 9>&- &
echo $! > "$dir/nspawn.pid"

deadline=$((started + timeout))
state=
while :; do
    if ! alive "$(cat "$dir/nspawn.pid")"; then
        tail -n 20 "$dir/console.log" >&2
        die "systemd-nspawn exited while booting (console: $dir/console.log)"
    fi
    leader=$(leader_pid "$dir")
    if [ -n "$leader" ]; then
        state=$(nsenter -t "$leader" -m -u -i -p -r -w /usr/bin/systemctl is-system-running 2>/dev/null || true)
        if [[ "$state" == running || "$state" == degraded ]] && (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then
            break
        fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        tail -n 20 "$dir/console.log" >&2
        die "instance $name not up after ${timeout}s (systemd: ${state:-not started}; console: $dir/console.log)"
    fi
    sleep 1
done
echo "$leader" > "$dir/leader.pid"
log "instance $name up in $(( $(date +%s) - started ))s (systemd $state, ssh $BOARD_USER@$addr -p $port)"
