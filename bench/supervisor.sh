#!/usr/bin/env bash
# Supervisor benchmark: `lameduck run`, as the release binary users get
# (static, from scripts/release.sh), against tini, tini-static and dumb-init.
#
#   bench/supervisor.sh
#
# 1. Start-up: one hyperfine run (no shell in between, warm-up first) of
#    `/bin/true` alone (first and again last, to see drift) and under each
#    supervisor; overhead = mean - the average of the two plain /bin/true means.
# 2. Own memory: each supervisor started in the background over `sleep 1000`;
#    once its child has exec'd and the supervisor is parked in sigtimedwait,
#    VmRSS, RssAnon and RssFile of the supervisor itself (not of the app) are
#    read from /proc/<pid>/status; median of MEM_SAMPLES starts.
# 3. What the PID-1 path pulls in: lameduck's resident KiB by mapping (its
#    text, read-only data and data; heap, stack), from bench/supervisor/pages.py,
#    against the sizes of those segments in the file: the next feature that
#    makes `lameduck run` touch more shows here.
#
# Prints a markdown section and puts it in bench/RESULTS.md between the
# BEGIN/END markers (anything outside them is kept). Raw data: bench/out/.
#
# Knobs (environment): RUNS (1000), WARMUP (50), MEM_SAMPLES (5).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out="$here/out"
results="$here/RESULTS.md"

runs=${RUNS:-1000}
warmup=${WARMUP:-50}
mem_samples=${MEM_SAMPLES:-5}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'supervisor.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------

sudo=""
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: install hyperfine tini dumb-init jq yourself"
    sudo=sudo
fi

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
# Debian's tini package ships both /usr/bin/tini and /usr/bin/tini-static.
[[ -x /usr/bin/tini && -x /usr/bin/tini-static ]] || missing+=(tini)
command -v dumb-init >/dev/null || missing+=(dumb-init)
command -v jq >/dev/null || missing+=(jq)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

true_bin=/bin/true
tini_bin=/usr/bin/tini
tini_static_bin=/usr/bin/tini-static
dumb_init_bin=$(command -v dumb-init)
for b in "$true_bin" "$tini_bin" "$tini_static_bin" "$dumb_init_bin"; do
    [[ -x $b ]] || die "$b is missing"
done

# --- lameduck ----------------------------------------------------------------

# The release binary as shipped: static (musl where the toolchain has it,
# else glibc with crt-static), not position independent, from
# scripts/release.sh.
log "building the release binary (scripts/release.sh)"
mkdir -p "$out"
"$repo/scripts/release.sh" 2>"$out/release.log" || die "scripts/release.sh failed: see $out/release.log"
case $(uname -m) in
    x86_64) lameduck_bin="$repo/dist/lameduck-linux-amd64" ;;
    aarch64) lameduck_bin="$repo/dist/lameduck-linux-arm64" ;;
    *) die "no release binary for $(uname -m)" ;;
esac
[[ -x $lameduck_bin ]] || die "$lameduck_bin was not built"

# Nothing from the caller's environment may change what is measured: a
# KUBERNETES_SERVICE_HOST turns lameduck's drain delay on, LAMEDUCK_* set its
# flags, TINI_* and DUMB_INIT_* those of the peers.
unset KUBERNETES_SERVICE_HOST
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(LAMEDUCK|TINI|DUMB_INIT)_' || true)

mkdir -p "$out"
# Other work on the machine shows up in the timings: note how busy it was.
read -r load1 load5 _ </proc/loadavg

# --- start-up ------------------------------------------------------------------

log "start-up: hyperfine, $warmup warm-up + $runs runs per command"
hyperfine -N --warmup "$warmup" --runs "$runs" \
    --export-json "$out/startup.json" --export-markdown "$out/startup.md" \
    -n "/bin/true" "$true_bin" \
    -n "lameduck run -- /bin/true" "'$lameduck_bin' run -- $true_bin" \
    -n "tini -- /bin/true" "$tini_bin -- $true_bin" \
    -n "tini-static -- /bin/true" "$tini_static_bin -- $true_bin" \
    -n "dumb-init /bin/true" "$dumb_init_bin $true_bin" \
    -n "/bin/true (again, last)" "$true_bin" >&2

# name <TAB> mean ms <TAB> stddev ms <TAB> median ms <TAB> min ms
# name <TAB> mean <TAB> stddev <TAB> median <TAB> min <TAB> CPU (user + system), ms
jq -r '.results[] | [.command, .mean*1000, .stddev*1000, .median*1000, .min*1000, (.user + .system)*1000] | @tsv' \
    "$out/startup.json" >"$out/startup.tsv"

# The baseline: the average of the plain /bin/true runs, first and last.
base=$(awk -F'\t' '$1 ~ /^\/bin\/true/ { s += $2; n++ } END { printf "%.4f", s / n }' "$out/startup.tsv")
# The same for medians and for CPU time (user + system of the command and its
# child): on a busy machine, waits for a CPU inflate the means and spread
# them, less so the medians, and CPU time not at all.
base_median=$(awk -F'\t' '$1 ~ /^\/bin\/true/ { s += $4; n++ } END { printf "%.4f", s / n }' "$out/startup.tsv")
base_cpu=$(awk -F'\t' '$1 ~ /^\/bin\/true/ { s += $6; n++ } END { printf "%.4f", s / n }' "$out/startup.tsv")
drift=$(awk -F'\t' '$1 == "/bin/true" { a = $2 } $1 == "/bin/true (again, last)" { b = $2 } END { printf "%+.3f", b - a }' "$out/startup.tsv")

startup_table=$(awk -F'\t' -v base="$base" -v bm="$base_median" -v bc="$base_cpu" '
    { name[NR] = $1; mean[NR] = $2; sd[NR] = $3; med[NR] = $4; cpu[NR] = $6 }
    $1 == "tini -- /bin/true" { tini = $2; tini_m = $4; tini_c = $6 }
    END {
        t = tini - base; tm = tini_m - bm; tc = tini_c - bc
        print "| command | mean ± σ (ms) | median (ms) | CPU (ms) | overhead: mean (ms) | ÷ tini'"'"'s | overhead: median (ms) | ÷ tini'"'"'s | overhead: CPU (ms) | ÷ tini'"'"'s |"
        print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for (i = 1; i <= NR; i++) {
            if (name[i] ~ /^\/bin\/true/) {
                printf "| `%s` | %.3f ± %.3f | %.3f | %.3f | — | — | — | — | — | — |\n", name[i], mean[i], sd[i], med[i], cpu[i]
            } else {
                o = mean[i] - base; om = med[i] - bm; oc = cpu[i] - bc
                printf "| `%s` | %.3f ± %.3f | %.3f | %.3f | %+.3f | %.2f× | %+.3f | %.2f× | %+.3f | %.2f× |\n", name[i], mean[i], sd[i], med[i], cpu[i], o, o / t, om, om / tm, oc, oc / tc
            }
        }
    }' "$out/startup.tsv")

ov() { awk -F'\t' -v n="$1" -v b="$base" '$1 == n { v = $2 } END { printf "%.3f", v - b }' "$out/startup.tsv"; }
ov_median() { awk -F'\t' -v n="$1" -v b="$base_median" '$1 == n { v = $4 } END { printf "%.3f", v - b }' "$out/startup.tsv"; }
ov_cpu() { awk -F'\t' -v n="$1" -v b="$base_cpu" '$1 == n { v = $6 } END { printf "%.3f", v - b }' "$out/startup.tsv"; }
ov_lameduck=$(ov "lameduck run -- /bin/true")
ov_tini=$(ov "tini -- /bin/true")
ov_tini_static=$(ov "tini-static -- /bin/true")
ov_dumb_init=$(ov "dumb-init /bin/true")

# --- own memory ----------------------------------------------------------------

# Values of the last sample, in KiB.
vmrss=0 rssanon=0 rssfile=0

# A supervisor still running when the script stops (an error, ^C) is killed,
# with its app.
running=""
cleanup() {
    [[ -n $running ]] || return 0
    pkill -KILL -P "$running" 2>/dev/null || true
    kill -KILL "$running" 2>/dev/null || true
}
trap cleanup EXIT

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }

# Starts "$@ sleep 1000" in the background, waits for the supervisor to have
# its child exec'd and to be parked in sigtimedwait (every supervisor here
# waits for signals that way), reads its memory and stops it. $1 is a label
# for the files kept in bench/out.
mem_once() {
    local label=$1 keep=$2
    shift 2
    "$@" /bin/sleep 1000 </dev/null >/dev/null 2>>"$out/memory-$label.stderr" &
    local pid=$! child="" comm="" wchan="" state="" settled=0
    running=$pid
    local deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        [[ -d /proc/$pid ]] || die "$label exited early: see $out/memory-$label.stderr"
        child="" comm="" wchan=""
        read -r child _ <"/proc/$pid/task/$pid/children" || true
        if [[ -n $child ]]; then
            read -r comm <"/proc/$child/comm" 2>/dev/null || true
            read -r wchan <"/proc/$pid/wchan" 2>/dev/null || true
            state=$(awk '$1 == "State:" { print $2 }' "/proc/$pid/status")
            # wchan is "0" where the kernel hides it: then sleeping must do.
            if [[ $comm == sleep && $state == S && ($wchan == *sigtimedwait* || $wchan == 0) ]]; then
                settled=1
                break
            fi
        fi
        sleep 0.01
    done
    ((settled)) || die "$label: no settled child after 10 s (child='$child' comm='$comm' wchan='$wchan')"

    vmrss=$(status_kib VmRSS "$pid")
    rssanon=$(status_kib RssAnon "$pid")
    rssfile=$(status_kib RssFile "$pid")
    if ((keep)); then
        cat "/proc/$pid/smaps_rollup" >"$out/memory-$label.smaps_rollup"
        cat "/proc/$pid/smaps" >"$out/memory-$label.smaps"
        cat "/proc/$pid/status" >"$out/memory-$label.status"
        "$here/supervisor/pages.py" "$pid" >"$out/memory-$label.pages"
    fi

    # Each forwards SIGTERM to the sleep and exits when it is gone.
    kill -TERM "$pid"
    deadline=$((SECONDS + 10))
    while [[ -d /proc/$pid ]] && [[ $(awk '$1 == "State:" { print $2 }' "/proc/$pid/status" 2>/dev/null) != Z ]] && ((SECONDS < deadline)); do
        sleep 0.01
    done
    if [[ -d /proc/$pid ]] && [[ $(awk '$1 == "State:" { print $2 }' "/proc/$pid/status" 2>/dev/null) != Z ]]; then
        log "$label did not stop on SIGTERM: killing it and its child"
        kill -KILL "$pid" "$child" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    running=""
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

labels=(lameduck tini tini-static dumb-init)
declare -A cmd_of=(
    [lameduck]="$lameduck_bin run --"
    [tini]="$tini_bin --"
    [tini-static]="$tini_static_bin --"
    [dumb-init]="$dumb_init_bin"
)
declare -A med_rss med_anon med_file min_rss max_rss

log "own memory: $mem_samples starts per supervisor over sleep 1000"
: >"$out/memory.tsv"
for label in "${labels[@]}"; do
    rm -f "$out/memory-$label.stderr"
    for ((i = 1; i <= mem_samples; i++)); do
        # shellcheck disable=SC2086 # the command line is split on purpose
        mem_once "$label" $((i == 1)) ${cmd_of[$label]}
        printf '%s\t%s\t%s\t%s\n' "$label" "$vmrss" "$rssanon" "$rssfile" >>"$out/memory.tsv"
    done
    med_rss[$label]=$(awk -v l="$label" '$1 == l { print $2 }' "$out/memory.tsv" | median)
    med_anon[$label]=$(awk -v l="$label" '$1 == l { print $3 }' "$out/memory.tsv" | median)
    med_file[$label]=$(awk -v l="$label" '$1 == l { print $4 }' "$out/memory.tsv" | median)
    min_rss[$label]=$(awk -v l="$label" '$1 == l { print $2 }' "$out/memory.tsv" | sort -n | head -1)
    max_rss[$label]=$(awk -v l="$label" '$1 == l { print $2 }' "$out/memory.tsv" | sort -n | tail -1)
done

# Static: no program interpreter and no shared library needed (ldd says
# "statically linked" of a static-pie with exit status 0, so it cannot tell).
linkage() {
    if readelf -lW "$1" | grep -q INTERP || readelf -dW "$1" | grep -q '(NEEDED)'; then echo dynamic; else echo static; fi
}

memory_table=$(
    echo "| supervisor | VmRSS median (KiB) | VmRSS (MiB) | min–max (KiB) | RssAnon (KiB) | RssFile (KiB) | × dumb-init | × tini | binary |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for label in "${labels[@]}"; do
        bin=${cmd_of[$label]%% *}
        size=$(stat -c %s "$bin")
        awk -v l="$label" -v r="${med_rss[$label]}" -v a="${med_anon[$label]}" -v f="${med_file[$label]}" \
            -v lo="${min_rss[$label]}" -v hi="${max_rss[$label]}" \
            -v d="${med_rss[dumb-init]}" -v t="${med_rss[tini]}" -v s="$size" -v k="$(linkage "$bin")" \
            'BEGIN { printf "| %s | %d | %.2f | %d–%d | %d | %d | %.2f× | %.2f× | %.0f KiB, %s |\n", l, r, r / 1024, lo, hi, a, f, r / d, r / t, s / 1024, k }'
    done
)

# --- report --------------------------------------------------------------------

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
first_line() { "$@" 2>&1 | head -n1; }
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n $(git -C "$repo" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    git_rev="$git_rev, with uncommitted changes under crates/"
fi

# One verdict per measure: mean, median and CPU time.
verdict() { awk -v what="$1" -v l="$2" -v t="$3" 'BEGIN {
    if (l <= t) printf "%s met (lameduck %+.3f ms, tini %+.3f ms, %.2f×)", what, l, t, l / t
    else printf "%s missed (lameduck %+.3f ms, tini %+.3f ms, %.3f ms more, %.2f×)", what, l, t, l - t, l / t }'; }
verdict_startup="$(verdict "by the means" "$ov_lameduck" "$ov_tini"); $(verdict "by the medians" \
    "$(ov_median "lameduck run -- /bin/true")" "$(ov_median "tini -- /bin/true")"); $(verdict "by CPU time" \
    "$(ov_cpu "lameduck run -- /bin/true")" "$(ov_cpu "tini -- /bin/true")")"
verdict_memory=$(awk -v l="${med_rss[lameduck]}" -v t="${med_rss[tini]}" -v s="${med_rss[tini-static]}" 'BEGIN {
    if (l <= t) printf "met: lameduck holds %.2f MiB, tini %.2f MiB (%.2f×)", l / 1024, t / 1024, l / t
    else printf "missed: lameduck holds %.2f MiB, tini %.2f MiB (%.2f×, %d KiB more)", l / 1024, t / 1024, l / t, l - t
    if (l <= s) printf "; tini-static'"'"'s %.2f MiB reached too (%.2f×)", s / 1024, l / s
    else printf "; tini-static holds %.2f MiB (lameduck %.2f×, %d KiB more)", s / 1024, l / s, l - s }')
split_lameduck=$(awk -v r="${med_rss[lameduck]}" -v a="${med_anon[lameduck]}" -v f="${med_file[lameduck]}" \
    'BEGIN { printf "%d KiB anonymous and %d KiB file-backed of %d KiB (medians)", a, f, r }')
# What the PID-1 path pulls in: resident KiB by mapping (first sample), the
# binary's own segments against their size (pages.py).
pulls_in=$(awk -F'\t' '
    NF == 3 { printf "%s%s %d of %d KiB", sep, $1, $2, $3; sep = ", " }
    NF == 2 && $1 !~ /^#/ { printf "%s%s %d KiB", sep, $1, $2; sep = ", " }
    /^#/ { exit }' "$out/memory-lameduck.pages")

# The code on the PID-1 path, by crate: the functions scripts/release.sh
# linked first (its list and the unstripped binary, where it made them).
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" | jq -r .target_directory)
order="$target_dir/pid1-layout/$(uname -m)-unknown-linux-gnu.order"
unstripped="$target_dir/$(uname -m)-unknown-linux-gnu/release/lameduck"
if [[ -s $order && -x $unstripped ]]; then
    "$here/supervisor/pages.py" --path "$order" "$unstripped" >"$out/path-by-crate.tsv"
    path_by_crate=$(awk -F'\t' '
        NR == 1 { printf "%s %.0f KiB: ", $1, $2 / 1024; next }
        NR <= 9 { printf "%s%s %.1f KiB", sep, $1, $2 / 1024; sep = ", " }
        NR > 9 { rest += $2 }
        END { if (rest) printf ", the rest %.1f KiB", rest / 1024 }' "$out/path-by-crate.tsv")
else
    path_by_crate="not known (the release link was not ordered: see scripts/release.sh)"
fi

section=$(
    cat <<EOF
<!-- BEGIN bench/supervisor.sh: generated, rerun the script to update -->
## Supervisor: start-up and memory

Reproduce: \`bench/supervisor.sh\` (installs hyperfine, tini and dumb-init from
Debian when missing, builds the release binary with \`scripts/release.sh\`,
raw data in \`bench/out/\`).

- Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1), kernel $(uname -r) ($(uname -m)); run on $(date -u '+%Y-%m-%d %H:%M UTC'), load average $load1 (1 min) / $load5 (5 min) at the start.
- lameduck: the release binary of \`scripts/release.sh\`, $(first_line "$lameduck_bin" --version) (commit $git_rev), $(first_line rustc --version), release profile (LTO, 1 codegen unit, stripped), $(file -b "$lameduck_bin" | cut -d, -f1,4 | sed 's/ELF 64-bit LSB //'), $(stat -c %s "$lameduck_bin" | awk '{ printf "%.1f MiB", $1 / 1048576 }').
- Peers: tini and tini-static $(first_line "$tini_bin" --version | sed 's/^tini version //') (Debian tini $(pkg_version tini)), dumb-init $(first_line "$dumb_init_bin" --version | sed 's/^dumb-init //') (Debian $(pkg_version dumb-init)); $(first_line hyperfine --version).

### Start-up

\`hyperfine -N --warmup $warmup --runs $runs\`: every command run directly (no shell), output to
/dev/null, stdin /dev/null. lameduck at its default log level (info lines on stderr).
Overhead is over the average of the two plain \`/bin/true\` runs (run first and
last; the last one's mean differs from the first's by $drift ms, a measure of drift
during the run), for the means, the medians and CPU time (user + system of the
command and its child, which waiting for a CPU on a busy machine does not inflate).

$startup_table

### Own memory

The supervisor's own resident memory (\`/proc/<supervisor>/status\`, not the app's)
while it supervises \`sleep 1000\`, read once the child has exec'd and the
supervisor waits in sigtimedwait; median of $mem_samples starts.

$memory_table

### Reading

- Start-up, aim "no slower than tini": $verdict_startup. tini-static adds $ov_tini_static ms, dumb-init $ov_dumb_init ms.
- Own memory, aim "no more than tini, towards tini-static": $verdict_memory.
- lameduck's VmRSS: $split_lameduck.
- What the PID-1 path pulls in (resident KiB by mapping, first sample; the binary's segments against their size in the file): $pulls_in.
- The code PID 1 runs (\`scripts/pid1-layout.sh\`'s list, linked first; bytes of those functions by crate, the C library with every CPU variant of the string functions it uses): $path_by_crate.
<!-- END bench/supervisor.sh -->
EOF
)

printf '\n%s\n' "$section"

printf '%s\n' "$section" >"$out/section.md"
begin='<!-- BEGIN bench/supervisor.sh'
end='<!-- END bench/supervisor.sh -->'
if [[ -f $results ]] && grep -qF "$begin" "$results" && grep -qF "$end" "$results"; then
    # Replace the generated block, keep everything around it.
    awk -v b="$begin" -v e="$end" -v file="$out/section.md" '
        index($0, b) == 1 { while ((getline line < file) > 0) print line; skip = 1; next }
        skip { if (index($0, e) == 1) skip = 0; next }
        { print }' "$results" >"$results.tmp"
    mv "$results.tmp" "$results"
elif [[ -f $results ]]; then
    printf '\n%s\n' "$section" >>"$results"
else
    printf '# Benchmark results\n\n%s\n' "$section" >"$results"
fi
log "results: $results (raw data in $out)"
