#!/usr/bin/env bash
# A/B run of two lameduck binaries against HAProxy, for deciding whether a
# change to the proxy helps: the same upstream, pinning and clients as
# bench/proxy.sh, the targets measured in turn within each round so that
# the load of a shared machine falls on all of them alike.
#
#   bench/proxy/ab.sh A_BIN B_BIN
#
# Prints one line per run and the median requests/s and p99 per target and
# client. Knobs: ROUNDS (4), DURATION (5), CLIENTS ("wrk h2load"),
# PORT_BASE (18100), PROXY_CPU (0), LOAD_CPU (1). Writes nothing outside
# a temporary directory, which it removes.
set -euo pipefail
export LC_ALL=C
[[ $# -eq 2 ]] || { echo "usage: $0 A_BIN B_BIN" >&2; exit 2; }
a_bin=$1 b_bin=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rounds=${ROUNDS:-4} duration=${DURATION:-5}
read -r -a clients <<<"${CLIENTS:-wrk h2load}"
base=${PORT_BASE:-18100} pcpu=${PROXY_CPU:-0} lcpu=${LOAD_CPU:-1}
dir=$(mktemp -d /tmp/proxy-ab.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT

up=$((base + 10)) up2=$((base + 11)) hp=$((base + 20)) hp2=$((base + 21))
pa=$((base + 30)) aa=$((base + 31)) pb=$((base + 40)) ab=$((base + 41))
body=$(printf 'x%.0s' {1..99}).
mkdir -p "$dir/up/tmp" "$dir/hp"
sed -e "s|@DIR@|$dir/up|g" -e "s|@UP_PORT@|$up|g" -e "s|@UP_H2_PORT@|$up2|g" -e "s|@NOFILE@|4096|g" \
    -e "s|@WORKER_CONNECTIONS@|4000|g" -e "s|@BODY@|$body|g" -e "s|@H2_LISTEN_PARAM@|http2|g" -e "s|@H2_ON@||g" \
    "$here/upstream.nginx.conf" >"$dir/up/nginx.conf"
sed -e "s|@DIR@|$dir/hp|g" -e "s|@UP_PORT@|$up|g" -e "s|@HAPROXY_PORT@|$hp|g" -e "s|@HAPROXY_H2_PORT@|$hp2|g" \
    -e "s|@NOFILE@|4096|g" -e "s|@MAXCONN@|2000|g" "$here/haproxy.cfg" >"$dir/hp/haproxy.cfg"
start() { taskset -c "$pcpu" "$@" </dev/null >>"$dir/daemons.log" 2>&1 & pids+=($!); }
start /usr/sbin/nginx -p "$dir/up" -e "$dir/up/error.log" -c "$dir/up/nginx.conf"
start /usr/sbin/haproxy -db -f "$dir/hp/haproxy.cfg"
for x in "a $a_bin $pa $aa" "b $b_bin $pb $ab"; do
    read -r _ bin port admin <<<"$x"
    start env -u KUBERNETES_SERVICE_HOST "$bin" --quiet proxy --listen "127.0.0.1:$port" \
        --upstream "127.0.0.1:$up" --admin "127.0.0.1:$admin" --drain-delay 0
done
for port in "$up" "$hp" "$aa" "$ab"; do
    path=/; [[ $port == "$aa" || $port == "$ab" ]] && path=/ready
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port$path" && break; sleep 0.1; done
done
declare -A h1=([haproxy]=$hp [A]=$pa [B]=$pb) h2=([haproxy]=$hp2 [A]=$pa [B]=$pb)
one() { # client target seconds -> "rps p99_ms"
    local f=$dir/run.txt
    if [[ $1 == wrk ]]; then
        taskset -c "$lcpu" wrk -t2 -c50 -d"$3"s --latency -s "$here/report.lua" "http://127.0.0.1:${h1[$2]}/" >"$f" 2>&1
        awk '/^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "%.0f %.3f\n", v["rps"], v["p99_us"] / 1000 }' "$f"
    else
        # h2load appends to its log: a run's percentiles are its own only
        # from an empty file.
        rm -f "$dir/h2.log"
        taskset -c "$lcpu" h2load -t1 -c10 -m10 -D "$3" --log-file="$dir/h2.log" "http://127.0.0.1:${h2[$2]}/" >"$f" 2>&1
        local rps p99
        rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$f")
        p99=$(awk '{ print $3 }' "$dir/h2.log" | sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.99 + 0.999); printf "%.3f", a[i] / 1000 }')
        echo "${rps%.*} $p99"
    fi
}
for c in "${clients[@]}"; do for t in haproxy A B; do one "$c" "$t" 1 >/dev/null; done; done
for ((r = 1; r <= rounds; r++)); do
    for c in "${clients[@]}"; do
        for t in haproxy A B; do
            read -r rps p99 < <(one "$c" "$t" "$duration")
            echo "$r $c $t $rps $p99" | tee -a "$dir/all.txt"
            sleep 0.5
        done
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for c in "${clients[@]}"; do
    for t in haproxy A B; do
        rps=$(awk -v c="$c" -v t="$t" '$2 == c && $3 == t { print $4 }' "$dir/all.txt" | median)
        p99=$(awk -v c="$c" -v t="$t" '$2 == c && $3 == t { print $5 }' "$dir/all.txt" | median)
        printf '%-7s %-8s median %6d req/s (%.2fx HAProxy), p99 %6.3f ms\n' "$c" "$t" "$rps" \
            "$(awk -v c="$c" -v r="$rps" '$2 == c && $3 == "haproxy" { print $4 }' "$dir/all.txt" | median | awk -v r="$rps" '{ print r / $1 }')" "$p99"
    done
done
