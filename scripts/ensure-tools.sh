#!/usr/bin/env bash
# Install the system tools the test suite needs, when missing (apt-get; CI runs as root).
# Under CI (CI=true) a tool that cannot be installed is a failure, never a silent skip.
set -euo pipefail

# command -> Debian package. Later parts of the suite add their tools here
# (mosquitto, openssh-server, qemu-user-static, chromium, ...).
declare -A TOOLS=(
    [mosquitto]=mosquitto
    [mosquitto_sub]=mosquitto-clients
    [chromium]=chromium
    [openssl]=openssl
    [mosquitto_passwd]=mosquitto
    [systemd-analyze]=systemd
    # the emulated Raspberry Pi (deploy/testbed): qemu-user + binfmt_misc, debootstrap, nspawn
    [qemu-aarch64-static]=qemu-user-static
    [debootstrap]=debootstrap
    [systemd-nspawn]=systemd-container
    [ssh]=openssh-client
    [ssh-keygen]=openssh-client
)

missing=()
for cmd in "${!TOOLS[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${TOOLS[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-tools: missing ${missing[*]} and not root; install them with apt-get" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
echo "ensure-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
