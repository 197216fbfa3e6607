#!/usr/bin/env bash
# Run a command inside a booted instance of the emulated Raspberry Pi (as root, or as --user),
# through nsenter into the namespaces of its init; stdin, stdout and the exit code pass through.
# Without a command: an interactive login shell.
#
# Usage: deploy/testbed/exec.sh [--name NAME] [--user USER] [--] [COMMAND...]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

name=board user=
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --user) user="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
need_root
dir=$(instance_dir "$name")
leader=$(leader_pid "$dir")
[ -n "$leader" ] || die "instance $name is not running (deploy/testbed/boot.sh --name $name)"
[ $# -gt 0 ] || set -- /bin/bash --login

home=/root
if [ -n "$user" ]; then
    home="/home/$user"
    set -- /usr/sbin/runuser -u "$user" -- "$@"
fi
cpu=$(cat "$dir/cpu" 2>/dev/null || echo "$TESTBED_CPU")
exec nsenter -t "$leader" -m -u -i -p -r -w \
    /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$home" LANG=C.UTF-8 TERM="${TERM:-dumb}" QEMU_CPU="$cpu" "$@"
