#!/usr/bin/env bash
# Ends an app the way Kubernetes does, under lameduck, and shows each step:
# the app (a Python HTTP server behind `sh -c`, the shell-form pitfall) keeps
# serving through the drain delay after SIGTERM, hooks run, and the exit code
# is the app's own.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p lameduck-cli
bin="${CARGO_TARGET_DIR:-target}/release/lameduck"
port="${PORT:-18080}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "lameduck run --drain-delay 2s ... -- sh -c 'python3 server.py --port $port'"
"$bin" run --drain-delay 2s --grace-period 10s \
  --on-drain 'echo "on-drain hook: deregistering from the service registry"' \
  --post-stop 'echo "post-stop hook: flushing logs"' \
  -- sh -c "python3 examples/wrap-an-app/server.py --port $port; echo 'sh: app done'" &
pid=$!

until curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || { echo "lameduck exited early"; exit 1; }
done
say "serving: $(curl -fsS "http://127.0.0.1:$port/")"

say "kubelet: SIGTERM to PID $pid (lameduck)"
kill -TERM "$pid"
say "during the drain delay the app still answers: $(curl -fsS "http://127.0.0.1:$port/")"

set +e
wait "$pid"
code=$?
set -e
say "lameduck exited with $code: the code of the app it started (sh, ended by SIGTERM: 128+15; the server behind it finished cleanly)"
