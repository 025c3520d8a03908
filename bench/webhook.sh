#!/usr/bin/env bash
# Webhook benchmark: admission reviews per second and their latency over
# HTTPS with keep-alive, and the webhook's resident memory.
#
#   bench/webhook.sh
#
# The client is h2load (HTTP/2 over TLS, ALPN h2), POSTing the same
# AdmissionReview (crates/lameduck-cli/tests/webhook/reviews/command.json: a
# pod of a Deployment, opted in, that gets injected) with `-d`. Two targets
# on the same certificate (ECDSA P-256, from `lameduck webhook certs`):
#   - lameduck: `lameduck webhook`, default logging (to a file);
#   - nginx: `worker_processes 1`, answering every POST with the webhook's own
#     answer to that review as a constant (`return 200`): TLS and HTTP/2
#     alone, the floor any webhook server stands on. The ratio to it is the
#     cost of reading the pod, deciding, patching and checking the patch.
# Two runs per target and round:
#   - rate: RATE reviews/s (CONNS connections, `--rps` each), the load of a
#     busy cluster's pod creations many times over: p50, p99, p99.9 of
#     h2load's per-request log (`--log-file`), against the aim p99 < 2 ms;
#   - max: as fast as it goes (CONNS connections, STREAMS streams each):
#     reviews/s.
# The server runs on CPU WEBHOOK_CPU, h2load on LOAD_CPU (taskset). Medians
# over ROUNDS rounds. Memory: the webhook's VmRSS once started, after all
# runs, and its peak (VmHWM), from /proc/<pid>/status.
#
# Prints a markdown section and puts it in bench/RESULTS.md between the
# BEGIN/END markers of this script (anything outside them is kept). Raw
# data: bench/out/webhook/. Every daemon started is stopped on exit.
#
# Knobs (environment): DURATION (10) seconds per run, ROUNDS (3), RATE (1000),
# CONNS (10), STREAMS (10), WARMUP (2) seconds, WEBHOOK_CPU (0), LOAD_CPU (1),
# PORT_BASE (18500), LAMEDUCK_BIN (${CARGO_TARGET_DIR:-target}/release/lameduck,
# brought up to date with cargo first unless NO_BUILD=1; one given is used as
# it is), RESULTS_FILE (bench/RESULTS.md),
# NO_RESULTS=1 to leave it alone.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
raw="$here/out/webhook"
results=${RESULTS_FILE:-$here/RESULTS.md}
duration=${DURATION:-10}
rounds=${ROUNDS:-3}
rate=${RATE:-1000}
conns=${CONNS:-10}
streams=${STREAMS:-10}
warmup=${WARMUP:-2}
webhook_cpu=${WEBHOOK_CPU:-0}
load_cpu=${LOAD_CPU:-1}
port_base=${PORT_BASE:-18500}
review="$repo/crates/lameduck-cli/tests/webhook/reviews/command.json"

read -r load1 load5 _ </proc/loadavg
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')

log() { printf 'bench/webhook.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

sudo=
if [[ $(id -u) != 0 ]]; then
    sudo=sudo
fi
missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # nginx's package starts its service on install unless policy-rc.d
    # forbids it; this benchmark runs its own instance.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        made_policy=1
    fi
    $sudo apt-get update -qq
    status=0
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
    ((made_policy)) && $sudo rm -f "$policy"
    ((status == 0)) || die "apt-get install ${missing[*]} failed"
fi
taskset -c "$webhook_cpu" true 2>/dev/null || die "cannot pin to CPU $webhook_cpu"
taskset -c "$load_cpu" true 2>/dev/null || die "cannot pin to CPU $load_cpu"

bin=${LAMEDUCK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/lameduck}
# The binary of these sources: cargo does nothing when it is up to date.
if [[ -z ${LAMEDUCK_BIN:-} && ${NO_BUILD:-0} != 1 ]]; then
    log "building lameduck (release)"
    (cd "$repo" && cargo build --release --locked -p lameduck-cli)
fi
"$bin" webhook --help >/dev/null 2>&1 || die "$bin has no webhook subcommand"

rm -rf "$raw"
mkdir -p "$raw/nginx"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$bin" -q webhook certs --service lameduck-webhook --namespace lameduck --out "$raw/certs" >/dev/null
hook_port=$((port_base + 1))
admin_port=$((port_base + 2))
nginx_port=$((port_base + 3))
taskset -c "$webhook_cpu" "$bin" webhook --listen "127.0.0.1:$hook_port" \
    --tls-cert "$raw/certs/tls.crt" --tls-key "$raw/certs/tls.key" \
    --admin "127.0.0.1:$admin_port" 2>"$raw/webhook.log" &
hook_pid=$!
pids+=("$hook_pid")
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$admin_port/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$admin_port/ready" >/dev/null || die "the webhook did not start: $(cat "$raw/webhook.log")"
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$hook_pid/status"; }
rss_start=$(rss VmRSS)

# The webhook's own answer, served as a constant by nginx.
curl -sS --cacert "$raw/certs/ca.crt" --resolve "lameduck-webhook.lameduck.svc:$hook_port:127.0.0.1" \
    --data-binary "@$review" -o "$raw/answer.json" "https://lameduck-webhook.lameduck.svc:$hook_port/mutate"
grep -q '"patch"' "$raw/answer.json" || die "the review was not injected: $(cat "$raw/answer.json")"
cat >"$raw/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $raw/nginx/nginx.pid;
error_log $raw/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $raw/nginx;
    server {
        listen 127.0.0.1:$nginx_port ssl http2;
        ssl_certificate $raw/certs/tls.crt;
        ssl_certificate_key $raw/certs/tls.key;
        location / {
            default_type application/json;
            return 200 '$(cat "$raw/answer.json")';
        }
    }
}
EOF
taskset -c "$webhook_cpu" /usr/sbin/nginx -c "$raw/nginx/nginx.conf" -p "$raw/nginx" &
pids+=("$!")
for _ in $(seq 100); do
    curl -sfk --data-binary "@$review" "https://127.0.0.1:$nginx_port/mutate" -o /dev/null && break
    sleep 0.1
done

declare -A port_of=([lameduck]=$hook_port [nginx]=$nginx_port)
targets=(lameduck nginx)
# h2load over TLS (it does not verify the certificate), the review as body.
load() { # target log-file extra-args...
    local target=$1 logf=$2
    shift 2
    taskset -c "$load_cpu" h2load -H 'content-type: application/json' -d "$review" \
        --log-file "$logf" "$@" "https://127.0.0.1:${port_of[$target]}/mutate"
}
# p50 p99 p99.9 in ms, and the count of non-2xx, from an h2load log.
percentiles() {
    awk -F'\t' '$2 !~ /^2/ { bad++ } { print $3 } END { print "bad", bad + 0 > "/dev/stderr" }' "$1" 2>"$1.bad" |
        sort -n | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "- - -"; exit }
            i50 = int(NR * 0.50); i99 = int(NR * 0.99); i999 = int(NR * 0.999)
            if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i999 < 1) i999 = 1
            printf "%.3f %.3f %.3f\n", v[i50] / 1000, v[i99] / 1000, v[i999] / 1000 }'
}
per_conn=$(((rate + conns - 1) / conns))
# The webhook's own view: its review_duration histogram, as "le count" lines.
buckets() {
    curl -sf "http://127.0.0.1:$admin_port/metrics" |
        sed -n 's/^lameduck_webhook_review_duration_seconds_bucket{le="\([^"]*\)"} \([0-9]*\).*/\1 \2/p'
}
# The upper bound (ms) of the bucket holding the 99th percentile of the
# reviews between two snapshots.
server_p99() {
    paste -d' ' "$1" "$2" | awk '{ le[NR] = $1; n[NR] = $4 - $2 } END {
        total = n[NR]; for (i = 1; i <= NR; i++) if (n[i] >= total * 0.99) {
            if (le[i] == "+Inf") print "inf"; else printf "%g\n", le[i] * 1000; exit } }'
}
if ((warmup > 0)); then
    for t in "${targets[@]}"; do
        load "$t" /dev/null -c "$conns" -m "$streams" -D "$warmup" >/dev/null
    done
fi
: >"$raw/runs.tsv"
for r in $(seq "$rounds"); do
    for t in "${targets[@]}"; do
        logf="$raw/rate-$t-$r.log"
        [[ $t == lameduck ]] && buckets >"$raw/buckets-before"
        load "$t" "$logf" -c "$conns" -m 1 --rps "$per_conn" -D "$duration" >"$raw/rate-$t-$r.out"
        server="-"
        if [[ $t == lameduck ]]; then
            buckets >"$raw/buckets-after"
            server=$(server_p99 "$raw/buckets-before" "$raw/buckets-after")
            printf '%s\n' "$server" >>"$raw/server-p99"
        fi
        read -r p50 p99 p999 < <(percentiles "$logf")
        bad=$(awk '{ print $2 }' "$logf.bad")
        [[ $p50 != - ]] || die "no requests logged for $t: $(cat "$raw/rate-$t-$r.out")"
        done_rate=$(awk -v d="$duration" 'END { printf "%.0f", NR / d }' "$logf")
        rm -f "$logf"
        load "$t" /dev/null -c "$conns" -m "$streams" -D "$duration" >"$raw/max-$t-$r.out"
        max=$(awk '/^finished in/ { gsub(",", ""); print $4 }' "$raw/max-$t-$r.out")
        # Requests that failed, or answered other than 2xx.
        max_bad=$(awk '/^requests:/ { gsub(",", ""); f = $10 + $12 + $14 } /^status codes:/ { gsub(",", ""); s = $5 + $7 + $9 } END { print f + s }' "$raw/max-$t-$r.out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$r" "$done_rate" "$p50" "$p99" "$p999" "$bad" "$max" "$max_bad" >>"$raw/runs.tsv"
        log "round $r $t: ${done_rate}/s p50 ${p50} ms p99 ${p99} ms p99.9 ${p999} ms (non-2xx $bad; webhook's own p99 <= $server ms); max ${max} reviews/s (non-2xx $max_bad)"
    done
done
read -r end1 end5 _ </proc/loadavg
rss_end=$(rss VmRSS)
rss_peak=$(rss VmHWM)

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v t="$1" -v c="$2" '$1 == t { print $c }' "$raw/runs.tsv"; }
declare -A m
for t in "${targets[@]}"; do
    for c in 3 4 5 6 8; do m[$t,$c]=$(col "$t" "$c" | median); done
    m[$t,bad]=$(col "$t" 7 | awk '{ s += $1 } END { print s + 0 }')
    m[$t,maxbad]=$(col "$t" 9 | awk '{ s += $1 } END { print s + 0 }')
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "–" }'; }
rows=""
for t in "${targets[@]}"; do
    rows+="| $t | ${m[$t,3]} | ${m[$t,4]} | ${m[$t,5]} | ${m[$t,6]} | $(ratio "${m[$t,5]}" "${m[nginx,5]}") | ${m[$t,bad]} | ${m[$t,8]} | $(ratio "${m[$t,8]}" "${m[nginx,8]}") | ${m[$t,maxbad]} |"$'\n'
done
server_p99_median=$(sort -g "$raw/server-p99" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
verdict=$(awk -v p="${m[lameduck,5]}" -v r="${m[lameduck,3]}" -v want="$rate" 'BEGIN {
    ok = (p < 2 && r >= want * 0.98)
    printf "%s: p99 %.3f ms at %d reviews/s served (of %d asked), as h2load sees it", ok ? "met" : "missed", p, r, want }')
verdict+="; the webhook's own p99 is at most ${server_p99_median:-?} ms"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
section=$(cat <<EOF
<!-- BEGIN bench/webhook.sh: generated, rerun the script to update -->
## Webhook: reviews per second, latency, memory

Reproduce: \`bench/webhook.sh\` (installs h2load and nginx from Debian when
missing, builds lameduck in release mode, raw data in \`bench/out/webhook/\`).

- Machine: $(nproc) CPUs, $cpu_model, kernel $(uname -r); run on $started_at, load average $load1 / $load5 at the start, $end1 / $end5 at the end (other work on the machine shares both cores: compare the two targets of one run, not runs of different days).
- lameduck: $("$bin" --version) (commit $commit), release profile; \`lameduck webhook\` on one core (CPU $webhook_cpu), default logging to a file.
- Peer: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///'), \`worker_processes 1\` on the same core, the same certificate, answering with the webhook's own answer as a constant: the cost of TLS and HTTP/2 alone.
- Client: $(h2load --version | head -1) on CPU $load_cpu, HTTP/2 over TLS, keep-alive, the review \`tests/webhook/reviews/command.json\` ($(wc -c <"$review") bytes, a pod that gets injected; the answer is $(wc -c <"$raw/answer.json") bytes) POSTed with \`-d\`.
- Runs: ${duration} s each, ${rounds} rounds, medians. Rate: $conns connections at $per_conn reviews/s each (\`--rps\`), one stream each; percentiles from h2load's per-request log. Max: $conns connections × $streams streams.

| target | served at ${rate}/s asked | p50 (ms) | p99 (ms) | p99.9 (ms) | p99 ÷ nginx | non-2xx | max reviews/s | ÷ nginx | non-2xx |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows}
The webhook's own view of the same rate runs (its \`lameduck_webhook_review_duration_seconds\`
histogram, from the request's head to its answer, body read included): 99% of the reviews
took at most ${server_p99_median} ms (median over the rounds of the bucket bound holding the 99th
percentile). The rest of the client's time is spent waiting: h2load's \`--rps\` sends each
connection's requests in bursts when its own loop falls behind, and a burst queues on the
webhook's single core.

Memory of the webhook (\`/proc/<pid>/status\`): VmRSS ${rss_start} KiB once started, ${rss_end} KiB after all runs, peak (VmHWM) ${rss_peak} KiB.

### Reading

- Aim "p99 under 2 ms at ${rate} reviews/s on one core": ${verdict}. The API server's default budget for a webhook call is 10 s; the manifests give this one 5 s.
<!-- END bench/webhook.sh -->
EOF
)
printf '\n%s\n' "$section"
printf '%s\n' "$section" >"$raw/section.md"
if [[ ${NO_RESULTS:-0} == 1 ]]; then
    log "NO_RESULTS=1: $results left alone (section in $raw/section.md)"
    exit 0
fi
begin='<!-- BEGIN bench/webhook.sh'
end='<!-- END bench/webhook.sh -->'
if [[ -f $results ]] && grep -qF "$begin" "$results" && grep -qF "$end" "$results"; then
    awk -v b="$begin" -v e="$end" -v file="$raw/section.md" '
        index($0, b) == 1 { while ((getline line < file) > 0) print line; skip = 1; next }
        skip { if (index($0, e) == 1) skip = 0; next }
        { print }' "$results" >"$results.tmp"
    mv "$results.tmp" "$results"
else
    printf '\n%s\n' "$section" >>"$results"
fi
log "results: $results (raw data in $raw)"
