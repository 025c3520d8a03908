#!/usr/bin/env bash
# The first thing to run: rehearses a rolling update of a small bundled app
# (examples/rehearsal/app.py, which exits at once on SIGTERM, as most apps
# do) the way Kubernetes does it, under load, behind a balancer that takes
# 1s to notice a deleted pod. First bare, then behind `lameduck run` with its
# defaults, then both side by side.
#
# Each pod gets a PID and a network namespace of its own (every pod binds
# the same ports, as in a cluster), which needs root, iproute2's `ip` and
# util-linux's `unshare` and `nsenter`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Everything it needs, checked before anything runs, in one message.
missing=()
[ "$(id -u)" = 0 ] || missing+=("root")
tools="ip:iproute2 unshare:util-linux nsenter:util-linux python3:python3"
[ -n "${LAMEDUCK_BIN:-}" ] || tools+=" cargo:cargo"
for tool in $tools; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool%%:*} (package ${tool#*:})")
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'rehearse.sh needs: %s.\n' "$(IFS=,; echo "${missing[*]}" | sed 's/,/, /g')" >&2
  printf 'Install what is missing (Debian/Ubuntu: apt-get install iproute2 util-linux python3; Rust from https://rustup.rs), then run it as root: sudo -E %s\n' "$0" >&2
  exit 2
fi

if [ -n "${LAMEDUCK_BIN:-}" ]; then
  bin="$LAMEDUCK_BIN" # a lameduck built already
else
  say "building lameduck (release; the first build takes a few minutes)"
  cargo build --release -p lameduck-cli || exit 1
  bin="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/lameduck"
fi
app="$(pwd)/examples/rehearsal/app.py"
out="${OUT_DIR:-target/rehearsal}"
mkdir -p "$out"
common=(--replicas 2 --endpoint-lag 1s --grace-period 10s --clients 8 --rps 200)

say "1. before: the app alone"
echo "lameduck check ${common[*]} -- python3 app.py --port '{port}'"
"$bin" check "${common[@]}" --json "$out/before.json" --report "$out/before.html" -- \
  python3 "$app" --port '{port}'
before=$?

say "2. after: the same app behind lameduck run (drain proxy on :{port}, readiness on :9901/ready)"
echo "lameduck check ${common[*]} --readiness http:9901/ready -- lameduck run --listen '0.0.0.0:{port}' --upstream 127.0.0.1:9000 --admin 0.0.0.0:9901 --grace-period 10s -- python3 app.py --port 9000"
"$bin" check "${common[@]}" --readiness http:9901/ready \
  --json "$out/after.json" --report "$out/after.html" -- \
  "$bin" run --listen '0.0.0.0:{port}' --upstream 127.0.0.1:9000 --admin 0.0.0.0:9901 \
  --grace-period 10s -- python3 "$app" --port 9000
after=$?

say "before and after"
"$bin" check --compare "$out/before.json" "$out/after.json" --report "$out/compare.html"
echo
echo "pages: $out/before.html, $out/after.html and, side by side on one scale, $out/compare.html"
echo "exit: before $before (1: something lost), after $after (0: nothing lost)"
[ "$before" = 1 ] && [ "$after" = 0 ]
