#!/usr/bin/env bash
# ipvs-vm.sh — run a program inside a throw-away qemu VM that boots Debian's
# kernel with the IPVS (ip_vs) modules loaded, print its output and return its
# exit status.  The project's runner for ipvs-netlink's kernel tests:
#
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/scripts/ipvs-vm.sh \
#     cargo test -p ipvs-netlink --all-features --test vm -- --ignored
#
#   ipvs-vm.sh [OPTIONS] [--] PROGRAM [ARGS...]
#   ipvs-vm.sh [OPTIONS] --sh 'SHELL COMMANDS'
#   ipvs-vm.sh --check      exit 0 if the VM can be built here, else 125
#
# Needs (Debian): apt-get install -y --no-install-recommends qemu-system-x86
# busybox-static cpio kmod ipvsadm.  The kernel (linux-image-cloud-amd64) is
# fetched with apt-get download into the cache when missing; nothing is
# installed on the host.  Any failure to build or boot the VM exits 125 (or
# 124 on timeout), never 0, so CI fails loudly instead of skipping.
#
# PROGRAM is a host executable (static or dynamically linked: its shared
# libraries are found with ldd and copied in).  It runs as root, as PID>1,
# in /job inside the VM, with /proc, /sys, /dev, /tmp mounted, "lo" up and
# ip_vs plus every scheduler module loaded.  Its stdout+stderr come back on
# this script's stdout; the script exits with PROGRAM's exit status.
#
# Options (each also settable from the environment, shown in brackets):
#   --sh CMDS         busybox-sh commands run inside the VM before PROGRAM
#                     (under `set -e`); without PROGRAM, CMDS is the job and
#                     its status is returned.  ipvsadm is on PATH.
#                     [IPVS_VM_SH; handy when cargo calls this as a runner]
#   --file SRC[:DST]  copy a host file or dir into the VM (DST default
#                     /job/NAME; an ELF program brings its shared libraries,
#                     e.g. --file /usr/sbin/ip:/sbin/ip for full iproute2
#                     instead of busybox ip); repeatable.
#                     [IPVS_VM_FILES="SRC[:DST] ..." adds to the list]
#   --env NAME=VALUE  set an environment variable for the job; repeatable.
#                     RUST_* variables of the caller, and those named in
#                     IPVS_VM_PASSENV="NAME ...", are passed on anyway.
#   --modules "M..."  extra kernel modules to load, e.g. "veth dummy"
#                     [IPVS_VM_MODULES]
#   --accel auto|kvm|tcg      [IPVS_VM_ACCEL, default auto: kvm when
#                     /dev/kvm is usable and backed by kvm_intel/kvm_amd,
#                     else tcg; a kvm boot that does not reach the job within
#                     IPVS_VM_BOOT_TIMEOUT (60 s) is retried with tcg]
#   --mem SIZE        guest RAM [IPVS_VM_MEM, default 512M]
#   --smp N           vCPUs [IPVS_VM_SMP, default 1]
#   --timeout SECS    kill the VM after SECS, exit 124 [IPVS_VM_TIMEOUT, 300]
#   --no-strip        do not strip debug info from PROGRAM [IPVS_VM_STRIP=0]
#   -v, --verbose     show the VM's console (kernel log) and timings on
#                     stderr [IPVS_VM_VERBOSE=1]
# Other environment:
#   IPVS_VM_CACHE       cache dir [${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-vm]
#   IPVS_VM_KERNEL_PKG  Debian kernel package to boot [linux-image-cloud-amd64]
#   IPVS_VM_KERNEL + IPVS_VM_MODDIR   use this vmlinuz and this
#                     lib/modules/<version> dir instead of downloading
#   IPVS_VM_REFRESH=1   ask apt again which kernel package is current
#   IPVS_VM_BOOT_TIMEOUT  seconds the guest may take to reach the job [60]
# Exit status: PROGRAM's status (0-255, 128+N if killed by signal N);
#   124 timeout; 125 the VM or this script failed before a status came back.
set -euo pipefail

SELF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$SELF_DIR/$(basename "${BASH_SOURCE[0]}")"
T0=$(date +%s.%N)

die() { echo "ipvs-vm: $*" >&2; exit 125; }
log() { if [ "$VERBOSE" = 1 ]; then echo "ipvs-vm: $*" >&2; fi; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}'; }
# POSIX single-quote a string for the guest's busybox sh.
shq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

ACCEL=${IPVS_VM_ACCEL:-auto}
MEM=${IPVS_VM_MEM:-512M}
SMP=${IPVS_VM_SMP:-1}
TIMEOUT=${IPVS_VM_TIMEOUT:-300}
STRIP=${IPVS_VM_STRIP:-1}
VERBOSE=${IPVS_VM_VERBOSE:-0}
EXTRA_MODULES=${IPVS_VM_MODULES:-}
KERNEL_PKG=${IPVS_VM_KERNEL_PKG:-linux-image-cloud-amd64}
CACHE=${IPVS_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ipvs-vm}
SH_CMDS=${IPVS_VM_SH:-}
FILES=()
for f in ${IPVS_VM_FILES:-}; do FILES+=("$f"); done
ENVS=()
CHECK=0

while [ $# -gt 0 ]; do
  case "$1" in
    --sh) SH_CMDS=$2; shift 2 ;;
    --file) FILES+=("$2"); shift 2 ;;
    --env) [[ "$2" == *=* ]] || die "--env wants NAME=VALUE"; ENVS+=("$2"); shift 2 ;;
    --modules) EXTRA_MODULES="$EXTRA_MODULES $2"; shift 2 ;;
    --accel) ACCEL=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --no-strip) STRIP=0; shift ;;
    -v|--verbose) VERBOSE=1; shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || [ -n "$SH_CMDS" ] || [ "$CHECK" = 1 ] || die "nothing to run (see --help)"

for t in qemu-system-x86_64 cpio depmod modprobe ldd; do
  command -v "$t" >/dev/null || die "missing $t: apt-get install qemu-system-x86 cpio kmod busybox-static ipvsadm"
done
BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "need a static busybox: apt-get install busybox-static"
fi
IPVSADM=$(PATH="$PATH:/usr/sbin:/sbin" command -v ipvsadm || true)
[ -n "$IPVSADM" ] || die "missing ipvsadm: apt-get install ipvsadm"
if [ "$CHECK" = 1 ]; then
  command -v apt-get >/dev/null || [ -n "${IPVS_VM_KERNEL:-}" ] || die "no apt-get to fetch the kernel (set IPVS_VM_KERNEL and IPVS_VM_MODDIR)"
  echo "ipvs-vm: ok (qemu, busybox-static, cpio, kmod, ipvsadm present)"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"

# ---------------------------------------------------------------- kernel --
if [ -n "${IPVS_VM_KERNEL:-}" ] || [ -n "${IPVS_VM_MODDIR:-}" ]; then
  if [ ! -f "${IPVS_VM_KERNEL:-}" ] || [ ! -d "${IPVS_VM_MODDIR:-}" ]; then
    die "set both IPVS_VM_KERNEL (a vmlinuz) and IPVS_VM_MODDIR (a lib/modules/<version> dir)"
  fi
  VMLINUZ=$IPVS_VM_KERNEL; MODDIR=$(cd "$IPVS_VM_MODDIR" && pwd -P)
else
  # Resolve the meta package (linux-image-cloud-amd64) to the real image
  # package, download it once with apt and unpack it into the cache.  Needs
  # `apt-get update` to have run; nothing is installed on the host.  The
  # answer is remembered (apt-cache costs ~1.5 s); IPVS_VM_REFRESH=1 asks again.
  PTR="$CACHE/kernel/$KERNEL_PKG.current"
  KDIR=""
  if [ "${IPVS_VM_REFRESH:-0}" != 1 ] && [ -f "$PTR" ]; then
    KDIR="$CACHE/kernel/$(cat "$PTR")"; [ -e "$KDIR/.complete" ] || KDIR=""
  fi
  flock 9
  if [ -z "$KDIR" ]; then
    img=$(apt-cache depends "$KERNEL_PKG" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    img=${img:-$KERNEL_PKG}
    ver=$(apt-cache show --no-all-versions "$img" 2>/dev/null | awk '/^Version:/{print $2; exit}')
    [ -n "$ver" ] || die "apt knows no package $img (run apt-get update, or set IPVS_VM_KERNEL and IPVS_VM_MODDIR)"
    KDIR="$CACHE/kernel/${img}_${ver}"
  fi
  if [ ! -e "$KDIR/.complete" ]; then
    log "downloading $img $ver"
    rm -rf "$KDIR" "$KDIR.tmp"; mkdir -p "$KDIR.tmp"
    ( cd "$KDIR.tmp" && apt-get download -q -o APT::Sandbox::User=root "$img=$ver" >/dev/null ) \
      || die "apt-get download $img=$ver failed"
    dpkg-deb -x "$KDIR.tmp"/*.deb "$KDIR.tmp/root" && rm -f "$KDIR.tmp"/*.deb
    kv=$(ls "$KDIR.tmp/root/lib/modules")
    depmod -b "$KDIR.tmp/root" "$kv"
    ln -s "root/boot/vmlinuz-$kv" "$KDIR.tmp/vmlinuz"
    ln -s "root/lib/modules/$kv" "$KDIR.tmp/moddir"
    touch "$KDIR.tmp/.complete"; mv "$KDIR.tmp" "$KDIR"
  fi
  basename "$KDIR" > "$PTR"
  flock -u 9
  VMLINUZ="$KDIR/vmlinuz"; MODDIR=$(cd "$KDIR/moddir" && pwd -P)
fi
KVER=$(basename "$MODDIR")
case "$MODDIR" in */lib/modules/"$KVER") ;; *) die "$MODDIR is not a .../lib/modules/<version> dir" ;; esac
MODROOT=${MODDIR%/lib/modules/*}; MODROOT=${MODROOT:-/}
[ -e "$MODDIR/modules.dep" ] || depmod -b "$MODROOT" "$KVER"

# Every IPVS scheduler this kernel has (twos only exists from Linux 6.2 on).
IPVS_MODULES="ip_vs"
for s in rr wrr lc wlc fo ovf lblc lblcr dh sh mh sed nq twos pe_sip; do
  if modprobe -d "$MODROOT" -S "$KVER" -n "ip_vs_$s" 2>/dev/null; then
    IPVS_MODULES="$IPVS_MODULES ip_vs_$s"
  fi
done

# Copy a file and, for ELF programs, the shared libraries ldd finds.
copy_with_libs() { # SRC DEST_IN_ROOT ROOT
  local src=$1 dst=$2 root=$3 lib
  mkdir -p "$root$(dirname "$dst")"
  cp -L "$src" "$root$dst"
  if ldd "$src" >/dev/null 2>&1; then
    for lib in $(ldd "$src" | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]*ld-linux/{print $1}'); do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  fi
}
mkcpio() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet); }

# ------------------------------------------------- base initramfs (cached) --
# busybox, /init, ipvsadm + libs, the ip_vs modules and their dependencies.
INIT=$(cat <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /root
/bin/busybox --install -s
export PATH=/job:/sbin:/usr/sbin:/bin:/usr/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
hostname ipvs-vm
status() { echo "<2>IPVS-VM-STATUS: $*" > /dev/kmsg; }
for m in $(cat /etc/ipvs-vm-modules) $(cat /job/.modules 2>/dev/null); do
  modprobe "$m" || status "warning: modprobe $m failed"
done
exec 3<>/dev/ttyS1
stty raw -echo <&3
status "job-start"
sh /job/.job.sh </dev/null >&3 2>&3
rc=$?
exec 3>&-
status "exit $rc"
sync
reboot -f
EOF
)
BASE_KEY=$( { echo "$KVER $IPVS_MODULES"; sha256sum "$SELF" "$BUSYBOX" "$IPVSADM" "$MODDIR/modules.dep" | cut -d' ' -f1; } | sha256sum | cut -c1-16)
BASE="$CACHE/base-$KVER-$BASE_KEY.cpio"
flock 9
if [ ! -e "$BASE" ]; then
  log "building base initramfs $BASE"
  # drop bases left by older versions of this script (not ones in use now)
  find "$CACHE" -maxdepth 1 -name 'base-*.cpio' -mmin +60 -delete 2>/dev/null || true
  stage=$(mktemp -d "$CACHE/stage.XXXXXX")
  mkdir -p "$stage/bin" "$stage/etc" "$stage/lib/modules/$KVER"
  cp "$BUSYBOX" "$stage/bin/busybox"
  printf '%s\n' "$INIT" > "$stage/init"; chmod 755 "$stage/init"
  copy_with_libs "$IPVSADM" /usr/sbin/ipvsadm "$stage"
  # shellcheck disable=SC2086
  for ko in $(modprobe -d "$MODROOT" -S "$KVER" --show-depends -a $IPVS_MODULES | awk '$1=="insmod"{print $2}' | sort -u); do
    rel=${ko#"$MODDIR"/}
    mkdir -p "$stage/lib/modules/$KVER/$(dirname "$rel")"
    cp "$ko" "$stage/lib/modules/$KVER/$rel"
  done
  cp "$MODDIR/modules.order" "$MODDIR"/modules.builtin* "$stage/lib/modules/$KVER/"
  depmod -b "$stage" "$KVER"
  rm -f "$stage/lib/modules/$KVER/modules.order" "$stage/lib/modules/$KVER/modules.builtin.modinfo"
  echo "$IPVS_MODULES" > "$stage/etc/ipvs-vm-modules"
  : > "$stage/etc/passwd"; echo "root:x:0:0:root:/root:/bin/sh" > "$stage/etc/passwd"
  echo "root:x:0:" > "$stage/etc/group"
  mkcpio "$stage" > "$BASE.tmp" && mv "$BASE.tmp" "$BASE"
  rm -rf "$stage"
fi
flock -u 9

# ------------------------------------------------------ per-run overlay --
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipvs-vm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
JOB="$WORK/root/job"
mkdir -p "$JOB"
{
  echo "cd /job"
  for v in $(compgen -e | grep '^RUST_' || true) ${IPVS_VM_PASSENV:-}; do
    [ -z "${!v+x}" ] || echo "export $v=$(shq "${!v}")"
  done
  for e in ${ENVS[@]+"${ENVS[@]}"}; do echo "export ${e%%=*}=$(shq "${e#*=}")"; done
  if [ $# -gt 0 ]; then
    if [ ! -f "$1" ] || [ ! -x "$1" ]; then die "$1 is not an executable file"; fi
    name=$(basename "$1")
    copy_with_libs "$1" "/job/$name" "$WORK/root"
    if [ "$STRIP" = 1 ] && command -v objcopy >/dev/null; then
      objcopy --strip-debug "$JOB/$name" 2>/dev/null || true
    fi
    shift
    if [ -n "$SH_CMDS" ]; then printf 'set -e\n%s\nset +e\n' "$SH_CMDS"; fi
    printf 'exec /job/%s' "$(shq "$name")"
    for a in "$@"; do printf ' %s' "$(shq "$a")"; done
    echo
  else
    printf '%s\n' "$SH_CMDS"
  fi
} > "$JOB/.job.sh"
for f in ${FILES[@]+"${FILES[@]}"}; do
  src=${f%%:*}; dst=${f#*:}; [ "$dst" != "$f" ] || dst="/job/$(basename "$src")"
  [ -e "$src" ] || die "--file $src: no such file"
  if [ -d "$src" ]; then mkdir -p "$WORK/root$(dirname "$dst")"; cp -rL "$src" "$WORK/root$dst"
  else copy_with_libs "$src" "$dst" "$WORK/root"; fi
done
[ -z "${EXTRA_MODULES// /}" ] || echo "$EXTRA_MODULES" > "$JOB/.modules"
if [ -n "${EXTRA_MODULES// /}" ]; then
  # Extra modules (and their deps) go into the overlay, not the cached base.
  # shellcheck disable=SC2086
  for ko in $(modprobe -d "$MODROOT" -S "$KVER" --show-depends -a $EXTRA_MODULES | awk '$1=="insmod"{print $2}' | sort -u); do
    rel=${ko#"$MODDIR"/}
    mkdir -p "$WORK/root/lib/modules/$KVER/$(dirname "$rel")"
    cp "$ko" "$WORK/root/lib/modules/$KVER/$rel"
  done
  # modules.dep must name every module: rebuild it over base + extra.
  mkdir -p "$WORK/dep/lib/modules/$KVER"
  (cd "$WORK/dep" && cpio -i -d --quiet 'lib/modules/*' < "$BASE")
  cp -r "$WORK/root/lib/modules/$KVER/." "$WORK/dep/lib/modules/$KVER/"
  cp "$MODDIR/modules.order" "$MODDIR/modules.builtin.modinfo" "$WORK/dep/lib/modules/$KVER/"
  depmod -b "$WORK/dep" "$KVER"
  rm -f "$WORK/dep/lib/modules/$KVER/modules.order" "$WORK/dep/lib/modules/$KVER/modules.builtin.modinfo"
  cp "$WORK/dep/lib/modules/$KVER"/modules.* "$WORK/root/lib/modules/$KVER/"
fi
{ cat "$BASE"; mkcpio "$WORK/root"; } > "$WORK/initrd"

# ------------------------------------------------------------------ boot --
# KVM only helps where it is hardware KVM (kvm_intel/kvm_amd).  Some cloud
# sandboxes expose a /dev/kvm backed by kvm_pvm (PVM), which runs only
# PVM-built guest kernels: a stock Debian kernel hangs there right after
# "Probing EDD", so auto mode picks TCG on such hosts.
kvm_usable() {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }
}
FALLBACK=0
if [ "$ACCEL" = auto ]; then
  if kvm_usable; then ACCEL=kvm; FALLBACK=1; else ACCEL=tcg; fi
fi
case "$ACCEL" in kvm|tcg) ;; *) die "--accel must be auto, kvm or tcg" ;; esac
APPEND="console=ttyS0 panic=-1 reboot=t i8042.noaux i8042.nokbd i8042.nopnp"
[ "$VERBOSE" = 1 ] || APPEND="$APPEND quiet"
log "kernel $KVER, accel $ACCEL, initrd $(du -k "$WORK/initrd" | cut -f1) KiB, prepared in $(elapsed)s"

QPID=""
trap '[ -z "$QPID" ] || kill "$QPID" 2>/dev/null; exit 130' INT TERM
boot() { # ACCEL -> sets QRC and BOOTED
  local accel_args deadline
  case "$1" in
    kvm) accel_args=(-accel kvm -cpu host) ;;
    tcg) accel_args=(-accel tcg -cpu max) ;;
  esac
  : > "$WORK/console.log"
  timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
    -nodefaults -no-user-config -display none -no-reboot \
    "${accel_args[@]}" -m "$MEM" -smp "$SMP" \
    -kernel "$VMLINUZ" -initrd "$WORK/initrd" -append "$APPEND" \
    -serial "file:$WORK/console.log" -serial stdio </dev/null &
  QPID=$!
  BOOTED=0
  deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
  # Watchdog: the guest must reach the job within BOOT_TIMEOUT seconds.
  while kill -0 "$QPID" 2>/dev/null; do
    if grep -q 'IPVS-VM-STATUS: job-start' "$WORK/console.log"; then BOOTED=1; break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then kill "$QPID" 2>/dev/null; break; fi
    sleep 0.1
  done
  set +e; wait "$QPID"; QRC=$?; set -e
  QPID=""
  if grep -q 'IPVS-VM-STATUS: job-start' "$WORK/console.log"; then BOOTED=1; fi
}
BOOT_TIMEOUT=${IPVS_VM_BOOT_TIMEOUT:-60}
boot "$ACCEL"
if [ "$BOOTED" = 0 ] && [ "$FALLBACK" = 1 ]; then
  echo "ipvs-vm: the kvm boot did not reach the job (qemu status $QRC); retrying with tcg" >&2
  ACCEL=tcg; boot tcg
fi

console() { tr -d '\r' < "$WORK/console.log"; }
if [ "$VERBOSE" = 1 ]; then { echo "----- VM console -----"; console; echo "----------------------"; } >&2; fi
if [ "$BOOTED" = 0 ]; then
  echo "ipvs-vm: the VM did not reach the job (accel $ACCEL, qemu status $QRC); console tail:" >&2
  console | tail -n 30 >&2
  exit 125
fi
rc=$(console | sed -n 's/.*IPVS-VM-STATUS: exit \([0-9]*\).*/\1/p' | tail -n1)
if [ -z "$rc" ] && { [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; }; then
  echo "ipvs-vm: timed out after ${TIMEOUT}s; console tail:" >&2
  console | tail -n 30 >&2
  exit 124
fi
if [ -z "$rc" ]; then
  echo "ipvs-vm: no exit status came back (qemu status $QRC); console tail:" >&2
  console | tail -n 30 >&2
  exit 125
fi
console | sed -n 's/.*IPVS-VM-STATUS: \(warning.*\)/ipvs-vm: \1/p' >&2
log "accel $ACCEL: status $rc after $(elapsed)s in all"
exit "$rc"
