#!/usr/bin/env bash
# Proxy benchmark: lameduck's proxy against HAProxy and nginx, and against no
# proxy at all, in front of the same upstream.
#
#   bench/proxy.sh
#
# 1. Throughput and latency: requests/s, p50 and p99 of wrk (HTTP/1.1
#    keep-alive) and of h2load (HTTP/2 cleartext, prior knowledge), each
#    against the upstream directly, through HAProxy, through nginx and through
#    lameduck. The upstream is an nginx serving a 100-byte body from memory on
#    127.0.0.1. The upstream and the proxy share one core (taskset -c 0), the
#    load generator has the other (taskset -c 1). ROUNDS rounds, each running
#    wrk against every target in turn, then h2load against every target in
#    turn; the median per target is reported, with HAProxy as the reference.
# 2. Memory of idle keep-alive connections: a fresh HAProxy and a fresh
#    lameduck each get IDLE_CONNS client connections (bench/proxy/idle_conns.py),
#    one `GET /` answered on each, all then kept open and idle; the proxy's
#    VmRSS after, less its VmRSS before, from /proc/<pid>/status.
#
# Prints a markdown section and puts it in bench/RESULTS.md between the
# BEGIN/END markers of this script (anything outside them is kept). Raw data:
# bench/out/proxy/. Every daemon the script starts is stopped when it exits,
# on error and on ^C too.
#
# Knobs (environment):
#   DURATION (10)     seconds of each measured wrk / h2load run
#   ROUNDS (5)        rounds of every client against every target
#   TARGETS ("direct haproxy nginx lameduck")  which targets, in this order
#   CLIENTS ("wrk h2load")
#   WARMUP (2)        seconds of an unrecorded wrk and h2load run per target first (0: none)
#   PAUSE (1)         seconds of rest between two runs
#   WRK_THREADS (2), WRK_CONNS (50), H2_CLIENTS (10), H2_STREAMS (10)
#   IDLE_CONNS (10000)  connections for the memory measurement (0: skip it)
#   IDLE_TARGETS ("haproxy lameduck"), IDLE_SETTLE (2) seconds before reading VmRSS
#   NGINX_KEEPALIVE (64) idle upstream connections nginx keeps (its upstream
#                 `keepalive`); below H2_CLIENTS x H2_STREAMS nginx opens a new
#                 upstream connection for many h2load requests
#   PROXY_CPU (0), LOAD_CPU (1)
#   PORT_BASE (18000) the script listens on PORT_BASE+10 .. PORT_BASE+61
#   LAMEDUCK_BIN (${CARGO_TARGET_DIR:-target}/release/lameduck, brought up to
#                 date with cargo first unless NO_BUILD=1; a LAMEDUCK_BIN given is
#                 used as it is)
#   RESULTS_FILE (bench/RESULTS.md), NO_RESULTS=1 to leave it alone
#   KEEP_H2LOAD_LOGS=1 keeps h2load's per-request logs (large)
#   WORKERS_BENCH=1   also lameduck --workers 2 against HAProxy nbthread 2, both
#                 unpinned, wrk only (bench/proxy/workers.sh; its own section)
#   WORKERS_ONLY=1    that comparison alone; WORKERS_ROUNDS (3) rounds of it
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out="$here/out"
raw="$out/proxy"
results=${RESULTS_FILE:-$here/RESULTS.md}

duration=${DURATION:-10}
rounds=${ROUNDS:-5}
read -r -a targets <<<"${TARGETS:-direct haproxy nginx lameduck}"
read -r -a clients <<<"${CLIENTS:-wrk h2load}"
warmup=${WARMUP:-2}
pause=${PAUSE:-1}
wrk_threads=${WRK_THREADS:-2}
wrk_conns=${WRK_CONNS:-50}
h2_clients=${H2_CLIENTS:-10}
h2_streams=${H2_STREAMS:-10}
idle_conns=${IDLE_CONNS:-10000}
read -r -a idle_targets <<<"${IDLE_TARGETS:-haproxy lameduck}"
idle_settle=${IDLE_SETTLE:-2}
proxy_cpu=${PROXY_CPU:-0}
load_cpu=${LOAD_CPU:-1}
port_base=${PORT_BASE:-18000}
nginx_keepalive=${NGINX_KEEPALIVE:-64}
lameduck_bin=${LAMEDUCK_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/lameduck}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'proxy.sh: %s\n' "$*" >&2; exit 1; }

for v in duration rounds warmup pause wrk_threads wrk_conns h2_clients h2_streams idle_conns idle_settle port_base nginx_keepalive; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "${v^^} must be a whole number, not '${!v}'"
done
((duration > 0 && rounds > 0)) || die "DURATION and ROUNDS must be positive"
for t in "${targets[@]}"; do
    [[ $t =~ ^(direct|haproxy|nginx|lameduck)$ ]] || die "unknown target '$t' in TARGETS (direct haproxy nginx lameduck)"
done
for c in "${clients[@]}"; do
    [[ $c =~ ^(wrk|h2load)$ ]] || die "unknown client '$c' in CLIENTS (wrk h2load)"
done
for t in "${idle_targets[@]}"; do
    [[ $t =~ ^(haproxy|lameduck)$ ]] || die "unknown target '$t' in IDLE_TARGETS (haproxy lameduck)"
done
((${#targets[@]})) || die "TARGETS is empty"
has() { local x=$1; shift; local y; for y in "$@"; do [[ $x == "$y" ]] && return 0; done; return 1; }
((idle_conns > 0)) || idle_targets=()
# lameduck is needed when it is a target of either measurement.
need_lameduck=0
if has lameduck "${targets[@]}" || has lameduck "${idle_targets[@]}"; then need_lameduck=1; fi
workers_bench=${WORKERS_BENCH:-0} workers_only=${WORKERS_ONLY:-0}
((workers_only)) && workers_bench=1
((workers_bench)) && need_lameduck=1
# WORKERS_ONLY: none of the pinned runs, nor the idle-connection memory.
if ((workers_only)); then targets=() clients=() idle_targets=(); fi

# --- tools -------------------------------------------------------------------

sudo=""
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and no sudo: install wrk nghttp2-client haproxy nginx curl python3 yourself"
    sudo=sudo
fi

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
[[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v ss >/dev/null || missing+=(iproute2)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # The haproxy and nginx packages start their system service on install
    # unless policy-rc.d forbids it (as in Docker images); this benchmark
    # runs its own instances, so forbid it for the install when nothing does.
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
haproxy_bin=/usr/sbin/haproxy
nginx_bin=/usr/sbin/nginx
wrk_bin=$(command -v wrk)
h2load_bin=$(command -v h2load)
python_bin=$(command -v python3)

# Both CPUs must be ours to pin to.
allowed=$(taskset -cp $$ | sed 's/.*: //')
taskset -c "$proxy_cpu" true 2>/dev/null || die "cannot pin to CPU $proxy_cpu (allowed: $allowed)"
taskset -c "$load_cpu" true 2>/dev/null || die "cannot pin to CPU $load_cpu (allowed: $allowed)"
[[ $proxy_cpu != "$load_cpu" ]] || die "PROXY_CPU and LOAD_CPU are both $proxy_cpu"

# File descriptors: 65536 where the hard limit allows (raising the hard
# limit needs CAP_SYS_RESOURCE, which a container may not have).
hard_nofile=$(ulimit -Hn)
if [[ $hard_nofile == unlimited ]] || ((hard_nofile > 65536)); then nofile=65536; else nofile=$hard_nofile; fi
if ((${#idle_targets[@]})) && ((idle_conns + 300 > nofile)); then
    die "IDLE_CONNS=$idle_conns needs RLIMIT_NOFILE above $((idle_conns + 300)), the hard limit is $hard_nofile"
fi
worker_connections=$((nofile > 16484 ? 16384 : nofile - 100))

# nginx took `listen ... http2` until 1.25.1, which brought `http2 on;` and
# deprecated the listen parameter.
nginx_version=$("$nginx_bin" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
[[ -n $nginx_version ]] || die "cannot read nginx's version"
if [[ $(printf '%s\n' 1.25.1 "$nginx_version" | sort -V | head -n1) == 1.25.1 ]]; then
    h2_listen_param="" h2_on="http2 on;"
else
    h2_listen_param="http2" h2_on=""
fi

# --- lameduck ----------------------------------------------------------------

has_proxy() { "$lameduck_bin" proxy --help >/dev/null 2>&1; }
if ((need_lameduck)); then
    # The binary of these sources, not one left from an earlier build:
    # cargo does nothing when it is already up to date.
    if [[ -z ${LAMEDUCK_BIN:-} && ${NO_BUILD:-0} != 1 ]]; then
        log "building lameduck (release)"
        cargo build --release -q -p lameduck-cli --manifest-path "$repo/Cargo.toml"
    fi
    [[ -x $lameduck_bin ]] || die "$lameduck_bin was not built (set LAMEDUCK_BIN?)"
    has_proxy || die "$lameduck_bin has no proxy subcommand"
    # A binary older than the sources is benchmarked as it is: say so.
    newer=$(find "$repo/crates" "$repo/Cargo.toml" "$repo/Cargo.lock" -type f -newer "$lameduck_bin" \
        \( -name '*.rs' -o -name 'Cargo.*' \) 2>/dev/null | head -n1)
    [[ -z $newer ]] || log "warning: $lameduck_bin is older than ${newer#"$repo"/} (rebuild it, or unset LAMEDUCK_BIN and remove it)"
fi

# Nothing from the caller's environment may change what is measured: a
# KUBERNETES_SERVICE_HOST turns lameduck's drain delay on, LAMEDUCK_* set its flags.
unset KUBERNETES_SERVICE_HOST
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^LAMEDUCK_' || true)

# --- ports -------------------------------------------------------------------

up_port=$((port_base + 10)) up_h2_port=$((port_base + 11))
hp_port=$((port_base + 20)) hp_h2_port=$((port_base + 21))
ng_port=$((port_base + 30)) ng_h2_port=$((port_base + 31))
ld_port=$((port_base + 40)) ld_admin_port=$((port_base + 41))
idle_hp_port=$((port_base + 50)) idle_hp_h2_port=$((port_base + 51))
idle_ld_port=$((port_base + 60)) idle_ld_admin_port=$((port_base + 61))
all_ports=("$up_port" "$up_h2_port" "$hp_port" "$hp_h2_port" "$ng_port" "$ng_h2_port"
    "$ld_port" "$ld_admin_port" "$idle_hp_port" "$idle_hp_h2_port" "$idle_ld_port" "$idle_ld_admin_port")
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
for p in "${all_ports[@]}"; do
    ((p < 65536)) || die "PORT_BASE=$port_base puts port $p out of range"
    ((p < eph_lo || p > eph_hi)) || die "port $p is in the ephemeral range $eph_lo-$eph_hi: choose another PORT_BASE"
    if [[ -n $(ss -Htln "( sport = :$p )") ]]; then
        die "port $p is in use (the script needs $((port_base + 10))-$((port_base + 61)) free; choose another PORT_BASE):
$(ss -Htlnp "( sport = :$p )")"
    fi
done

declare -A port_h1=([direct]=$up_port [haproxy]=$hp_port [nginx]=$ng_port [lameduck]=$ld_port)
declare -A port_h2=([direct]=$up_h2_port [haproxy]=$hp_h2_port [nginx]=$ng_h2_port [lameduck]=$ld_port)

# --- daemons -------------------------------------------------------------------

rm -rf "$raw"
mkdir -p "$raw"

daemon_pids=()
declare -A daemon_name=()
client_pid=""

# "$1" is alive (and not a zombie waiting to be reaped).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Starts "$@" as daemon $name on the proxy CPU with the raised fd limit,
# output to bench/out/proxy/$name.log. Sets started_pid. In a session of its
# own, so that a ^C at the terminal reaches the script (which then stops
# every daemon) and not the daemons; without job control the background
# subshell is no process group leader, so setsid execs in place and $! stays
# the daemon's pid.
start_daemon() {
    local name=$1
    shift
    (
        ulimit -n "$nofile"
        exec setsid taskset -c "$proxy_cpu" "$@"
    ) </dev/null >"$raw/$name.log" 2>&1 &
    started_pid=$!
    daemon_pids+=("$started_pid")
    daemon_name[$started_pid]=$name
}

# SIGTERM, 10 s to exit, then SIGKILL for it and its children (nginx's workers).
stop_pid() {
    local pid=$1 i kids
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
            alive "$pid" || break
            sleep 0.05
        done
        if alive "$pid"; then
            kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
            log "${daemon_name[$pid]:-$pid} did not stop on SIGTERM: killing it"
            # shellcheck disable=SC2086 # a list of pids
            kill -KILL "$pid" $kids 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

stop_daemon() {
    local pid=$1 p rest=()
    stop_pid "$pid"
    for p in "${daemon_pids[@]}"; do [[ $p == "$pid" ]] || rest+=("$p"); done
    daemon_pids=("${rest[@]}")
}

cleanup() {
    local i
    if [[ -n $client_pid ]]; then stop_pid "$client_pid"; fi
    for ((i = ${#daemon_pids[@]} - 1; i >= 0; i--)); do stop_pid "${daemon_pids[i]}"; done
    daemon_pids=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Waits until $url answers 200 (curl options after it), while daemon $pid lives.
wait_http() {
    local pid=$1 url=$2
    shift 2
    local deadline=$((SECONDS + 20)) code
    while ((SECONDS < deadline)); do
        alive "$pid" || die "${daemon_name[$pid]} exited: see $raw/${daemon_name[$pid]}.log
$(tail -n 20 "$raw/${daemon_name[$pid]}.log")"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" || true)
        [[ $code == 200 ]] && return 0
        sleep 0.05
    done
    die "${daemon_name[$pid]}: no 200 from $url after 20 s (see $raw/${daemon_name[$pid]}.log)"
}

# Renders template $1 into $2, @NAME@ replaced by the values of the rest (NAME=value).
render() {
    local src=$1 dst=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$src" >"$dst"
    ! grep -q '@[A-Z0-9_]*@' "$dst" || die "unfilled placeholder in $dst: $(grep -o '@[A-Z0-9_]*@' "$dst" | head -n1)"
}

body=$(printf 'x%.0s' {1..99})
body="${body}."

start_upstream() {
    local dir="$raw/upstream"
    mkdir -p "$dir/tmp"
    render "$here/proxy/upstream.nginx.conf" "$dir/nginx.conf" DIR="$dir" UP_PORT="$up_port" UP_H2_PORT="$up_h2_port" \
        NOFILE="$nofile" WORKER_CONNECTIONS="$worker_connections" BODY="$body" \
        H2_LISTEN_PARAM="$h2_listen_param" H2_ON="$h2_on"
    start_daemon upstream "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
    upstream_pid=$started_pid
    wait_http "$upstream_pid" "http://127.0.0.1:$up_port/"
}

# $1: name, $2: port, $3: h2 port, $4: maxconn. Sets started_pid.
start_haproxy() {
    local dir="$raw/$1"
    mkdir -p "$dir"
    render "$here/proxy/haproxy.cfg" "$dir/haproxy.cfg" DIR="$dir" UP_PORT="$up_port" HAPROXY_PORT="$2" \
        HAPROXY_H2_PORT="$3" NOFILE="$nofile" MAXCONN="$4"
    "$haproxy_bin" -c -q -f "$dir/haproxy.cfg" || die "haproxy rejects $dir/haproxy.cfg"
    start_daemon "$1" "$haproxy_bin" -db -f "$dir/haproxy.cfg"
    wait_http "$started_pid" "http://127.0.0.1:$2/"
}

start_nginx_proxy() {
    local dir="$raw/nginx"
    mkdir -p "$dir/tmp"
    render "$here/proxy/proxy.nginx.conf" "$dir/nginx.conf" DIR="$dir" UP_PORT="$up_port" NGINX_PORT="$ng_port" \
        NGINX_H2_PORT="$ng_h2_port" NGINX_KEEPALIVE="$nginx_keepalive" NOFILE="$nofile" WORKER_CONNECTIONS="$worker_connections" \
        H2_LISTEN_PARAM="$h2_listen_param" H2_ON="$h2_on"
    start_daemon nginx "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
    wait_http "$started_pid" "http://127.0.0.1:$ng_port/"
}

# $1: name, $2: port, $3: admin port. Sets started_pid.
start_lameduck() {
    start_daemon "$1" "$lameduck_bin" --quiet proxy --listen "127.0.0.1:$2" --upstream "127.0.0.1:$up_port" \
        --admin "127.0.0.1:$3" --drain-delay 0
    wait_http "$started_pid" "http://127.0.0.1:$3/ready"
}

# The response of target $1 over HTTP/1.1 and over h2c must be the 100-byte body.
check_target() {
    local t=$1 got
    got=$(curl -s --max-time 5 -w ' %{http_code} %{http_version} %{size_download}' "http://127.0.0.1:${port_h1[$t]}/" || true)
    [[ $got == "$body 200 1.1 100" ]] || die "$t: unexpected HTTP/1.1 response on port ${port_h1[$t]}: '$got'"
    got=$(curl -s --max-time 5 --http2-prior-knowledge -w ' %{http_code} %{http_version} %{size_download}' \
        "http://127.0.0.1:${port_h2[$t]}/" || true)
    [[ $got == "$body 200 2 100" ]] || die "$t: unexpected h2c response on port ${port_h2[$t]}: '$got'"
}

mkdir -p "$out"
read -r load1 load5 _ </proc/loadavg
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')

log "starting the upstream and the proxies (pinned to CPU $proxy_cpu, RLIMIT_NOFILE $nofile)"
start_upstream
declare -A target_pids=([direct]="$upstream_pid")
for t in "${targets[@]}"; do
    case $t in
        haproxy) start_haproxy haproxy "$hp_port" "$hp_h2_port" 4096 ;;
        nginx) start_nginx_proxy ;;
        lameduck) start_lameduck lameduck "$ld_port" "$ld_admin_port" ;;
        direct) continue ;;
    esac
    target_pids[$t]="$upstream_pid $started_pid"
done
for t in "${targets[@]}"; do check_target "$t"; done

# --- throughput and latency ---------------------------------------------------

# Commands, with PORT for the target's port.
wrk_cmd="taskset -c $load_cpu wrk -t$wrk_threads -c$wrk_conns -d${duration}s --latency -s bench/proxy/report.lua http://127.0.0.1:PORT/"
h2load_cmd="taskset -c $load_cpu h2load -t1 -c$h2_clients -m$h2_streams -D $duration --log-file=FILE http://127.0.0.1:PORT/"

check_alive() {
    local pid
    for pid in ${target_pids[$1]}; do
        alive "$pid" || die "${daemon_name[$pid]} died during the runs against $1: see $raw/${daemon_name[$pid]}.log"
    done
}

# Runs "${@:2}" on the load CPU, output to $1, and returns its status. In the
# background and in a session of its own, waited for with `wait`: a ^C then
# runs the INT trap at once. (A foreground wrk or h2load catches SIGINT, prints
# its summary and exits 0, and bash then runs no INT trap at all.)
run_client() {
    local f=$1 rc=0
    shift
    setsid taskset -c "$load_cpu" "$@" </dev/null >"$f" 2>&1 &
    client_pid=$!
    wait "$client_pid" || rc=$?
    client_pid=""
    return "$rc"
}

# One run of client $1 against target $2 for $3 seconds; $4 is the label of
# its files. Appends "client target label req/s p50_ms p99_ms errors requests"
# to runs.tsv unless the label starts with "warmup".
run_one() {
    local client=$1 t=$2 secs=$3 label=$4 f line rps p50 p99 errors requests
    f="$raw/$client-$t-$label.txt"
    if [[ $client == wrk ]]; then
        run_client "$f" "$wrk_bin" -t"$wrk_threads" -c"$wrk_conns" -d"${secs}s" --latency \
            -s "$here/proxy/report.lua" "http://127.0.0.1:${port_h1[$t]}/" ||
            die "wrk against $t failed: see $f"
        line=$(grep '^RESULT ' "$f") || die "no RESULT line from wrk: see $f"
        read -r rps p50 p99 errors requests < <(awk '{
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "%.2f %.3f %.3f %d %d\n", v["rps"], v["p50_us"] / 1000, v["p99_us"] / 1000,
                v["connect_errors"] + v["read_errors"] + v["write_errors"] + v["status_errors"] + v["timeouts"], v["requests"]
        }' <<<"$line")
    else
        local logf="$raw/$client-$t-$label.log" failed stats
        run_client "$f" "$h2load_bin" -t1 -c"$h2_clients" -m"$h2_streams" -D "$secs" \
            --log-file="$logf" "http://127.0.0.1:${port_h2[$t]}/" ||
            die "h2load against $t failed: see $f"
        grep -q '^Application protocol: h2c' "$f" || die "h2load did not speak h2c to $t: see $f"
        rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$f")
        failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' "$f")
        [[ -n $rps && -n $failed ]] || die "cannot read h2load's output: see $f"
        # Nearest-rank percentiles of the per-request times (µs) and the
        # requests that did not end in a 2xx (status -1: failed stream).
        stats=$(awk -F'\t' '{ print $3 } $2 !~ /^2/ { bad++ } END { print "bad", bad + 0 > "/dev/stderr" }' "$logf" 2>"$logf.bad" |
            sort -n | awk '{ v[NR] = $1 } END {
                if (NR == 0) { print "0 0 0"; exit }
                i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
                i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
                printf "%.3f %.3f %d\n", v[i50] / 1000, v[i99] / 1000, NR }')
        read -r p50 p99 requests <<<"$stats"
        errors=$(awk -v f="$failed" '{ print ($2 > f) ? $2 : f }' "$logf.bad")
        rm -f "$logf.bad"
        [[ ${KEEP_H2LOAD_LOGS:-0} == 1 ]] || rm -f "$logf"
    fi
    check_alive "$t"
    if [[ $label != warmup* ]]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$t" "$label" "$rps" "$p50" "$p99" "$errors" "$requests" >>"$raw/runs.tsv"
        log "$(printf '%-6s %-8s round %-2s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  errors %s' \
            "$client" "$t" "$label" "$rps" "$p50" "$p99" "$errors")"
    fi
}

: >"$raw/runs.tsv"
if ((warmup > 0)); then
    log "warm-up: ${warmup} s of each client against each target"
    for c in "${clients[@]}"; do
        for t in "${targets[@]}"; do run_one "$c" "$t" "$warmup" warmup; done
    done
fi
log "$rounds rounds of ${duration} s runs: ${clients[*]} against ${targets[*]}"
for ((r = 1; r <= rounds; r++)); do
    for c in "${clients[@]}"; do
        for t in "${targets[@]}"; do
            sleep "$pause"
            run_one "$c" "$t" "$duration" "$r"
        done
    done
done

# Stop the load-test proxies: the memory measurement starts fresh ones.
for t in "${targets[@]}"; do
    [[ $t == direct ]] && continue
    for pid in ${target_pids[$t]}; do [[ $pid == "$upstream_pid" ]] || stop_daemon "$pid"; done
done

# --- idle connections ------------------------------------------------------------

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }

: >"$raw/idle.tsv"
for t in "${idle_targets[@]}"; do
    log "idle connections: $idle_conns to a fresh $t"
    if [[ $t == haproxy ]]; then
        start_haproxy idle-haproxy "$idle_hp_port" "$idle_hp_h2_port" $((idle_conns + 200))
        port=$idle_hp_port
    else
        start_lameduck idle-lameduck "$idle_ld_port" "$idle_ld_admin_port"
        port=$idle_ld_port
    fi
    pid=$started_pid
    # A few requests first, each on its own connection, so that first-use
    # allocations (and the upstream connection) are in the baseline.
    for ((i = 0; i < 10; i++)); do
        curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/" || die "$t: warm-up request failed"
    done
    sleep 1
    before=$(status_kib VmRSS "$pid")
    before_anon=$(status_kib RssAnon "$pid")
    cp "/proc/$pid/status" "$raw/idle-$t.before.status"

    ready="$raw/idle-$t.ready"
    rm -f "$ready"
    setsid taskset -c "$load_cpu" "$python_bin" "$here/proxy/idle_conns.py" --port "$port" --conns "$idle_conns" \
        --ready-file "$ready" </dev/null >"$raw/idle-$t.client.log" 2>&1 &
    client_pid=$!
    deadline=$((SECONDS + 300))
    while [[ ! -s $ready ]]; do
        alive "$client_pid" || die "idle_conns.py exited: see $raw/idle-$t.client.log
$(tail -n 20 "$raw/idle-$t.client.log")"
        alive "$pid" || die "$t exited while the connections were opened: see $raw/idle-$t.log"
        ((SECONDS < deadline)) || die "idle_conns.py: not ready after 300 s"
        sleep 0.2
    done
    sleep "$idle_settle"
    after=$(status_kib VmRSS "$pid")
    after_anon=$(status_kib RssAnon "$pid")
    cp "/proc/$pid/status" "$raw/idle-$t.after.status"
    cp "/proc/$pid/smaps_rollup" "$raw/idle-$t.after.smaps_rollup" 2>/dev/null || true
    open=$(ss -Htn state established "( dport = :$port )" | wc -l)
    ok=$(sed -n 's/^ready ok=\([0-9]*\) .*/\1/p' "$ready")
    failed=$(sed -n 's/^ready ok=[0-9]* failed=\([0-9]*\) .*/\1/p' "$ready")
    stop_pid "$client_pid"
    client_pid=""
    stop_daemon "$pid"
    ((ok > 0)) || die "idle_conns.py set up no connection: see $raw/idle-$t.client.log"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$before" "$after" "$before_anon" "$after_anon" "$ok" "$failed" "$open" >>"$raw/idle.tsv"
    log "$(awk -v b="$before" -v a="$after" -v n="$ok" -v o="$open" -v t="$t" \
        'BEGIN { printf "%s: VmRSS %d -> %d KiB, +%.1f MiB, %.2f KiB per connection (%d set up, %d open at the reading)", t, b, a, (a - b) / 1024, (a - b) / n, n, o }')"
done

cleanup

# --- report --------------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v c="$1" -v t="$2" -v k="$3" '$1 == c && $2 == t { print $k }' "$raw/runs.tsv"; }

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
haproxy_version=$("$haproxy_bin" -v 2>/dev/null | sed -n 's/^HA-*Proxy version \([^ ]*\).*/\1/p' | head -n1)
wrk_version=$("$wrk_bin" -v 2>&1 | head -n1 | awk '{ print $2 }' || true)
h2load_version=$("$h2load_bin" --version 2>&1 | head -n1 || true)
declare -A label_of=(
    [direct]="direct (no proxy)"
    [haproxy]="HAProxy ${haproxy_version%%-*}"
    [nginx]="nginx $nginx_version"
    [lameduck]="lameduck"
)

# Prints the table for client $1; sets verdict_$1 (call it outside $(...)).
table() {
    local c=$1 t rps p50 p99 lo hi errs
    local -A m_rps m_p50 m_p99
    for t in "${targets[@]}"; do
        m_rps[$t]=$(col "$c" "$t" 4 | median)
        m_p50[$t]=$(col "$c" "$t" 5 | median)
        m_p99[$t]=$(col "$c" "$t" 6 | median)
    done
    echo "| target | req/s (median) | req/s min–max | p50 (ms) | p99 (ms) | req/s ÷ HAProxy's | p99 ÷ HAProxy's | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in "${targets[@]}"; do
        lo=$(col "$c" "$t" 4 | sort -n | head -n1)
        hi=$(col "$c" "$t" 4 | sort -n | tail -n1)
        errs=$(col "$c" "$t" 7 | awk '{ s += $1 } END { print s + 0 }')
        awk -v l="${label_of[$t]}" -v r="${m_rps[$t]}" -v lo="$lo" -v hi="$hi" -v a="${m_p50[$t]}" -v b="${m_p99[$t]}" \
            -v hr="${m_rps[haproxy]:-}" -v hb="${m_p99[haproxy]:-}" -v e="$errs" 'BEGIN {
                rr = (hr == "") ? "—" : sprintf("%.2f×", r / hr)
                rb = (hb == "") ? "—" : sprintf("%.2f×", b / hb)
                printf "| %s | %.0f | %.0f–%.0f | %.3f | %.3f | %s | %s | %d |\n", l, r, lo, hi, a, b, rr, rb, e }'
    done
    if [[ -n ${m_rps[lameduck]:-} && -n ${m_rps[haproxy]:-} ]]; then
        # Issue 17's aims: HTTP/1.1 at least 1.1× HAProxy's requests/s,
        # h2c at least HAProxy's, both at no worse p99.
        local aim=1.0
        [[ $c == wrk ]] && aim=1.1
        printf -v "verdict_$c" '%s' "$(awk -v r="${m_rps[lameduck]}" -v b="${m_p99[lameduck]}" -v hr="${m_rps[haproxy]}" -v hb="${m_p99[haproxy]}" -v f="$aim" 'BEGIN {
            ok = (r >= hr * f && b <= hb) ? "met" : "missed"
            printf "%s: lameduck %.0f req/s at p99 %.3f ms, HAProxy %.0f req/s at p99 %.3f ms (%.2f× the throughput, %.2f× the p99)", ok, r, b, hr, hb, r / hr, b / hb }')"
    else
        printf -v "verdict_$c" '%s' "not measured (TARGETS lacks lameduck or haproxy)"
    fi
}

verdict_wrk="not run" verdict_h2load="not run"
client_sections=""
for c in "${clients[@]}"; do
    if [[ $c == wrk ]]; then
        heading="HTTP/1.1 keep-alive: wrk"
        cmd=$wrk_cmd
        note="Latencies from wrk's own histogram (\`latency:percentile()\` in bench/proxy/report.lua), not corrected for coordinated omission."
    else
        heading="HTTP/2 cleartext, prior knowledge: h2load"
        cmd=$h2load_cmd
        note="h2load prints no percentiles: p50 and p99 are nearest-rank over its per-request log (\`--log-file\`: time from request to end of response)."
    fi
    table "$c" >"$raw/table-$c.md"
    tbl=$(cat "$raw/table-$c.md")
    client_sections+="
### $heading

\`$cmd\`, PORT being the target's (see Ports above).
$note

$tbl
"
done

idle_section=""
verdict_idle="not measured"
if [[ -s $raw/idle.tsv ]]; then
    idle_table=$(
        echo "| proxy | VmRSS before (MiB) | VmRSS with the connections (MiB) | added (MiB) | KiB per connection | RssAnon added (MiB) | connections set up / open at the reading | added ÷ HAProxy's |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        hp_delta=$(awk -F'\t' '$1 == "haproxy" { print $3 - $2 }' "$raw/idle.tsv")
        while IFS=$'\t' read -r t b a ba aa ok failed open; do
            awk -v l="${label_of[$t]}" -v b="$b" -v a="$a" -v ba="$ba" -v aa="$aa" -v n="$ok" -v f="$failed" -v o="$open" -v h="$hp_delta" 'BEGIN {
                r = (h == "" || h <= 0) ? "—" : sprintf("%.2f×", (a - b) / h)
                fail = (f > 0) ? sprintf(" (%d failed)", f) : ""
                printf "| %s | %.1f | %.1f | %.1f | %.2f | %.1f | %d / %d%s | %s |\n", l, b / 1024, a / 1024, (a - b) / 1024, (a - b) / n, (aa - ba) / 1024, n, o, fail, r }'
        done <"$raw/idle.tsv"
    )
    if grep -q '^lameduck' "$raw/idle.tsv" && grep -q '^haproxy' "$raw/idle.tsv"; then
        verdict_idle=$(awk -F'\t' '{ d[$1] = $3 - $2; n[$1] = $6 } END {
            printf "lameduck adds %.1f MiB (%.2f KiB per connection), HAProxy %.1f MiB (%.2f KiB per connection): %.2f× HAProxy'"'"'s",
                d["lameduck"] / 1024, d["lameduck"] / n["lameduck"], d["haproxy"] / 1024, d["haproxy"] / n["haproxy"], d["lameduck"] / d["haproxy"] }' "$raw/idle.tsv")
    fi
    idle_section="
### Memory of $idle_conns idle keep-alive connections

A fresh proxy each (HAProxy with \`maxconn $((idle_conns + 200))\`), ten requests on
their own connections first, then \`taskset -c $load_cpu python3 bench/proxy/idle_conns.py --port PORT --conns $idle_conns\`
opens $idle_conns connections (200 being set up at a time), sends one keep-alive
\`GET /\` on each and reads the response, and keeps them all open. VmRSS and
RssAnon of the proxy process from \`/proc/<pid>/status\` before the connections,
and ${idle_settle} s after the last response; \"open\" counts the client's established
sockets (\`ss\`) at that reading.

$idle_table
"
fi

git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ -n $(git -C "$repo" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]]; then
    git_rev="$git_rev, with uncommitted changes under crates/"
fi
if ((need_lameduck)); then
    lameduck_line="$("$lameduck_bin" --version 2>&1 | head -n1 || true) (commit $git_rev), \`$lameduck_bin --quiet proxy --listen 127.0.0.1:PORT --upstream 127.0.0.1:$up_port --admin 127.0.0.1:ADMIN --drain-delay 0\`, HTTP/1.1 and h2c on the same port"
else
    lameduck_line="not measured (TARGETS=\"${targets[*]}\"); commit $git_rev"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
if [[ -n $h2_on ]]; then nginx_h2="\`listen 127.0.0.1:$ng_h2_port\` with \`$h2_on\`"; else nginx_h2="\`listen 127.0.0.1:$ng_h2_port $h2_listen_param\`"; fi
ports_line="upstream $up_port (h2c on $up_h2_port), HAProxy $hp_port (h2c: \`bind 127.0.0.1:$hp_h2_port proto h2\`), nginx $ng_port (h2c: $nginx_h2), lameduck $ld_port (HTTP/1.1 and h2c)"

# Its own section, between its own markers.
if ((workers_bench)); then
    # shellcheck source=bench/proxy/workers.sh
    source "$here/proxy/workers.sh"
fi
((workers_only)) && exit 0

section=$(
    cat <<EOF
<!-- BEGIN bench/proxy.sh: generated, rerun the script to update -->
## Proxy: throughput, latency and idle-connection memory

Reproduce: \`bench/proxy.sh\` (installs wrk, nghttp2-client, haproxy and nginx from
Debian when missing, brings lameduck's release build up to date with cargo,
raw data in \`bench/out/proxy/\`).

- Machine: $(nproc) CPUs, $cpu_model, kernel $(uname -r) ($(uname -m)); run on $started_at, load average $load1 (1 min) / $load5 (5 min) at the start.
- lameduck: $lameduck_line.
- Peers: HAProxy $haproxy_version (\`nbthread 1\`, http mode, \`http-reuse always\`), nginx $nginx_version (Debian $(pkg_version nginx); \`worker_processes 1\`, upstream \`keepalive $nginx_keepalive\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection ""\`).
- Clients: wrk $wrk_version (Debian $(pkg_version wrk)), $h2load_version (Debian nghttp2-client $(pkg_version nghttp2-client)).
- Upstream: nginx $nginx_version, \`worker_processes 1\`, \`access_log off\`, a 100-byte body from memory (\`return 200\`), keep-alive without a request limit, on 127.0.0.1.
- Pinning: the upstream and the proxy on CPU $proxy_cpu (\`taskset -c $proxy_cpu\`), the client on CPU $load_cpu. RLIMIT_NOFILE $nofile for the daemons.
- Order: $( ((warmup > 0)) && echo "a ${warmup} s warm-up of every client against every target, then ")$rounds rounds; in each, wrk against ${targets[*]} in turn, then h2load against them in turn, ${duration} s per run, ${pause} s apart. Medians over the rounds; errors are summed (socket errors and non-2xx).
- Ports: $ports_line.
$client_sections$idle_section
### Reading

- Aim "at least 1.1× HAProxy's requests/s at no worse p99", HTTP/1.1 (wrk): $verdict_wrk.
- Aim "at least HAProxy's requests/s at no worse p99", h2c (h2load): $verdict_h2load.
- Idle keep-alive connections: $verdict_idle.
<!-- END bench/proxy.sh -->
EOF
)

printf '\n%s\n' "$section"

printf '%s\n' "$section" >"$raw/section.md"
if [[ ${NO_RESULTS:-0} == 1 ]]; then
    log "NO_RESULTS=1: $results left alone (section in $raw/section.md)"
    exit 0
fi
begin='<!-- BEGIN bench/proxy.sh:'
end='<!-- END bench/proxy.sh -->'
if [[ -f $results ]] && grep -qF "$begin" "$results" && grep -qF "$end" "$results"; then
    # Replace the generated block, keep everything around it.
    awk -v b="$begin" -v e="$end" -v file="$raw/section.md" '
        index($0, b) == 1 { while ((getline line < file) > 0) print line; skip = 1; next }
        skip { if (index($0, e) == 1) skip = 0; next }
        { print }' "$results" >"$results.tmp"
    mv "$results.tmp" "$results"
elif [[ -f $results ]]; then
    printf '\n%s\n' "$section" >>"$results"
else
    printf '# Benchmark results\n\n%s\n' "$section" >"$results"
fi
log "results: $results (raw data in $raw)"
