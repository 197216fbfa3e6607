#!/usr/bin/env bash
# Stop an instance of the emulated Raspberry Pi and unmount its overlay.
#
# SIGTERM asks systemd-nspawn for a clean poweroff, which is slow under emulation; a second
# SIGTERM ends the container at once. --fast sends both right away (tests: the overlay is
# thrown away or reused, nothing needs a clean shutdown). --discard also deletes the
# instance's changes.
#
# Usage: deploy/testbed/stop.sh [--name NAME] [--fast] [--discard] [--grace SECONDS]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

name=board fast=0 discard=0 grace=20
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --fast) fast=1; shift ;;
        --discard) discard=1; shift ;;
        --grace) grace="$2"; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
need_root
dir=$(instance_dir "$name")
[ -d "$dir" ] || { log "no instance $name"; exit 0; }
exec 9>"$dir/.lock"
flock 9

wait_exit() {  # pid seconds
    local end=$(( $(date +%s) + $2 ))
    while alive "$1"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

if [ -f "$dir/nspawn.pid" ]; then
    pid=$(cat "$dir/nspawn.pid")
    if alive "$pid" && grep -q systemd-nspawn "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid"
        if [ "$fast" -eq 1 ]; then
            sleep 0.5
            kill -TERM "$pid" 2>/dev/null || true
        elif ! wait_exit "$pid" "$grace"; then
            log "no clean poweroff within ${grace}s: ending the container"
            kill -TERM "$pid" 2>/dev/null || true
        fi
        if ! wait_exit "$pid" 30; then
            log "systemd-nspawn still running: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_exit "$pid" 10 || die "cannot stop systemd-nspawn (pid $pid)"
        fi
    fi
    rm -f "$dir/nspawn.pid" "$dir/leader.pid"
fi
unmount_below "$dir/merged"
if [ "$discard" -eq 1 ]; then
    rm -rf --one-file-system "$dir"
    log "instance $name stopped and discarded"
else
    log "instance $name stopped"
fi
