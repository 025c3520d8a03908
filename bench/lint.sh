#!/usr/bin/env bash
# Linter benchmark: lameduck lint against checkov on one stream of
# Kubernetes manifests.
#
#   bench/lint.sh
#
# 1. bench/lint/gen_manifests.py writes DOCS documents (3 Deployments for
#    every 2 Services, as `helm template` prints an umbrella chart, about
#    2 KB each) to bench/out/lint/stream.yaml, the same bytes for every tool.
# 2. lameduck: `lameduck lint --format json -` with the stream on standard
#    input, RUNS times; once more with the stream as a file argument, as
#    checkov reads it.
# 3. checkov: `checkov -f stream.yaml --framework kubernetes --check
#    CKV_K8S_8,CKV_K8S_9` (its liveness and readiness probe checks, the only
#    ones about probes or termination: it has none on preStop or the grace
#    period), CHECKOV_RUNS times. checkov cannot read standard input, so it
#    reads the file.
# Each run under `/usr/bin/time -v`: wall time (date +%s%N around it),
# user+system CPU time and maximum RSS. Medians; documents/s = DOCS / wall.
#
# Prints a markdown section and puts it in bench/RESULTS.md between the
# BEGIN/END markers (anything outside them is kept). Raw data: bench/out/lint/.
#
# Knobs (environment): DOCS (10000), RUNS (5), CHECKOV_RUNS (3), SEED (1),
# CHECKOV_VENV (/tmp/lameduck-bench/checkov-venv: made with pip when it has
# no checkov), CHECKOV_VERSION (latest), LAMEDUCK_BIN (default: built with
# `cargo build --release -p lameduck-cli`), LAMEDUCK_BEFORE_BIN (another
# lameduck, an earlier commit's, measured the same way in the same run, as
# a before/after), NO_RESULTS=1 leaves RESULTS.md alone.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out="$here/out/lint"
results="$here/RESULTS.md"

docs=${DOCS:-10000}
runs=${RUNS:-5}
checkov_runs=${CHECKOV_RUNS:-3}
seed=${SEED:-1}
venv=${CHECKOV_VENV:-/tmp/lameduck-bench/checkov-venv}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'lint.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------

missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v jq >/dev/null || missing+=(jq)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
if ((${#missing[@]})); then
    sudo=""
    [[ $EUID -eq 0 ]] || sudo=sudo
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

checkov="$venv/bin/checkov"
if [[ ! -x $checkov ]]; then
    log "installing checkov${CHECKOV_VERSION:+ $CHECKOV_VERSION} from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "checkov${CHECKOV_VERSION:+==$CHECKOV_VERSION}"
fi
[[ -x $checkov ]] || die "no checkov in $venv"

if [[ -n ${LAMEDUCK_BIN:-} ]]; then
    lameduck_bin=$LAMEDUCK_BIN
else
    log "building lameduck (release)"
    cargo build --release -q -p lameduck-cli --manifest-path "$repo/Cargo.toml"
    target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" | jq -r .target_directory)
    lameduck_bin="$target_dir/release/lameduck"
fi
[[ -x $lameduck_bin ]] || die "$lameduck_bin was not built"
before_bin=${LAMEDUCK_BEFORE_BIN:-}
[[ -z $before_bin || -x $before_bin ]] || die "LAMEDUCK_BEFORE_BIN=$before_bin is not executable"
# Nothing from the caller's environment may change what is measured.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(LAMEDUCK|CHECKOV|BC)_' || true)

# --- input -------------------------------------------------------------------

mkdir -p "$out"
stream="$out/stream.yaml"
log "generating $docs documents"
python3 "$here/lint/gen_manifests.py" "$docs" "$seed" >"$stream"
bytes=$(stat -c %s "$stream")
lines=$(wc -l <"$stream")
deployments=$(grep -c '^kind: Deployment$' "$stream")
# The largest document: what the linter's memory should follow.
largest=$(python3 -c 'import re, sys; print(max(len(d.encode()) for d in re.split(r"^---$", open(sys.argv[1]).read(), flags=re.M)))' "$stream")
services=$(grep -c '^kind: Service$' "$stream")
read -r load1 load5 _ </proc/loadavg

# --- runs --------------------------------------------------------------------

# measure NAME STDIN OUTFILE CMD...: one run; appends "name wall_s cpu_s rss_kib"
# to runs.tsv. Exit statuses 0 and 1 (findings) are fine; 2 and up are not.
measure() {
    local name=$1 input=$2 result=$3
    shift 3
    local t0 t1 status=0
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$out/time.txt" "$@" <"$input" >"$result" 2>"$out/stderr.txt" || status=$?
    t1=$(date +%s%N)
    if ((status > 1)); then
        cat "$out/stderr.txt" >&2
        die "$name exited with $status"
    fi
    awk -v n="$name" -v w="$(((t1 - t0) / 1000))" -F': ' '
        /User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { r = $2 }
        END { printf "%s\t%.3f\t%.2f\t%d\n", n, w / 1e6, u + s, r }' "$out/time.txt" >>"$out/runs.tsv"
}

: >"$out/runs.tsv"
log "lameduck: $runs runs from standard input, 1 from the file"
for ((i = 0; i < runs; i++)); do
    measure lameduck-stdin "$stream" "$out/lameduck.json" "$lameduck_bin" lint --format json -
done
measure lameduck-file /dev/null "$out/lameduck-file.json" "$lameduck_bin" lint --format json "$stream"
if [[ -n $before_bin ]]; then
    log "lameduck before ($before_bin): $runs runs from standard input"
    for ((i = 0; i < runs; i++)); do
        measure lameduck-before-stdin "$stream" "$out/lameduck-before.json" "$before_bin" lint --format json -
    done
fi
log "checkov: $checkov_runs runs (each takes minutes)"
for ((i = 0; i < checkov_runs; i++)); do
    measure checkov /dev/null "$out/checkov.json" "$checkov" -f "$stream" --framework kubernetes \
        --check CKV_K8S_8,CKV_K8S_9 --skip-download -o json --quiet
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$out/runs.tsv" | median; }
range() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { if (lo == "" || $c < lo) lo = $c; if ($c > hi) hi = $c } END { printf "%s–%s", lo, hi }' "$out/runs.tsv"; }
for name in lameduck-stdin lameduck-file checkov ${before_bin:+lameduck-before-stdin}; do
    declare "wall_${name//-/_}=$(col "$name" 2)" "cpu_${name//-/_}=$(col "$name" 3)" "rss_${name//-/_}=$(col "$name" 4)"
done

# What each found: the tools read everything, or the comparison means nothing.
lameduck_findings=$(jq -r 'group_by(.rule) | map("\(.[0].rule) \(length)") | join(", ")' "$out/lameduck.json")
cmp -s <(jq -S . "$out/lameduck.json") <(jq -S 'map(.path = "-")' "$out/lameduck-file.json") ||
    die "lameduck found other things in the file than on standard input"
checkov_summary=$(jq -r '.summary | "\(.resource_count) resources, \(.passed) passed, \(.failed) failed, \(.parsing_errors) parsing errors"' "$out/checkov.json")
checkov_probe_fails=$(jq -r '[.results.failed_checks[].check_id] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$out/checkov.json")

# --- report --------------------------------------------------------------------

rate() { awk -v d="$docs" -v w="$1" 'BEGIN { printf "%.0f", d / w }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
row() {
    local label=$1 name=$2
    local w c r
    w=$(col "$name" 2) c=$(col "$name" 3) r=$(col "$name" 4)
    awk -v l="$label" -v w="$w" -v rg="$(range "$name" 2)" -v c="$c" -v r="$r" -v d="$docs" \
        -v cw="$wall_checkov" -v cr="$rss_checkov" \
        'BEGIN { printf "| %s | %.3f | %s | %.2f | %.0f | %.1f | %.1f× | %.2f× |\n", l, w, rg, c, d / w, r / 1024, cw / w, r / cr }'
}
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n $(git -C "$repo" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    git_rev="$git_rev, with uncommitted changes under crates/"
fi
speedup=$(ratio "$wall_checkov" "$wall_lameduck_stdin")
verdict=$(awk -v s="$speedup" 'BEGIN { if (s >= 50) printf "met: %.1f× checkov'"'"'s documents/s", s; else printf "missed: %.1f× checkov'"'"'s documents/s, %.1f× short of 50×", s, 50 / s }')

section=$(
    cat <<EOS
<!-- BEGIN bench/lint.sh: generated, rerun the script to update -->
## Linter: lameduck lint against checkov on $docs manifests

Reproduce: \`bench/lint.sh\` (installs checkov from PyPI into a venv under /tmp,
builds lameduck in release mode, raw data in \`bench/out/lint/\`).

- Machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), kernel $(uname -r) ($(uname -m)); run on $(date -u '+%Y-%m-%d %H:%M UTC'), load average $load1 (1 min) / $load5 (5 min) at the start; shared with other work, not pinned.
- Input: \`bench/lint/gen_manifests.py $docs $seed\`: $docs documents ($deployments Deployments, $services Services), $lines lines, $(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), one YAML stream with \`# Source:\` comments as \`helm template\` prints it.
- lameduck: $("$lameduck_bin" --version 2>&1 | head -n1) (commit $git_rev), release profile (LTO, 1 codegen unit, stripped); \`lameduck lint --format json - < stream.yaml\`, $runs runs; and \`lameduck lint --format json stream.yaml\`, 1 run. Found: $lameduck_findings (the same from the file).
- checkov: $("$checkov" --version 2>&1 | tail -n1), $("$venv/bin/python" --version); \`checkov -f stream.yaml --framework kubernetes --check CKV_K8S_8,CKV_K8S_9 --skip-download -o json --quiet\`, $checkov_runs runs. checkov cannot read standard input: it reads the same bytes from the file. Found: $checkov_summary ($checkov_probe_fails).
- Measured: wall time (\`date +%s%N\` around the run), user+system CPU and maximum RSS from \`/usr/bin/time -v\`; medians.

| run | wall (s) | wall min–max (s) | CPU (s) | documents/s | max RSS (MiB) | speed × checkov | RSS ÷ checkov's |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
$(row "lameduck, standard input" lameduck-stdin)
$(row "lameduck, file" lameduck-file)
$(row "checkov, file" checkov)
$(if [[ -n $before_bin ]]; then row "lameduck before (LAMEDUCK_BEFORE_BIN), standard input" lameduck-before-stdin; fi)

Aim "at least 50× checkov's documents/s": $verdict.

Memory: the largest document is $(awk -v b="$largest" 'BEGIN { printf "%.1f KiB", b / 1024 }'); lameduck's peak RSS from standard input is $(awk -v r="$rss_lameduck_stdin" 'BEGIN { printf "%.1f MiB", r / 1024 }') ($(awk -v r="$rss_lameduck_stdin" -v b="$largest" 'BEGIN { printf "%.0f", r * 1024 / b }')× that document, $(awk -v r="$rss_lameduck_stdin" -v b="$bytes" 'BEGIN { printf "%.2f", r * 1024 / b }')× the input)$(if [[ -n $before_bin ]]; then awk -v r="$rss_lameduck_before_stdin" -v w="$wall_lameduck_before_stdin" -v a="$wall_lameduck_stdin" 'BEGIN { printf "; before: %.1f MiB, and this run takes %.2f× its wall time", r / 1024, a / w }'; fi).
<!-- END bench/lint.sh -->
EOS
)

printf '\n%s\n' "$section"
printf '%s\n' "$section" >"$out/section.md"
[[ -n ${NO_RESULTS:-} ]] && exit 0
begin='<!-- BEGIN bench/lint.sh'
end='<!-- END bench/lint.sh -->'
if [[ -f $results ]] && grep -qF "$begin" "$results" && grep -qF "$end" "$results"; then
    awk -v b="$begin" -v e="$end" -v file="$out/section.md" '
        index($0, b) == 1 { while ((getline line < file) > 0) print line; skip = 1; next }
        skip { if (index($0, e) == 1) skip = 0; next }
        { print }' "$results" >"$results.tmp"
    mv "$results.tmp" "$results"
else
    printf '\n%s\n' "$section" >>"$results"
fi
log "results: $results (raw data in $out)"
