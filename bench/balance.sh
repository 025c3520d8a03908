#!/usr/bin/env bash
# Balancer benchmark: `lameduck balance` (TCP mode) against HAProxy `mode tcp`
# with `balance leastconn`, over the same two backends, in the same run.
#
#   bench/balance.sh
#
# The two backends are nginx instances serving a 100-byte body from memory
# (bench/proxy/upstream.nginx.conf), on 127.0.0.1. The backends and the
# balancer share one core (taskset -c PROXY_CPU), the load generator has the
# other (taskset -c LOAD_CPU), as in bench/proxy.sh. lameduck reads the two
# backends from an EndpointSlice file; HAProxy from its config. Both retry a
# failed connect (HAProxy: `retries 2`, `option redispatch`).
#
# 1. Keep-alive: wrk, HTTP/1.1 keep-alive connections through the balancer
#    (requests/s, p50, p99).
# 2. New connections: wrk with `Connection: close`, so every request is a new
#    client connection and a new backend connection (connections/s = req/s).
# 3. Memory of held idle connections: a fresh HAProxy and a fresh lameduck
#    each get IDLE_CONNS client connections (bench/proxy/idle_conns.py), one
#    `GET /` answered on each, all then kept open and idle (each holding a
#    backend connection); VmRSS after less VmRSS before.
# ROUNDS rounds, each running every measurement against both balancers in
# turn (HAProxy first in odd rounds, lameduck first in even ones); medians
# are reported, with HAProxy as the reference.
#
# Prints a markdown section and puts it in bench/RESULTS.md between the
# BEGIN/END markers of this script. Raw data: bench/out/balance/. Every
# daemon the script starts is stopped when it exits, on error and on ^C too.
#
# Knobs (environment):
#   DURATION (10) seconds per wrk run; ROUNDS (5); WARMUP (2) seconds; PAUSE (1)
#   WRK_THREADS (2), WRK_CONNS (50)
#   IDLE_CONNS (5000) connections for the memory measurement (0: skip it)
#   PROXY_CPU (0), LOAD_CPU (1), PORT_BASE (19000)
#   LAMEDUCK_BIN (${CARGO_TARGET_DIR:-target}/release/lameduck, brought up to
#                 date with cargo first unless NO_BUILD=1; a LAMEDUCK_BIN given is
#                 used as it is)
#   RESULTS_FILE (bench/RESULTS.md), NO_RESULTS=1 to leave it alone
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
raw="$here/out/balance"
results=${RESULTS_FILE:-$here/RESULTS.md}
duration=${DURATION:-10}
rounds=${ROUNDS:-5}
warmup=${WARMUP:-2}
pause=${PAUSE:-1}
wrk_threads=${WRK_THREADS:-2}
wrk_conns=${WRK_CONNS:-50}
idle_conns=${IDLE_CONNS:-5000}
proxy_cpu=${PROXY_CPU:-0}
load_cpu=${LOAD_CPU:-1}
port_base=${PORT_BASE:-19000}
lameduck_bin=${LAMEDUCK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/lameduck}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'balance.sh: %s\n' "$*" >&2; exit 1; }

for v in duration rounds warmup pause wrk_threads wrk_conns idle_conns port_base; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "${v^^} must be a whole number, not '${!v}'"
done
((duration > 0 && rounds > 0)) || die "DURATION and ROUNDS must be positive"
[[ $proxy_cpu != "$load_cpu" ]] || die "PROXY_CPU and LOAD_CPU are both $proxy_cpu"

# --- tools ---------------------------------------------------------------------

sudo=""
[[ $EUID -eq 0 ]] || sudo=sudo
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v ss >/dev/null || missing+=(iproute2)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # The packages start their system service on install unless policy-rc.d
    # forbids it; this benchmark runs its own instances.
    policy=/usr/sbin/policy-rc.d made_policy=0
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
taskset -c "$proxy_cpu" true 2>/dev/null || die "cannot pin to CPU $proxy_cpu"
taskset -c "$load_cpu" true 2>/dev/null || die "cannot pin to CPU $load_cpu"

has_balance() { "$lameduck_bin" balance --help >/dev/null 2>&1; }
# The binary of these sources: cargo does nothing when it is up to date.
if [[ -z ${LAMEDUCK_BIN:-} && ${NO_BUILD:-0} != 1 ]]; then
    log "building lameduck (release)"
    cargo build --release -q -p lameduck-cli --manifest-path "$repo/Cargo.toml"
fi
[[ -x $lameduck_bin ]] || die "$lameduck_bin was not built (set LAMEDUCK_BIN?)"
has_balance || die "$lameduck_bin has no balance subcommand"
unset KUBERNETES_SERVICE_HOST
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^LAMEDUCK_' || true)

hard_nofile=$(ulimit -Hn)
if [[ $hard_nofile == unlimited ]] || ((hard_nofile > 65536)); then nofile=65536; else nofile=$hard_nofile; fi
((2 * idle_conns + 300 <= nofile)) || die "IDLE_CONNS=$idle_conns needs RLIMIT_NOFILE above $((2 * idle_conns + 300))"

# --- ports and daemons -----------------------------------------------------------

up1=$((port_base + 1)) up1_h2=$((port_base + 2)) up2=$((port_base + 3)) up2_h2=$((port_base + 4))
hp_port=$((port_base + 10)) ld_port=$((port_base + 20)) ld_admin=$((port_base + 21))
for p in $up1 $up1_h2 $up2 $up2_h2 $hp_port $ld_port $ld_admin; do
    [[ -z $(ss -Htln "( sport = :$p )") ]] || die "port $p is in use: choose another PORT_BASE"
done

rm -rf "$raw"
mkdir -p "$raw"
pids=()
declare -A name_of=()
client_pid=""
alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [[ ${s%% *} != Z ]]; }
start_daemon() {
    local name=$1
    shift
    ( ulimit -n "$nofile"; exec setsid taskset -c "$proxy_cpu" "$@" ) </dev/null >"$raw/$name.log" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
    name_of[$started_pid]=$name
}
stop_pid() {
    local pid=$1 i
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.05; done
        # shellcheck disable=SC2046 # a list of pids
        alive "$pid" && kill -KILL "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null || true) 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local i
    [[ -z $client_pid ]] || stop_pid "$client_pid"
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
    pids=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
wait_http() {
    local pid=$1 url=$2 deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        alive "$pid" || die "${name_of[$pid]} exited: see $raw/${name_of[$pid]}.log"
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]] && return 0
        sleep 0.05
    done
    die "${name_of[$pid]}: no 200 from $url after 20 s"
}

body=$(printf 'x%.0s' {1..99}).
start_backend() { # $1 name, $2 port, $3 h2 port
    local dir="$raw/$1"
    mkdir -p "$dir/tmp"
    sed -e "s|@DIR@|$dir|g" -e "s|@UP_PORT@|$2|g" -e "s|@UP_H2_PORT@|$3|g" -e "s|@NOFILE@|$nofile|g" \
        -e "s|@WORKER_CONNECTIONS@|16384|g" -e "s|@BODY@|$body|g" -e "s|@H2_LISTEN_PARAM@||g" -e "s|@H2_ON@||g" \
        "$here/proxy/upstream.nginx.conf" >"$dir/nginx.conf"
    start_daemon "$1" /usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
    wait_http "$started_pid" "http://127.0.0.1:$2/"
}

start_haproxy() { # $1 name
    local dir="$raw/$1"
    mkdir -p "$dir"
    cat >"$dir/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn $((idle_conns + 1000))
    ulimit-n $nofile
    no strict-limits
defaults
    mode tcp
    retries 2
    option redispatch
    timeout connect 2s
    timeout client 600s
    timeout server 600s
frontend balance
    bind 127.0.0.1:$hp_port backlog 4096
    default_backend pods
backend pods
    balance leastconn
    server pod-1 127.0.0.1:$up1
    server pod-2 127.0.0.1:$up2
CFG
    /usr/sbin/haproxy -c -q -f "$dir/haproxy.cfg" || die "haproxy rejects $dir/haproxy.cfg"
    start_daemon "$1" /usr/sbin/haproxy -db -f "$dir/haproxy.cfg"
    wait_http "$started_pid" "http://127.0.0.1:$hp_port/"
}

slices="$raw/endpoints.yaml"
for i in 1 2; do
    port_var=up$i
    cat <<YAML
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pods-$i, labels: {kubernetes.io/service-name: pods}}
addressType: IPv4
ports: [{port: ${!port_var}, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, name: pod-$i}
YAML
done >"$slices"

start_lameduck() { # $1 name
    start_daemon "$1" "$lameduck_bin" --quiet balance --listen "127.0.0.1:$ld_port" --admin "127.0.0.1:$ld_admin" \
        --endpoints "file:$slices" --drain-delay 0
    wait_http "$started_pid" "http://127.0.0.1:$ld_admin/ready"
    wait_http "$started_pid" "http://127.0.0.1:$ld_port/"
}

read -r load1 _ </proc/loadavg
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
log "backends and balancers on CPU $proxy_cpu, load on CPU $load_cpu"
start_backend pod-1 "$up1" "$up1_h2"
start_backend pod-2 "$up2" "$up2_h2"
start_haproxy haproxy
hp_pid=$started_pid
start_lameduck lameduck
ld_pid=$started_pid
declare -A port_of=([haproxy]=$hp_port [lameduck]=$ld_port) pid_of=([haproxy]=$hp_pid [lameduck]=$ld_pid)

# --- throughput and latency --------------------------------------------------------

run_client() {
    local f=$1 rc=0
    shift
    setsid taskset -c "$load_cpu" "$@" </dev/null >"$f" 2>&1 &
    client_pid=$!
    wait "$client_pid" || rc=$?
    client_pid=""
    return "$rc"
}
# $1 kind (keepalive|close), $2 target, $3 seconds, $4 label
run_one() {
    local kind=$1 t=$2 secs=$3 label=$4 f line
    f="$raw/wrk-$kind-$t-$label.txt"
    local extra=()
    [[ $kind == close ]] && extra=(-H "Connection: close")
    run_client "$f" wrk -t"$wrk_threads" -c"$wrk_conns" -d"${secs}s" --latency "${extra[@]}" \
        -s "$here/proxy/report.lua" "http://127.0.0.1:${port_of[$t]}/" || die "wrk against $t failed: see $f"
    alive "${pid_of[$t]}" || die "$t died: see $raw/$t.log"
    [[ $label == warmup ]] && return 0
    line=$(grep '^RESULT ' "$f") || die "no RESULT line from wrk: see $f"
    awk -v k="$kind" -v t="$t" -v l="$label" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s\t%s\t%s\t%.2f\t%.3f\t%.3f\t%d\n", k, t, l, v["rps"], v["p50_us"] / 1000, v["p99_us"] / 1000,
            v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["status_errors"] + v["timeouts"]
    }' <<<"$line" | tee -a "$raw/runs.tsv" | awk -F'\t' '{ printf "==> %-9s %-8s round %-2s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %s\n", $1, $2, $3, $4, $5, $6, $7 }' >&2
}

: >"$raw/runs.tsv"
for kind in keepalive close; do
    for t in haproxy lameduck; do ((warmup > 0)) && run_one "$kind" "$t" "$warmup" warmup; done
done
for ((r = 1; r <= rounds; r++)); do
    # The order alternates from round to round: load that comes and goes on
    # a shared machine must not always land on the same balancer.
    order=(haproxy lameduck)
    ((r % 2)) || order=(lameduck haproxy)
    for kind in keepalive close; do
        for t in "${order[@]}"; do sleep "$pause"; run_one "$kind" "$t" "$duration" "$r"; done
    done
done
stop_pid "$hp_pid"
stop_pid "$ld_pid"

# --- idle connections ----------------------------------------------------------------

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
: >"$raw/idle.tsv"
if ((idle_conns > 0)); then
    for t in haproxy lameduck; do
        log "idle connections: $idle_conns to a fresh $t"
        if [[ $t == haproxy ]]; then start_haproxy idle-haproxy; else start_lameduck idle-lameduck; fi
        pid=$started_pid
        for ((i = 0; i < 10; i++)); do curl -s -o /dev/null --max-time 5 "http://127.0.0.1:${port_of[$t]}/" || die "$t: warm-up failed"; done
        sleep 1
        before=$(kib VmRSS "$pid")
        ready="$raw/idle-$t.ready"
        setsid taskset -c "$load_cpu" python3 "$here/proxy/idle_conns.py" --port "${port_of[$t]}" --conns "$idle_conns" \
            --ready-file "$ready" </dev/null >"$raw/idle-$t.client.log" 2>&1 &
        client_pid=$!
        deadline=$((SECONDS + 300))
        while [[ ! -s $ready ]]; do
            alive "$client_pid" || die "idle_conns.py exited: see $raw/idle-$t.client.log"
            ((SECONDS < deadline)) || die "idle_conns.py: not ready after 300 s"
            sleep 0.2
        done
        sleep 2
        after=$(kib VmRSS "$pid")
        ok=$(sed -n 's/^ready ok=\([0-9]*\) .*/\1/p' "$ready")
        stop_pid "$client_pid"
        client_pid=""
        stop_pid "$pid"
        printf '%s\t%s\t%s\t%s\n' "$t" "$before" "$after" "$ok" >>"$raw/idle.tsv"
        log "$t: VmRSS $before -> $after KiB over $ok connections"
    done
fi
cleanup

# --- report ---------------------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v k="$1" -v t="$2" -v c="$3" '$1 == k && $2 == t { print $c }' "$raw/runs.tsv"; }
hp_version=$(/usr/sbin/haproxy -v 2>/dev/null | sed -n 's/^HA-*Proxy version \([^ ]*\).*/\1/p' | head -n1)
declare -A label=([haproxy]="HAProxy ${hp_version%%-*} (mode tcp, leastconn)" [lameduck]="lameduck balance (tcp, least-connections)")
table() { # $1 kind
    local t
    echo "| balancer | req/s (median) | req/s min–max | p50 (ms) | p99 (ms) | req/s ÷ HAProxy's | p99 ÷ HAProxy's | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local hr hb
    hr=$(col "$1" haproxy 4 | median)
    hb=$(col "$1" haproxy 6 | median)
    for t in haproxy lameduck; do
        awk -v l="${label[$t]}" -v r="$(col "$1" "$t" 4 | median)" -v lo="$(col "$1" "$t" 4 | sort -n | head -n1)" \
            -v hi="$(col "$1" "$t" 4 | sort -n | tail -n1)" -v a="$(col "$1" "$t" 5 | median)" -v b="$(col "$1" "$t" 6 | median)" \
            -v e="$(col "$1" "$t" 7 | awk '{ s += $1 } END { print s + 0 }')" -v hr="$hr" -v hb="$hb" \
            'BEGIN { printf "| %s | %.0f | %.0f–%.0f | %.3f | %.3f | %.2f× | %.2f× | %d |\n", l, r, lo, hi, a, b, r / hr, b / hb, e }'
    done
}
verdict() { # $1 kind
    awk -v r="$(col "$1" lameduck 4 | median)" -v b="$(col "$1" lameduck 6 | median)" \
        -v hr="$(col "$1" haproxy 4 | median)" -v hb="$(col "$1" haproxy 6 | median)" \
        'BEGIN { printf "%s (%.2f× HAProxy'"'"'s rate, %.2f× its p99)", (r >= hr && b <= hb) ? "met" : "missed", r / hr, b / hb }'
}
idle_table=""
if [[ -s $raw/idle.tsv ]]; then
    idle_table=$(
        echo "| balancer | VmRSS before (MiB) | VmRSS with the connections (MiB) | KiB per held connection | ÷ HAProxy's |"
        echo "| --- | ---: | ---: | ---: | ---: |"
        hk=$(awk -F'\t' '$1 == "haproxy" { print ($3 - $2) / $4 }' "$raw/idle.tsv")
        awk -F'\t' -v hk="$hk" -v hl="${label[haproxy]}" -v ll="${label[lameduck]}" '{
            per = ($3 - $2) / $4
            printf "| %s | %.1f | %.1f | %.2f | %.2f× |\n", ($1 == "haproxy") ? hl : ll, $2 / 1024, $3 / 1024, per, per / hk }' "$raw/idle.tsv"
    )
fi
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n1)
section=$(cat <<MD
<!-- BEGIN bench/balance.sh: generated, rerun the script to update -->
## Balancer: lameduck balance against HAProxy mode tcp

Run $started_at on $(nproc) × $cpu, $(free -g | awk '/^Mem:/ { print $2 }') GiB, load average $load1 at the start;
\`bench/balance.sh\` with DURATION=$duration ROUNDS=$rounds WRK_CONNS=$wrk_conns WRK_THREADS=$wrk_threads IDLE_CONNS=$idle_conns.
Two nginx backends (100-byte body) and the balancer pinned to CPU $proxy_cpu, wrk to CPU $load_cpu. lameduck reads the backends
from an EndpointSlice file (\`--endpoints file:...\`), one thread (its CPU set has one CPU); HAProxy \`nbthread 1\`, \`balance leastconn\`,
\`retries 2\`, \`option redispatch\`. Medians of $rounds rounds, both balancers measured in turn in each round (which goes first alternates).

### Keep-alive: wrk over HTTP/1.1 keep-alive connections

\`wrk -t$wrk_threads -c$wrk_conns -d${duration}s --latency -s bench/proxy/report.lua http://127.0.0.1:PORT/\`

$(table keepalive)

### New connections: wrk with \`Connection: close\` (a new client and backend connection per request)

\`wrk -t$wrk_threads -c$wrk_conns -d${duration}s --latency -H "Connection: close" -s bench/proxy/report.lua http://127.0.0.1:PORT/\`

$(table close)

### Memory of $idle_conns held idle connections (each with its backend connection)

bench/proxy/idle_conns.py: one \`GET /\` on each connection, then all kept open and idle; VmRSS of a fresh balancer before and after.

$idle_table

### Reading

- Keep-alive requests/s at no worse p99 than HAProxy: $(verdict keepalive).
- New connections/s at no worse p99 than HAProxy: $(verdict close).
<!-- END bench/balance.sh -->
MD
)
printf '%s\n' "$section"
if [[ ${NO_RESULTS:-0} != 1 ]]; then
    begin='<!-- BEGIN bench/balance.sh'
    end='<!-- END bench/balance.sh -->'
    printf '%s\n' "$section" >"$raw/section.md"
    if grep -qF "$begin" "$results" 2>/dev/null; then
        awk -v b="$begin" -v e="$end" -v f="$raw/section.md" 'index($0, b) == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
            skip && index($0, e) == 1 { skip = 0; next } !skip { print }' "$results" >"$results.tmp"
        mv "$results.tmp" "$results"
    else
        printf '\n%s\n' "$section" >>"$results"
    fi
    rm -f "$results.tmp"
    log "results written to ${results#"$repo"/}"
fi
