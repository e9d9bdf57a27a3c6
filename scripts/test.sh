#!/usr/bin/env bash
# Every check and every test of the project: the one command people, hooks
# and CI run. Needs Rust, Python 3 with pip, and Node with npm; everything
# else (maturin, pytest, @napi-rs/cli, test libraries) is installed from the
# registries into target/ and bindings/node/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step shows the time since the start, to see where CI time goes.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# --- Test servers -----------------------------------------------------------
# Tests that need a server binary start it themselves on 127.0.0.1 with a
# free port. Here the binary is installed when missing (Debian, as root), and
# AGENTRIAGE_REQUIRE_SERVERS=1 makes a test whose binary is still missing
# fail instead of skipping.
# need_server BINARY DEBIAN-PACKAGE
need_server() {
    if command -v "$1" >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing $2 (for $1)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
        echo "$1 is missing and the tests that need it will fail: install the Debian package $2 (sudo apt-get install $2)" >&2
    fi
}
export AGENTRIAGE_REQUIRE_SERVERS=1
# The Redis state store's tests (core/tests/state_*.rs, cli/tests/state.rs).
need_server redis-server redis-server
# The OCI registry of the bundle delivery tests (core/tests/delivery.rs).
need_server docker-registry docker-registry
# --- end of test servers -----------------------------------------------------

step "format (cargo fmt --check)"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets (their own workspace) without libFuzzer's C++ build; their
# bodies also run as tests (core/tests/fuzz_targets.rs). fuzz/README.md has
# the coverage-guided runs.
cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --no-default-features \
    --all-targets --locked -- -D warnings

step "API docs (cargo doc -D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "dependencies (cargo deny: advisories, licenses, duplicates, sources)"
if command -v cargo-deny >/dev/null 2>&1; then
    if [ -d "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs" ]; then
        # A local copy of the RustSec database (no fetch): see SECURITY.md.
        cargo deny --offline check
    else
        cargo deny check
    fi
else
    echo "cargo-deny is not installed: skipped (cargo install cargo-deny --locked)"
fi


step "Rust tests (core, cli)"
cargo test --locked

step "Python module"
bash scripts/test-python.sh

step "Node module"
bash scripts/test-node.sh

step "all checks passed"
