#!/usr/bin/env bash
# The whole test suite. On a fresh Debian 12 machine, as root, it installs what is missing
# (Rust targets and tools, Debian packages), then runs everything CI runs.
#
#   ./ci.sh            everything
#   FUZZ_SECONDS=30    seconds per fuzz target (default 30; 0 skips the fuzz smoke run)
set -euo pipefail
cd "$(dirname "$0")"

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
NO_STD_TARGET=thumbv7em-none-eabihf
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# CI builds from a clean clone once: incremental state would only cost disk (GBs) and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step() { printf '\n=== %s\n' "$*"; }
# The build and test run need about 6 GB of disk (target/ and fuzz/target/): say so up front
# when there is less, rather than failing later with "No space left on device" in the linker.
need_kb=$((6 * 1024 * 1024))
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt "$need_kb" ]; then
    echo "warning: only $((free_kb / 1024)) MB free on $(df -P . | awk 'NR == 2 { print $6 }');" \
        "the build needs about 6 GB (free space, or set CARGO_TARGET_DIR to a larger disk)" >&2
fi

# ---- set-up: install only what is missing ----
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install Rust with rustup first" >&2
    exit 1
fi
step "set-up"
if ! rustup target list --installed | grep -qx "$NO_STD_TARGET"; then
    rustup target add "$NO_STD_TARGET"
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
# The IPVS tests boot Debian's kernel (which has ip_vs) under qemu: scripts/ipvs-vm.sh fetches
# the kernel package itself; these are the tools it needs.
# The vrrpd tests run Debian's keepalived 2.2.7 beside our daemon in network namespaces; the
# session-store tests start their own PostgreSQL, MariaDB, memcached and Redis (+ Sentinel)
# servers on loopback ports, and check key placement against libmemcached (python3-pylibmc).
# The vrrpd and lvsd alert tests mail to an aiosmtpd server (python3-aiosmtpd).
APT_PKGS="qemu-system-x86 busybox-static cpio kmod ipvsadm keepalived iproute2 postgresql mariadb-server memcached redis-server python3-pylibmc python3-aiosmtpd systemd"
# shellcheck disable=SC2086
if ! dpkg -s $APT_PKGS >/dev/null 2>&1 \
   || ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
    apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $APT_PKGS
fi
# These packages start system-wide services on install; the tests run their own instances.
for svc in keepalived postgresql mariadb memcached redis-server; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done
if [ "$FUZZ_SECONDS" != 0 ] && ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# ---- static checks ----
step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

step "cargo package (every library crate, built from its packaged sources)"
# cargo unpacks the packaged crates of an earlier run once and reuses them by name and
# version: remove those copies so that every run builds what it just packaged.
for crate in hapri-time vrrp-proto lvs-sched ipvs-netlink session-store keepalived-conf \
    ka-alert vrrp-linux http-probe; do
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate"-0.1.* \
        "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$crate"-0.1.*.crate
done
cargo package --locked -p hapri-time -p vrrp-proto -p lvs-sched -p ipvs-netlink \
    -p session-store -p keepalived-conf -p ka-alert -p vrrp-linux -p http-probe

step "no_std build ($NO_STD_TARGET)"
cargo build -p hapri-time --no-default-features --target "$NO_STD_TARGET"
cargo build -p vrrp-proto --no-default-features --target "$NO_STD_TARGET"
cargo build -p vrrp-proto --no-default-features --features alloc --target "$NO_STD_TARGET"
cargo build -p lvs-sched --no-default-features --target "$NO_STD_TARGET"

# ---- tests ----
step "cargo test (workspace, all features, doc tests included)"
cargo test --workspace --all-features

step "systemd unit files (systemd-analyze verify, against the binaries just built)"
cargo build --workspace --bins
units="$(mktemp -d)"
for unit in dist/systemd/*.service; do
    sed "s#/usr/local/sbin/#$PWD/target/debug/#g" "$unit" >"$units/$(basename "$unit")"
done
# verify prints a line for anything it does not accept, even when its status is 0.
verdict="$(systemd-analyze verify "$units"/*.service 2>&1)" || { echo "$verdict"; exit 1; }
if [ -n "$verdict" ]; then echo "$verdict"; exit 1; fi
rm -rf "$units"

step "ipvs-netlink kernel tests (qemu VM with ip_vs; fails if the VM cannot boot)"
scripts/ipvs-vm.sh --check
CI=true CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/ipvs-vm.sh" \
    cargo test -p ipvs-netlink --all-features --test vm -- --ignored
# lvs-sched's IPVS schedulers against the kernel's: random add/edit/delete sequences and
# over 10,000 connections (a few minutes without KVM; SCHED_VM_SEED repeats a run).
CI=true IPVS_VM_TIMEOUT=900 IPVS_VM_PASSENV="SCHED_VM_SEED SCHED_VM_STEPS" \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/ipvs-vm.sh" \
    cargo test -p ipvs-netlink --all-features --test sched_vm -- --ignored --nocapture
CI=true CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/ipvs-vm.sh" \
    cargo test -p lvsd --all-features --test lvsd_vm -- --ignored
CI=true CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/ipvs-vm.sh" \
    cargo test -p ipvsctl --all-features --test ipvsctl_vm -- --ignored

# ---- fuzz smoke run ----
if [ "$FUZZ_SECONDS" != 0 ]; then
    step "fuzz smoke run (${FUZZ_SECONDS}s per target)"
    (
        cd fuzz
        # The fuzz workspace's lock file is committed: refuse to run if it needs rewriting.
        cargo +nightly metadata --locked --format-version 1 >/dev/null
        for target in $(cargo +nightly fuzz list); do
            corpus="../target/fuzz-corpus/$target"
            mkdir -p "$corpus"
            seeds=()
            [ -d "seeds/$target" ] && seeds=("seeds/$target")
            echo "--- $target"
            log="../target/fuzz-$target.log"
            if ! cargo +nightly fuzz run "$target" "$corpus" "${seeds[@]}" -- \
                -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 >"$log" 2>&1; then
                tail -n 60 "$log" >&2
                echo "fuzz target $target failed (crash or build error): see fuzz/artifacts/$target" >&2
                exit 1
            fi
            grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' "$log" || true
        done
    )
fi

step "all checks passed"
