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
# How: valgrind's lackey tool records every block of code the binary runs
# for `run -- /bin/true` (parse, log, spawn, wait, reap, exit: the path PID 1
# takes, with the signal loop); each address is mapped to its symbol in the
# binary's symbol table. The list is in address order, so it is the same for
# the same binary. Needs valgrind; without it, says so and writes an empty
# list (the binary is then linked as before, only heavier as PID 1).
set -euo pipefail
export LC_ALL=C

bin=${1:?usage: pid1-layout.sh UNSTRIPPED-BINARY ORDER-FILE}
order=${2:?usage: pid1-layout.sh UNSTRIPPED-BINARY ORDER-FILE}

if ! command -v valgrind >/dev/null; then
    printf 'pid1-layout.sh: valgrind not found (apt-get install valgrind): PID 1 layout not ordered\n' >&2
    : >"$order"
    exit 0
fi
nm "$bin" >/dev/null 2>&1 || { printf 'pid1-layout.sh: %s has no symbols\n' "$bin" >&2; exit 1; }

trace=$(mktemp)
trap 'rm -f "$trace"' EXIT
# A clean environment: nothing of the caller's may change the path taken.
env -i PATH=/usr/bin:/bin valgrind --tool=lackey --trace-superblocks=yes --log-file="$trace" \
    "$bin" run -- /bin/true </dev/null >/dev/null 2>&1 ||
    { printf 'pid1-layout.sh: valgrind failed: see %s\n' "$trace" >&2; trap - EXIT; exit 1; }

# Superblock addresses, then the text symbols (address, size, name) sorted by
# address; each block counts for the symbol that contains it.
{
    awk '$1 == "SB" { print "B", $2 }' "$trace" | sort -u
    nm -S -n --defined-only "$bin" | awk 'NF == 4 && $3 ~ /^[tTwW]$/ { print "S", $1, $2, $4 }'
} | awk '
    function hex(s,    i, c, v) {
        v = 0
        for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", tolower(substr(s, i, 1))) - 1; v = v * 16 + c }
        return v
    }
    $1 == "B" { blocks[++nb] = hex($2); next }
    $1 == "S" { addr[++ns] = hex($2); size[ns] = hex($3); name[ns] = $4 }
    END {
        # Both lists ascending: one merge pass.
        asort_blocks(nb)
        j = 1
        for (i = 1; i <= nb; i++) {
            b = sorted[i]
            while (j < ns && addr[j + 1] <= b) j++
            if (addr[j] <= b && b < addr[j] + (size[j] > 0 ? size[j] : 1) && !(j in seen)) { seen[j] = 1; list[++nl] = j }
        }
        # In address order already: blocks ascending, j only grows.
        for (i = 1; i <= nl; i++) print name[list[i]]
    }
    function asort_blocks(n,    i, k, t, gap) {
        for (i = 1; i <= n; i++) sorted[i] = blocks[i]
        # Shell sort: a few thousand blocks.
        for (gap = int(n / 2); gap > 0; gap = int(gap / 2))
            for (i = gap + 1; i <= n; i++) {
                t = sorted[i]
                for (k = i; k > gap && sorted[k - gap] > t; k -= gap) sorted[k] = sorted[k - gap]
                sorted[k] = t
            }
    }' >"$order"

printf 'pid1-layout.sh: %d functions on the PID-1 path\n' "$(wc -l <"$order")" >&2
