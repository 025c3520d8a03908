#!/usr/bin/env bash
# Installs what the tests need (idempotent) and runs them all: format, lints,
# unit, doc and end-to-end tests. The end-to-end tests start real processes
# in real PID namespaces, so they want root (unshare) and util-linux.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v unshare >/dev/null || need+=(util-linux)
command -v script >/dev/null || need+=(bsdutils)
command -v python3 >/dev/null || need+=(python3)
command -v ps >/dev/null || need+=(procps)
# Real clients of the drain proxy's tests, none built on hyper.
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
command -v nghttp >/dev/null || need+=(nghttp2-client)
command -v h2load >/dev/null || need+=(nghttp2-client)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# The linter's shell table is checked against the shells themselves.
command -v dash >/dev/null || need+=(dash)
command -v bash >/dev/null || need+=(bash)
command -v busybox >/dev/null || need+=(busybox)
# lameduck check's report page is rendered by a real browser in its tests.
command -v chromium >/dev/null || need+=(chromium)
# deploy/ is rendered with `kubectl kustomize`, as users apply it.
command -v kubectl >/dev/null || need+=(kubectl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
# ... and four from PyPI (a Debian python may want --break-system-packages):
# jsonschema validates the linter's SARIF against the vendored schema; h2
# drives the HTTP/2 fan-out against the proxy; kubernetes-validate checks
# deploy/ against the Kubernetes schemas.
if ! python3 -c 'import websockets, grpc, jsonschema, h2, kubernetes_validate' 2>/dev/null ||
  ! command -v kubernetes-validate >/dev/null; then
  python3 -m pip install -q websockets grpcio jsonschema h2 kubernetes-validate 2>/dev/null ||
    python3 -m pip install -q --break-system-packages websockets grpcio jsonschema h2 kubernetes-validate
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-features --locked
# Every public item documented, every intra-doc link resolved.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked --quiet
