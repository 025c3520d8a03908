#!/usr/bin/env bash
# The first thing to run: rehearses a rolling update of a small bundled app
# (examples/rehearsal/app.py, which exits at once on SIGTERM, as most apps
# do) the way Kubernetes does it, under load, behind a balancer that takes
# 1s to notice a deleted pod. First bare, then behind `lameduck run`.
# Each pod gets a PID and a network namespace of its own, which needs root.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
cargo build --release --quiet -p lameduck-cli || exit 1
bin="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/lameduck"
app="$(pwd)/examples/rehearsal/app.py"
out="${OUT_DIR:-target/rehearsal}"
mkdir -p "$out"
common=(--replicas 2 --endpoint-lag 1s --grace-period 10s --clients 4 --rps 200)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. the app alone: lameduck check ${common[*]} -- python3 app.py --port '{port}'"
"$bin" check "${common[@]}" --report "$out/bare.html" -- python3 "$app" --port '{port}'
bare=$?

if [ "$(id -u)" != 0 ]; then
  say "2. needs root (a network namespace per pod, so that every pod has ports 8080 and 9901); run as root to see it"
  exit 0
fi
say "2. the same app behind lameduck run (drain proxy on :{port}, readiness on :9901/ready)"
"$bin" check "${common[@]}" --readiness http:9901/ready --report "$out/lameduck.html" -- \
  "$bin" run --listen '0.0.0.0:{port}' --upstream 127.0.0.1:9000 --admin 0.0.0.0:9901 \
  --drain-delay 2s --grace-period 10s -- python3 "$app" --port 9000
behind=$?

say "reports: $out/bare.html (exit $bare) and $out/lameduck.html (exit $behind)"
[ "$bare" = 1 ] && [ "$behind" = 0 ]
