#!/usr/bin/env bash
# Ends an app the way Kubernetes does, under lameduck, and shows each step:
# the app (a Python HTTP server behind `sh -c`, the shell-form pitfall) keeps
# serving through the drain delay after SIGTERM, hooks run, and the exit code
# is the app's own.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p lameduck-cli
bin="${CARGO_TARGET_DIR:-target}/release/lameduck"

# Ports nobody listens on now, picked by the kernel (PORT, FRONT_PORT and
# ADMIN_PORT choose them instead).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="${PORT:-$(free_port)}"

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

# --- Part two: the drain proxy in front of the same app -----------------------
# The app now exits at once on SIGTERM, as most do. lameduck listens in front
# of it, fails readiness at SIGTERM, keeps serving for the delay, tells clients
# to close, and stops the app only once nothing is in flight.
front="${FRONT_PORT:-$(free_port)}"
admin="${ADMIN_PORT:-$(free_port)}"
while [ "$front" = "$port" ]; do front=$(free_port); done
while [ "$admin" = "$port" ] || [ "$admin" = "$front" ]; do admin=$(free_port); done
say "lameduck run --listen 127.0.0.1:$front --upstream 127.0.0.1:$port --admin 127.0.0.1:$admin --drain-delay 2s -- python3 server.py"
"$bin" run --listen "127.0.0.1:$front" --upstream "127.0.0.1:$port" --admin "127.0.0.1:$admin" \
  --drain-delay 2s --grace-period 10s \
  -- python3 examples/wrap-an-app/server.py --port "$port" &
pid=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/ready")" = 200 ]; do
  kill -0 "$pid" 2>/dev/null || { echo "lameduck exited early"; exit 1; }
done
say "ready: $(curl -s "http://127.0.0.1:$admin/ready")"

say "kubelet: SIGTERM to PID $pid (lameduck)"
kill -TERM "$pid"
say "readiness now: $(curl -s "http://127.0.0.1:$admin/ready")"
# The balancers have not noticed yet and keep sending for a while.
ok=0 failed=0
for _ in $(seq 1 15); do
  if curl -fsS "http://127.0.0.1:$front/" >/dev/null 2>&1; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
  sleep 0.05
done
say "requests sent during the drain delay: $ok answered, $failed failed"
set +e
wait "$pid"
code=$?
set -e
say "lameduck exited with $code: the app heard SIGTERM only once nothing was in flight"
