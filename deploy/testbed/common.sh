# Shared settings and helpers of the emulated Raspberry Pi testbed (sourced, not run).
#
# The board is an arm64 Debian Bookworm root filesystem run by qemu-user-static through
# binfmt_misc and booted with systemd-nspawn. The root is built once and cached outside the
# repository (EDGECNN_TESTBED_CACHE); every booted instance gets its own overlay on top of it,
# so the cached root stays pristine and instances can be thrown away.

# Bump when the build recipe changes: a root with another version is rebuilt.
TESTBED_VERSION=1
TESTBED_SUITE=bookworm
TESTBED_ARCH=arm64

CACHE="${EDGECNN_TESTBED_CACHE:-/var/cache/edgecnn-testbed}"
ROOT="$CACHE/$TESTBED_SUITE-$TESTBED_ARCH"
STAMP="$ROOT/.edgecnn-testbed-stamp"
KEY="$CACHE/id_ed25519"          # the pi user's ssh key (private half stays on the host)
INSTANCES="$CACHE/instances"
BOARD_USER=pi

# The CPU qemu emulates: a Raspberry Pi 4's Cortex-A72 (cortex-a76 for a Pi 5). Not qemu's
# default "max": with it XNNPACK's int8 kernels in LiteRT 2.3 give wrong outputs (off by up
# to 151 quantisation steps against x86) under qemu 7.2; with a real Pi's CPU they are exact.
TESTBED_CPU="${EDGECNN_TESTBED_CPU:-cortex-a72}"

log() { echo "testbed: $*" >&2; }
die() { echo "testbed: error: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, mount, systemd-nspawn need it)"
}

need_tools() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found (bash scripts/ensure-tools.sh installs it)"
    done
}

# True when the cached root is complete and built by this recipe version.
root_ready() {
    [ -f "$STAMP" ] && grep -qx "version=$TESTBED_VERSION" "$STAMP"
}

# Register qemu-aarch64 in binfmt_misc with flags POCF. F: the kernel opens the interpreter
# now, so it works inside chroots and containers that do not have it; C: setuid programs
# (sudo) get their credentials from the program, not from qemu.
ensure_binfmt() {
    local dir=/proc/sys/fs/binfmt_misc entry conf line flags
    entry="$dir/qemu-aarch64"
    if [ ! -e "$dir/register" ]; then
        mount -t binfmt_misc binfmt_misc "$dir" || die "cannot mount binfmt_misc on $dir"
    fi
    if [ -e "$entry" ]; then
        flags=$(sed -n 's/^flags: //p' "$entry")
        if [[ "$flags" == *F* && "$flags" == *C* ]] && grep -qx enabled "$entry"; then
            return 0
        fi
        log "re-registering qemu-aarch64 in binfmt_misc (flags were '$flags', need F and C)"
        echo -1 > "$entry"
    fi
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -f "$conf" ] || die "$conf missing: apt-get install qemu-user-static"
    line=$(grep -v '^#' "$conf" | head -n1)
    # The last field holds the flags: replace them.
    line="${line%:*}:POCF"
    echo "$line" > "$dir/register" || die "cannot register qemu-aarch64 in binfmt_misc"
}

# The Debian mirror apt uses on this host (the only one CI can reach), else deb.debian.org.
debian_mirror() {
    local uri
    if [ -n "${EDGECNN_TESTBED_MIRROR:-}" ]; then
        echo "$EDGECNN_TESTBED_MIRROR"
        return
    fi
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' \
        | tr ' ' '\n' | grep -E '/debian/?$' | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hE '^deb[[:space:]]' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' \
            | grep -E '/debian/?$' | head -n1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# Unmount everything mounted at or below $1, deepest first.
unmount_below() {
    local target
    target=$(realpath -m "$1")
    awk -v t="$target" '$5 == t || index($5, t "/") == 1 {print $5}' /proc/self/mountinfo \
        | sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

# True while a process exists and is not a zombie (an init that is not systemd may reap late).
alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

instance_dir() {
    [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad instance name '$1'"
    echo "$INSTANCES/$1"
}

# The host pid of the container's init (pid 1 inside), or nothing.
leader_pid() {
    local dir="$1" nspawn child
    [ -f "$dir/nspawn.pid" ] || return 0
    nspawn=$(cat "$dir/nspawn.pid")
    alive "$nspawn" || return 0
    # systemd-nspawn forks the container's init directly; it is pid 1 in its own namespace.
    for child in $(pgrep -P "$nspawn" 2>/dev/null); do
        if awk '/^NSpid:/ {exit !($NF == 1)}' "/proc/$child/status" 2>/dev/null; then
            echo "$child"
            return 0
        fi
    done
}

# Units that cannot start under qemu-user: systemd 252 mounts a credentials file system for
# LoadCredential=, which fails there ("Failed to set up credentials: Invalid argument"), and
# the board would boot "degraded". The credentials they load are optional; drop them.
# Idempotent: build.sh runs it on a new root, boot.sh on every instance (older roots).
fix_container_units() {
    local root="$1" unit dir
    for unit in systemd-tmpfiles-setup systemd-tmpfiles-setup-dev systemd-tmpfiles-clean systemd-sysusers; do
        dir="$root/etc/systemd/system/$unit.service.d"
        [ -f "$dir/10-testbed-no-credentials.conf" ] && continue
        mkdir -p "$dir"
        printf '[Service]\nLoadCredential=\n' > "$dir/10-testbed-no-credentials.conf"
    done
}

# A Raspberry Pi 4 /proc/cpuinfo (Cortex-A72) with one entry per CPU of this host. Under
# qemu-user the board would see the host's x86 /proc/cpuinfo next to its sysfs CPU list, and
# the cpuinfo library inside LiteRT / XNNPACK / ruy then crashes the interpreter (SIGSEGV in
# allocate_tensors). A real Pi has an ARM /proc/cpuinfo; install_pi_cpuinfo mounts this one.
pi_cpuinfo() {
    local present first last i
    present=$(cat /sys/devices/system/cpu/present 2>/dev/null || echo 0)
    for range in ${present//,/ }; do
        first=${range%-*}
        last=${range#*-}
        for ((i = first; i <= last; i++)); do
            printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
            printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
            printf 'CPU revision\t: 3\n\n'
        done
    done
    printf 'Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000edc1edc1\n'
    printf 'Model\t\t: Raspberry Pi 4 Model B Rev 1.1 (emulated: edgecnn testbed)\n'
}

# Write the Pi cpuinfo into a root and a unit that bind-mounts it over /proc/cpuinfo early at
# boot (systemd-nspawn cannot bind a file below /proc itself). Run by boot.sh on every boot:
# the CPU count is the host's.
install_pi_cpuinfo() {
    local root="$1" unit="$1/etc/systemd/system/testbed-cpuinfo.service"
    mkdir -p "$root/etc/edgecnn-testbed" "$root/etc/systemd/system/sysinit.target.wants"
    pi_cpuinfo > "$root/etc/edgecnn-testbed/cpuinfo"
    cat > "$unit" <<'EOF'
[Unit]
Description=Raspberry Pi /proc/cpuinfo (edgecnn testbed: qemu-user shows the host's)
DefaultDependencies=no
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mount --bind -o ro /etc/edgecnn-testbed/cpuinfo /proc/cpuinfo

[Install]
WantedBy=sysinit.target
EOF
    ln -sf ../testbed-cpuinfo.service "$root/etc/systemd/system/sysinit.target.wants/testbed-cpuinfo.service"
}

# Every emulated process must get QEMU_CPU: init (nspawn --setenv), services (systemd's
# DefaultEnvironment), ssh and sudo sessions (/etc/environment through pam_env, sudo's
# env_keep), exec.sh (its env). Rewritten by boot.sh on every boot.
install_qemu_cpu() {
    local root="$1" cpu="$2"
    mkdir -p "$root/etc/systemd/system.conf.d"
    printf '[Manager]\nDefaultEnvironment=QEMU_CPU=%s\n' "$cpu" \
        > "$root/etc/systemd/system.conf.d/10-testbed-qemu-cpu.conf"
    touch "$root/etc/environment"
    sed -i '/^QEMU_CPU=/d' "$root/etc/environment"
    echo "QEMU_CPU=$cpu" >> "$root/etc/environment"
    echo 'Defaults env_keep += "QEMU_CPU"' > "$root/etc/sudoers.d/020_testbed-qemu-cpu"
    chmod 440 "$root/etc/sudoers.d/020_testbed-qemu-cpu"
}
