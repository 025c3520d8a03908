#!/usr/bin/env bash
# Builds the release binaries of lameduck: static Linux executables in dist/,
# one per architecture, and dist/SHA256SUMS.
#
#   scripts/release.sh              # every architecture this toolchain can build
#   TARGETS="x86_64-unknown-linux-musl" scripts/release.sh
#
# Which targets: x86_64-unknown-linux-musl and aarch64-unknown-linux-musl when
# `rustup target list --installed` has them (aarch64 from an x86_64 host also
# needs aarch64-linux-gnu-gcc as its linker); without the musl target of the
# host's own architecture, the host's glibc target linked statically
# (`-C target-feature=+crt-static`). Each lands in dist/ as
# lameduck-linux-<arch> (amd64, arm64: Docker's names, which the Dockerfile
# copies from).
#
# Reproducible: built --locked from the commit checked out, with
# SOURCE_DATE_EPOCH set to the commit's time and the build's paths remapped,
# so two builds of one tag by one toolchain give the same bytes. The commit
# and its date are in `lameduck --version` (from git, or from the COMMIT file
# that `git archive` fills in for a tarball without .git).
#
# Not position independent (`-C relocation-model=static`): a static PIE
# relocates itself at start-up, which reads every relocation and writes every
# page of pointers in the binary (about 440 KiB that grows with the binary),
# and `lameduck run` is PID 1 in every container, held to tini's footprint
# (bench/supervisor.sh). The binary's own code and data then load at a fixed
# address; the stack, the heap and thread stacks keep their random ones.
#
# PID-1 layout: the functions `lameduck run` executes as PID 1 are linked
# first in the text, together (scripts/pid1-layout.sh finds them in a first
# build, with valgrind; lld's --symbol-ordering-file places them), so that
# page faults and the kernel's 64 KiB fault-around page in those, not the
# proxy, the linter and whatever else the binary holds. Done where the
# binary runs here and links with lld (x86_64-unknown-linux-gnu, Rust's
# default lld); elsewhere, or without valgrind, the text keeps the
# compiler's order. The binary is stripped after the link (strip), so that
# both builds have the same flags and symbols to order by.
#
# Static glibc and name lookups: a static glibc cannot load NSS modules. The
# only lookup lameduck makes is the address of `--upstream` when it is a host
# name (getaddrinfo); glibc 2.34 and later have the `files` and `dns` services
# built in, which is what a container has (/etc/hosts, /etc/resolv.conf).
# Other NSS services (LDAP, mDNS, systemd-resolved's `resolve`) are not used
# by a static build; the musl builds never use NSS.
#
# RELEASE_QUICK=1 (the test suite's setting): the same flags (static, not
# position independent, stripped, summed) with thin LTO, parallel code
# generation and no PID-1 layout rounds, so that the suite stays within its
# time on two cores. What it tests (a static binary that runs every command,
# its sums, its version) does not depend on those; the binaries to publish
# and to benchmark are built without it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'release.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"

version=$(cargo pkgid -p lameduck-cli | sed 's/.*[@#]//')
[[ -n $version ]] || die "cannot read the version of lameduck-cli"

# --- what is built: the commit and its time -----------------------------------

if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    commit=$(git -C "$repo" log -1 --format='%h %cs')
    commit_time=$(git -C "$repo" log -1 --format=%ct)
    if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
        log "warning: uncommitted changes: this build is not the commit $commit"
    fi
else
    # A tarball from `git archive`: crates/lameduck-cli/COMMIT is filled in.
    read -r hash date commit_time <crates/lameduck-cli/COMMIT || true
    # shellcheck disable=SC2016 # the literal placeholder git archive replaces
    [[ ${hash:-} != '$Format'* ]] || hash=""
    commit="${hash:-unknown} ${date:-}"
fi
export LAMEDUCK_COMMIT="${LAMEDUCK_COMMIT:-$commit}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-${commit_time:-0}}"
# Flags from the caller's environment would change the bytes.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS

# --- which targets --------------------------------------------------------------

host=$(rustc -vV | sed -n 's/^host: //p')
installed=$(rustup target list --installed 2>/dev/null || echo "$host")
has() { grep -qx "$1" <<<"$installed"; }

if [[ -z ${TARGETS:-} ]]; then
    targets=()
    for arch in x86_64 aarch64; do
        if has "$arch-unknown-linux-musl"; then
            targets+=("$arch-unknown-linux-musl")
        elif [[ $host == "$arch-unknown-linux-gnu" ]]; then
            targets+=("$host")
        fi
    done
else
    read -r -a targets <<<"$TARGETS"
fi
((${#targets[@]})) || die "no Linux target to build for (host $host)"

docker_arch() {
    case $1 in
        x86_64-*) echo amd64 ;;
        aarch64-*) echo arm64 ;;
        *) die "no release name for target $1" ;;
    esac
}

# --- build ----------------------------------------------------------------------

cargo_home=${CARGO_HOME:-$HOME/.cargo}
# Paths of this machine must not end up in the binary (panic locations).
remap="--remap-path-prefix=$repo=/lameduck --remap-path-prefix=$cargo_home=/cargo"
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[[ -n $target_dir ]] || die "cannot find cargo's target directory"

rm -rf dist
mkdir -p dist
for target in "${targets[@]}"; do
    arch=$(docker_arch "$target")
    flags="$remap -C relocation-model=static"
    env_target=$(tr 'a-z-' 'A-Z_' <<<"$target")
    case $target in
        *-linux-gnu) flags="$flags -C target-feature=+crt-static" ;;
        *-linux-musl) ;;
        *) die "not a Linux target: $target" ;;
    esac
    if [[ $target == aarch64-* && $host != aarch64-* ]]; then
        linker_var="CARGO_TARGET_${env_target}_LINKER"
        if [[ -z ${!linker_var:-} ]]; then
            command -v aarch64-linux-gnu-gcc >/dev/null ||
                die "$target from $host needs a linker: apt-get install gcc-aarch64-linux-gnu, or set $linker_var"
            export "$linker_var=aarch64-linux-gnu-gcc"
        fi
    fi
    order=""
    quick=()
    if [[ ${RELEASE_QUICK:-0} == 1 ]]; then
        quick=(CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)
        log "RELEASE_QUICK=1: thin LTO, no PID-1 layout (not for publishing)"
    elif [[ $target == x86_64-unknown-linux-gnu && $host == "$target" ]]; then
        mkdir -p "$target_dir/pid1-layout"
        order="$target_dir/pid1-layout/$target.order"
        # From scratch: a list from an older tree would order stale names.
        : >"$order"
        flags="$flags -C link-arg=-Wl,--symbol-ordering-file=$order -C link-arg=-Wl,--no-warn-symbol-ordering"
    fi
    built="$target_dir/$target/release/lameduck"
    # --target keeps these flags off build scripts and proc macros, which run
    # on the host and cannot be static.
    build() {
        env "CARGO_TARGET_${env_target}_RUSTFLAGS=$flags" CARGO_PROFILE_RELEASE_STRIP=false "${quick[@]}" \
            cargo build --release --locked -p lameduck-cli --target "$target"
    }
    log "building lameduck $version for $target (commit $LAMEDUCK_COMMIT)"
    build
    # Each link with the list shows what the path still touches elsewhere
    # (perf's page faults: the first page touched of each 64 KiB elsewhere);
    # a few rounds settle it.
    for ((round = 1; round <= 5; round++)); do
        [[ -n $order ]] || break
        new=$("$repo/scripts/pid1-layout.sh" "$built" "$order")
        ((new > 0)) || break
        log "linking again with the PID-1 path first (round $round, $new new functions)"
        # The order file is not a flag cargo sees: forget the binary's crate
        # (only it; `cargo clean -p` would take the lameduck library too).
        rm -rf "$target_dir/$target/release/.fingerprint/lameduck-cli-"*
        build
    done
    install -m 0755 "$built" "dist/lameduck-linux-$arch"
    strip --strip-all "dist/lameduck-linux-$arch"
done

# --- check and sum ----------------------------------------------------------------

for bin in dist/lameduck-linux-*; do
    # Static: no program interpreter and no shared library needed.
    if readelf -lW "$bin" | grep -q 'INTERP' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
        die "$bin is dynamically linked"
    fi
done
(cd dist && sha256sum lameduck-linux-* >SHA256SUMS)

log "dist/:"
while read -r sum name; do
    line="$name  $(stat -c %s "dist/$name") bytes  sha256 $sum"
    if [[ $host == x86_64-* && $name == *-amd64 ]] || [[ $host == aarch64-* && $name == *-arm64 ]]; then
        line="$line  ($("dist/$name" --version))"
    fi
    printf '%s\n' "$line" >&2
done <dist/SHA256SUMS
