#!/usr/bin/env bash
# Lists the functions `lameduck run` executes as PID 1, in the order the
# linker should put them first in the text: scripts/release.sh links the
# release binary with it (lld's --symbol-ordering-file).
#
#   scripts/pid1-layout.sh UNSTRIPPED-BINARY ORDER-FILE
#
# Why: the kernel maps up to 64 KiB of cached pages around every page fault
# (fault-around), so each function start-up touches costs its whole 64 KiB
# neighbourhood of the binary. Spread over the text of a binary that also
# holds a proxy, a rehearsal, a linter and more, a few hundred small
# functions made PID 1 resident in about 2 MiB of text. Packed together
# they take a few pages, however much the rest of the binary grows.
#
# How: valgrind's lackey tool records every instruction the binary runs for
# `run -- /bin/true` (parse, log, spawn, wait, reap, exit: the path PID 1
# takes, with the signal loop), and where perf works, the page faults of a
# real run add what valgrind's own CPU model does not take (the string
# functions glibc picks for this CPU, the child side of posix_spawn); each
# address is mapped to its symbol in the binary's symbol table. Every CPU
# variant of a string function that ran is listed, for the CPUs the binary
# will meet. Symbols already in ORDER-FILE stay (run it again on the binary
# linked with the list, and it adds what that one still touches elsewhere);
# the count of new ones is printed on stdout. The list is sorted by name. Needs valgrind; without it,
# says so and leaves the list as it is (empty: the binary is then linked in
# the compiler's order, only heavier as PID 1).
set -euo pipefail
export LC_ALL=C

bin=${1:?usage: pid1-layout.sh UNSTRIPPED-BINARY ORDER-FILE}
order=${2:?usage: pid1-layout.sh UNSTRIPPED-BINARY ORDER-FILE}

touch "$order"
if ! command -v valgrind >/dev/null; then
    printf 'pid1-layout.sh: valgrind not found (apt-get install valgrind): PID 1 layout not ordered\n' >&2
    echo 0
    exit 0
fi
nm "$bin" >/dev/null 2>&1 || { printf 'pid1-layout.sh: %s has no symbols\n' "$bin" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A clean environment: nothing of the caller's may change the path taken.
run() { env -i PATH=/usr/bin:/bin "$@" "$bin" run -- /bin/true </dev/null >/dev/null 2>&1; }
run valgrind --tool=lackey --trace-mem=yes --log-file="$work/lackey" ||
    { printf 'pid1-layout.sh: valgrind failed on %s\n' "$bin" >&2; exit 1; }
awk '$1 == "I" { sub(/,.*/, "", $2); print $2 }' "$work/lackey" >"$work/addresses"
if run perf record -q -e page-faults -c 1 -d -o "$work/perf.data" 2>/dev/null; then
    perf script -i "$work/perf.data" -F ip,addr 2>/dev/null | awk '{ print $1; print $2 }' >>"$work/addresses"
fi

# Addresses, then the text symbols (address, size, name) sorted by address;
# each address counts for the symbol that contains it.
{
    sort -u "$work/addresses" | awk '{ print "A", $1 }'
    nm -S -n --defined-only "$bin" | awk 'NF == 4 && $3 ~ /^[tTwW]$/ { print "S", $1, $2, $4 }'
} | awk '
    function hex(s,    i, c, v) {
        v = 0
        s = tolower(s)
        sub(/^0x/, "", s)
        for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; if (c < 0) return -1; v = v * 16 + c }
        return v
    }
    $1 == "A" { v = hex($2); if (v >= 0) addresses[++na] = v; next }
    $1 == "S" { addr[++ns] = hex($2); size[ns] = hex($3); name[ns] = $4 }
    END {
        sort_addresses(na)
        j = 1
        for (i = 1; i <= na; i++) {
            a = sorted[i]
            while (j < ns && addr[j + 1] <= a) j++
            if (addr[j] <= a && a < addr[j] + (size[j] > 0 ? size[j] : 1)) ran[j] = 1
        }
        # glibc picks a string function for the CPU at start-up (IFUNC):
        # every variant of one that ran, for the CPUs the binary will meet.
        isa = "_(sse2|sse4|ssse3|avx|avx2|evex|avx512)"
        for (j in ran) if (match(name[j], "^__[a-z0-9]+" isa)) {
            family = substr(name[j], 1, index(substr(name[j], 3), "_") + 2)
            families[family] = 1
        }
        for (j = 1; j <= ns; j++) {
            if (j in ran) { print name[j]; continue }
            if (match(name[j], "^__[a-z0-9]+" isa)) {
                family = substr(name[j], 1, index(substr(name[j], 3), "_") + 2)
                if (family in families) print name[j]
            }
        }
    }
    function sort_addresses(n,    i, k, t, gap) {
        for (i = 1; i <= n; i++) sorted[i] = addresses[i]
        for (gap = int(n / 2); gap > 0; gap = int(gap / 2))
            for (i = gap + 1; i <= n; i++) {
                t = sorted[i]
                for (k = i; k > gap && sorted[k - gap] > t; k -= gap) sorted[k] = sorted[k - gap]
                sorted[k] = t
            }
    }' >"$work/found"

# The old list and what is new, sorted by name: the layout does not depend
# on the order things were found in.
new=$(sort -u "$order" | comm -13 - <(sort -u "$work/found") | wc -l)
sort -u "$order" "$work/found" >"$work/order"
mv "$work/order" "$order"
printf 'pid1-layout.sh: %d functions on the PID-1 path, %d new\n' "$(wc -l <"$order")" "$new" >&2
echo "$new"
