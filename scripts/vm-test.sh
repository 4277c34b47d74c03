#!/usr/bin/env bash
# Runs the project's pytest suite as root inside a real Debian kernel under qemu.
#
#   scripts/vm-test.sh linux-image-6.1.0-57-amd64                      # the whole suite
#   scripts/vm-test.sh linux-image-6.12.117+deb12-amd64 -- tests/test_kernel.py -x
#
# What it does: downloads the kernel package with `apt-get download` into a cache (never
# installs it as the host's kernel), unpacks it with dpkg-deb, runs depmod on the unpacked
# tree, extracts the uncompressed vmlinux from vmlinuz, builds a busybox initramfs that loads
# virtio-9p, loop, ext4, overlay, fuse and autofs4, and boots qemu. The guest mounts the host's
# / read-only over virtio-9p and builds its own root on a tmpfs: /usr, the venv and the
# unpacked modules are binds of the 9p share, /etc and a clean copy of the checkout are copied
# in (writable), /proc /sys /dev /dev/shm /tmp /run are fresh. It runs pytest as root, writes
# the output and the exit status to a second, writable 9p share (the run folder), and powers
# off. The script prints pytest's summary line and exits with pytest's status.
#
# Measured on the 2-core machine, two guests at once (one core each): first guest command
# 10-11 s after qemu starts (up to 30 s when the host is loaded); the whole suite with
# MOUNTPROBE_WALK_STEPS=300 about 50 min (test_churn alone 2 x 900 s, its deadline).
#
# Why no_timer_check: on a loaded host TCG's emulated time runs so unevenly that the kernel's
# boot-time check of the IO-APIC timer fails and it panics ("IO-APIC + timer doesn't work!").
#
# Why TCG (-accel tcg) and not KVM: /dev/kvm on our machines is nested paravirtual KVM, about
# 100x slower than TCG for this load. Why vmlinux and not vmlinuz: under TCG decompressing the
# kernel costs ~10 s per boot; the uncompressed ELF has a PVH entry note, so `-kernel vmlinux`
# boots it directly.
#
# Nothing on the host changes beyond apt packages (qemu-system-x86, busybox-static, kmod, only
# if missing) and the work folder; no host mount, no loop device; qemu is ended on exit.
#
# Environment:
#   MOUNTPROBE_VM_WORK     work folder (default /var/tmp/mountprobe-vm): cache/, kernels/,
#                          venv/, runs/ (removed after each run), results/<kernel>/ (the last
#                          run's pytest.txt, console.log and status)
#   MOUNTPROBE_VM_VENV     a venv with the project's test deps (default: WORK/venv, made with
#                          /usr/bin/python3 -m venv + pip install '.[test]'); the guest sees it
#                          at the same path. The checkout under test wins through PYTHONPATH.
#   MOUNTPROBE_VM_REPO     the checkout to test (default: the repo this script lives in);
#                          its HEAD is copied (git archive)
#   MOUNTPROBE_VM_DIRTY=1  copy the working tree instead (tracked and untracked, not ignored)
#   MOUNTPROBE_VM_MEM      guest memory (default 4G)
#   MOUNTPROBE_VM_SMP      guest CPUs (default 1)
#   MOUNTPROBE_VM_TIMEOUT  seconds before qemu is killed (default 4800)
#   MOUNTPROBE_VM_LOG      also copy the guest's pytest output to this file
#   MOUNTPROBE_VM_COMMAND  a shell command to run in the guest (from the checkout, as root)
#                          instead of pytest, e.g. a benchmark: PYTEST-ARGS are then ignored
#   MOUNTPROBE_VM_WATCH=N  every N s, write the guest's process tree (and each user process's
#                          syscall and kernel stack) to RUN/share/out/ps.txt (kept in
#                          results/), for a run that seems stuck
# Passed into the guest: CI, PYTEST_ADDOPTS, HYPOTHESIS_PROFILE and every MOUNTPROBE_* that
# is not MOUNTPROBE_VM_* (e.g. MOUNTPROBE_WALK_STEPS, MOUNTPROBE_WALK_SEED).
set -euo pipefail
# The whole script is one { } group: bash parses it before running it, so editing or checking
# out this file while a run is under way cannot change what the run does next.
{

die() {
    echo "vm-test: $*" >&2
    exit 2
}
say() { echo "vm-test: $*" >&2; }

usage() {
    echo "usage: $0 linux-image-PACKAGE [-- PYTEST-ARGS...]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
pkg=$1
shift
[[ $pkg == linux-image-* ]] || usage
if [[ $# -gt 0 ]]; then
    [[ $1 == -- ]] || usage
    shift
fi
pytest_args=("$@")
[[ ${#pytest_args[@]} -gt 0 ]] || pytest_args=(-ra -q)
[[ $(id -u) == 0 ]] || die "run as root (apt-get, and the guest's tests run as root anyway)"

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${MOUNTPROBE_VM_WORK:-/var/tmp/mountprobe-vm}
repo=${MOUNTPROBE_VM_REPO:-$script_dir/..}
repo=$(git -C "$repo" rev-parse --show-toplevel) || die "not a git checkout: $repo"
mem=${MOUNTPROBE_VM_MEM:-4G}
smp=${MOUNTPROBE_VM_SMP:-1}
vm_timeout=${MOUNTPROBE_VM_TIMEOUT:-4800}
kver=${pkg#linux-image-}
mkdir -p "$work"/{cache,kernels,runs,results}
work=$(cd "$work" && pwd)

# ---------------------------------------------------------------- host packages
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
[[ -x /bin/busybox ]] || need_pkgs+=(busybox-static)
command -v depmod >/dev/null || [[ -x /usr/sbin/depmod ]] || need_pkgs+=(kmod)
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
    say "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
busybox=/bin/busybox
# Debian's busybox (not -static) is dynamic; the initramfs needs the static one.
if ldd "$busybox" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi

# ---------------------------------------------------------------- the kernel
extract_vmlinux() { # vmlinuz out: find a compressed payload that decompresses to an ELF
    local img=$1 out=$2 magic tool off
    for pair in '\x1f\x8b\x08:gzip -dc' '\xfd7zXZ\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -dcq' \
        '\x5d\x00\x00\x00:xz -dc --format=lzma' '\x02\x21\x4c\x18:lz4 -dc'; do
        magic=${pair%%:*}
        tool=${pair#*:}
        command -v "${tool%% *}" >/dev/null || continue
        while read -r off; do
            # shellcheck disable=SC2086  # $tool is a command and its options
            tail -c "+$((off + 1))" "$img" | $tool >"$out" 2>/dev/null || true
            if [[ $(head -c 4 "$out" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
                return 0
            fi
        # Only the offsets: the matched bytes are no text (bash's read would swallow the newline
        # after an incomplete UTF-8 sequence).
        done < <(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1 || true)
    done
    rm -f "$out"
    return 1
}

kdir=$work/kernels/$kver
prepare_kernel() {
    local deb
    deb=$(compgen -G "$work/cache/${pkg}_*.deb" | head -n 1 || true)
    if [[ -z $deb ]]; then
        say "downloading $pkg"
        (cd "$work/cache" && apt-get download "$pkg" 2>/dev/null) ||
            (apt-get update -qq && cd "$work/cache" && apt-get download "$pkg" 2>/dev/null) ||
            die "apt-get download $pkg failed (apt-cache search linux-image- lists what there is)"
        deb=$(compgen -G "$work/cache/${pkg}_*.deb" | head -n 1)
    fi
    rm -rf "$kdir.tmp"
    mkdir -p "$kdir.tmp"
    dpkg-deb -x "$deb" "$kdir.tmp"
    [[ -d $kdir.tmp/lib/modules/$kver && -f $kdir.tmp/boot/vmlinuz-$kver ]] ||
        die "$deb has no lib/modules/$kver or boot/vmlinuz-$kver"
    depmod -b "$kdir.tmp" "$kver"
    if ! extract_vmlinux "$kdir.tmp/boot/vmlinuz-$kver" "$kdir.tmp/vmlinux"; then
        say "no vmlinux found in vmlinuz; booting vmlinuz (slower under TCG)"
    fi
    rm -rf "$kdir"
    mv "$kdir.tmp" "$kdir"
    touch "$kdir/.ready"
}
(
    flock 9
    [[ -f $kdir/.ready ]] || prepare_kernel
) 9>"$work/kernels/.lock-$kver"
kernel_image=$kdir/vmlinux
[[ -f $kernel_image ]] || kernel_image=$kdir/boot/vmlinuz-$kver

# ---------------------------------------------------------------- the venv
venv=${MOUNTPROBE_VM_VENV:-$work/venv}
if [[ -z ${MOUNTPROBE_VM_VENV:-} ]]; then
    (
        flock 9
        stamp=$(sha256sum "$repo/pyproject.toml" | cut -c1-16)
        if [[ $(cat "$venv/.mountprobe-vm" 2>/dev/null) != "$stamp" ]]; then
            say "making the venv $venv"
            rm -rf "$venv"
            python=/usr/bin/python3
            [[ -x $python ]] || python=$(command -v python3)
            "$python" -m venv "$venv"
            "$venv/bin/python" -m pip install -q --upgrade pip
            "$venv/bin/python" -m pip install -q "${repo}[test]"
            echo "$stamp" >"$venv/.mountprobe-vm"
        fi
    ) 9>"$work/.lock-venv"
fi
[[ -x $venv/bin/python ]] || die "no python in the venv $venv"
venv=$(cd "$venv" && pwd)

# ---------------------------------------------------------------- the run folder
run=$(mktemp -d "$work/runs/$kver.XXXXXX")
qemu_pid=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
share=$run/share # the guest's /vm: writable
mkdir -p "$share/src" "$share/out" "$run/initramfs"

if [[ ${MOUNTPROBE_VM_DIRTY:-0} == 1 ]]; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard | sort -zu |
        while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$share/src"
else
    git -C "$repo" archive --format=tar HEAD | tar -xf - -C "$share/src"
fi
src_rev=$(git -C "$repo" rev-parse --short HEAD)

# Host paths the guest binds at the same path: the venv, the interpreter it was made from
# (when it is not under /usr) and the unpacked kernel (for on-demand modprobe).
binds=("$venv" "$kdir")
base=$(sed -n 's/^home *= *//p' "$venv/pyvenv.cfg")
base=$(dirname "$(readlink -f "$base")")
[[ $base == /usr || $base == /usr/* ]] || binds+=("$base")
for b in "${binds[@]}"; do
    [[ $b =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "path with odd characters, cannot bind it in the guest: $b"
done

{
    echo "VM_BINDS='${binds[*]}'"
    # The root's top-level symlinks (merged /usr): bin -> usr/bin and so on.
    links=()
    for l in /bin /sbin /lib /lib32 /lib64 /libx32; do
        [[ -L $l ]] && links+=("${l#/}:$(readlink "$l")")
    done
    echo "VM_LINKS='${links[*]}'"
    # The host's top-level folders and those of /var and /var/lib, empty, with their modes:
    # tests bind over FHS folders such as /srv, and look for a /var/lib/private nobody may not
    # search.
    dirs=()
    for d in /* /var/* /var/lib/*; do
        [[ -d $d && ! -L $d && $d =~ ^/[A-Za-z0-9._/+-]*$ ]] && dirs+=("$d:$(stat -c %a "$d")")
    done
    echo "VM_DIRS='${dirs[*]}'"
} >"$share/init.conf"

{
    printf 'venv=%q\nkdir=%q\nkver=%q\n' "$venv" "$kdir" "$kver"
    [[ -z ${MOUNTPROBE_VM_WATCH:-} ]] || printf 'VM_WATCH=%q\n' "$MOUNTPROBE_VM_WATCH"
    [[ -z ${MOUNTPROBE_VM_COMMAND:-} ]] || printf 'VM_COMMAND=%q\n' "$MOUNTPROBE_VM_COMMAND"
    printf 'pytest_args=('
    printf '%q ' "${pytest_args[@]}"
    printf ')\n'
    while IFS='=' read -r name _; do
        case $name in
        MOUNTPROBE_VM_*) ;;
        MOUNTPROBE_* | CI | PYTEST_ADDOPTS | HYPOTHESIS_PROFILE) printf 'export %s=%q\n' "$name" "${!name}" ;;
        esac
    done < <(env)
} >"$share/env.sh"

cat >"$share/modprobe" <<EOF
#!/bin/sh
# The kernel's request_module() helper: the unpacked kernel's modules, not the host's.
exec /usr/sbin/modprobe -d '$kdir' "\$@"
EOF
chmod 755 "$share/modprobe"

cat >"$share/stage2.sh" <<'EOF'
#!/bin/bash
# The guest's second stage, on its tmpfs root: fresh pseudo filesystems, then pytest.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
echo /vm/modprobe >/proc/sys/kernel/modprobe
hostname mountprobe-vm 2>/dev/null
ip link set lo up 2>/dev/null
# shellcheck disable=SC1091
. /vm/env.sh
read -r up _ </proc/uptime
echo "@@MOUNTPROBE-VM up uptime=$up kernel=$(uname -r)"
cd /src || exit 1
export PYTHONPATH=/src
if [[ -n ${VM_WATCH:-} ]]; then # every VM_WATCH s: the guest's processes, for a run that seems stuck
    (
        while sleep "$VM_WATCH"; do
            {
                date
                ps -eo pid,ppid,stat,etime,time,wchan:24,args --forest
                for p in /proc/[0-9]*; do # user processes: their syscall and kernel stack
                    [[ -n $(tr -d '\0' <"$p/cmdline" 2>/dev/null) ]] || continue # not a kernel thread
                    echo "${p#/proc/} $(cut -d' ' -f3 "$p/stat" 2>/dev/null) syscall: $(cat "$p/syscall" 2>/dev/null)"
                    cat "$p/stack" 2>/dev/null
                done
            } >/vm/out/ps.tmp 2>&1
            mv /vm/out/ps.tmp /vm/out/ps.txt
        done
    ) &
fi
if [[ -n ${VM_COMMAND:-} ]]; then
    PATH=$venv/bin:$PATH bash -c "$VM_COMMAND" 2>&1 | tee /vm/out/pytest.txt
else
    "$venv/bin/python" -m pytest "${pytest_args[@]}" 2>&1 | tee /vm/out/pytest.txt
fi
status=${PIPESTATUS[0]}
echo "$status" >/vm/out/status
sync
echo "@@MOUNTPROBE-VM status=$status"
echo o >/proc/sysrq-trigger
sleep 10
EOF
chmod 755 "$share/stage2.sh"

# ---------------------------------------------------------------- the initramfs
ird=$run/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" "$ird/bin/busybox"
moddir=$kdir/lib/modules/$kver
# modules.dep lists every dependency, the first needed last; builtins are not there.
wanted=(virtio_pci virtio_blk 9pnet_virtio 9p loop crc32c_generic crc32c_intel ext4 overlay fuse autofs4)
order=()
add_module() { # name or path relative to moddir
    local m=$1 line path deps d i
    if [[ $m != */* ]]; then
        line=$(grep -E "/${m//_/[_-]}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | head -n 1 || true)
        if [[ -z $line ]]; then
            grep -qE "/${m//_/[_-]}\.ko$" "$moddir/modules.builtin" || say "no module $m in $kver"
            return 0
        fi
    else
        line=$(grep -E "^${m//./\\.}:" "$moddir/modules.dep")
    fi
    path=${line%%:*}
    for d in "${order[@]}"; do [[ $d == "$path" ]] && return 0; done
    read -r -a deps <<<"${line#*:}"
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add_module "${deps[i]}"; done
    order+=("$path")
}
for m in "${wanted[@]}"; do add_module "$m"; done
: >"$ird/modules.order"
for path in "${order[@]}"; do
    name=$(basename "$path")
    case $path in
    *.xz) xz -dc "$moddir/$path" >"$ird/lib/modules/${name%.xz}" && name=${name%.xz} ;;
    *.zst) zstd -dcq "$moddir/$path" >"$ird/lib/modules/${name%.zst}" && name=${name%.zst} ;;
    *.gz) gzip -dc "$moddir/$path" >"$ird/lib/modules/${name%.gz}" && name=${name%.gz} ;;
    *) cp "$moddir/$path" "$ird/lib/modules/$name" ;;
    esac
    echo "$name" >>"$ird/modules.order"
done

cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
# The guest's first stage: modules, the host's / over 9p, a tmpfs root, switch_root.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "@@MOUNTPROBE-VM init failed: $*"; echo o >/proc/sysrq-trigger; sleep 10; }
while read -r m; do
    insmod "/lib/modules/$m" 2>/dev/null || echo "vm init: insmod $m failed"
done </modules.order
mount -t tmpfs -o mode=755 root /newroot || fail "tmpfs root"
r=/newroot
mkdir -p $r/host $r/vm
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot $r/host; do
    i=$((i + 1)); [ $i -lt 20 ] || fail "9p hostroot"; sleep 0.2
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmrun $r/vm || fail "9p vmrun"
. $r/vm/init.conf
mkdir -p $r/usr $r/etc $r/proc $r/sys $r/dev $r/tmp $r/run $r/root $r/mnt $r/src $r/var/tmp $r/var/lib
for d in $VM_DIRS; do [ -e "$r${d%:*}" ] || mkdir -p -m "${d##*:}" "$r${d%:*}"; done
mount --bind $r/host/usr $r/usr || fail "bind /usr"
for l in $VM_LINKS; do ln -s "${l#*:}" "$r/${l%%:*}"; done
cp -a $r/host/etc/. $r/etc/ 2>/dev/null
for b in $VM_BINDS; do mkdir -p "$r$b" && mount --bind "$r/host$b" "$r$b" || fail "bind $b"; done
cp -a $r/vm/src/. $r/src/ || fail "copy src"
chmod 700 $r/root
chmod 1777 $r/tmp $r/var/tmp
umount $r/host && rmdir $r/host
umount /proc /sys /dev
exec switch_root /newroot /bin/bash /vm/stage2.sh
EOF
chmod 755 "$ird/init"
(cd "$ird" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$run/initramfs.cpio.gz"

# ---------------------------------------------------------------- boot
console=$run/console.log
: >"$console"
say "booting $kver ($(basename "$kernel_image"), TCG, $smp cpu, $mem) with $repo at $src_rev: pytest ${pytest_args[*]}"
since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }
t0=$(date +%s.%N)
timeout --kill-after=20 "$vm_timeout" qemu-system-x86_64 \
    -accel tcg -cpu max -smp "$smp" -m "$mem" \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -serial "file:$console" \
    -kernel "$kernel_image" -initrd "$run/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off no_timer_check" \
    -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev "local,id=vmrun,path=$share,security_model=none,multidevs=remap" \
    -device virtio-9p-pci,fsdev=vmrun,mount_tag=vmrun \
    </dev/null &
qemu_pid=$!
booted=
while IFS= read -r line; do
    line=${line%$'\r'}
    printf '%s\n' "$line"
    if [[ -z $booted && $line == '@@MOUNTPROBE-VM up'* ]]; then
        booted=$(since "$t0")
        say "first guest command $booted s after qemu started"
    fi
done < <(tail -n +1 -f --pid="$qemu_pid" "$console")
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=
wall=$(since "$t0")

results=$work/results/$kver
mkdir -p "$results"
cp "$console" "$results/console.log"
status=
if [[ -f $share/out/status ]]; then
    status=$(cat "$share/out/status")
    cp "$share/out/pytest.txt" "$results/pytest.txt"
    [[ -z ${MOUNTPROBE_VM_LOG:-} ]] || cp "$share/out/pytest.txt" "$MOUNTPROBE_VM_LOG"
fi
[[ ! -f $share/out/ps.txt ]] || cp "$share/out/ps.txt" "$results/ps.txt"
echo "${status:-none}" >"$results/status"
if [[ -z $status ]]; then
    if [[ -f $share/out/pytest.txt ]]; then # what pytest wrote before the end
        cp "$share/out/pytest.txt" "$results/pytest.txt"
        [[ -z ${MOUNTPROBE_VM_LOG:-} ]] || cp "$share/out/pytest.txt" "$MOUNTPROBE_VM_LOG"
    fi
    [[ $qemu_status == 124 ]] && say "qemu killed after ${vm_timeout} s"
    say "the guest reported no pytest status (qemu exit $qemu_status); console: $results/console.log"
    exit 3
fi
summary=$(grep -v '^[[:space:]]*$' "$share/out/pytest.txt" | tail -n 1)
say "$kver: $summary"
say "$kver: pytest exit $status, qemu wall ${wall} s, boot to first command ${booted:-?} s"
exit "$status"
}
