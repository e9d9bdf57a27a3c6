#!/usr/bin/env bash
# Every check and every test of the project: the one command people, hooks
# and CI run. Needs Rust, Python 3 with pip, and Node with npm; everything
# else (maturin, pytest, @napi-rs/cli, test libraries) is installed from the
# registries into target/ and bindings/node/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step shows the time since the start, to see where CI time goes, and
# the disk space left where target/ grows (a full disk fails a build with
# errors that do not say so: a linker's bus error, an LLVM I/O failure).
free_disk() { df -Pk . 2>/dev/null | awk 'NR == 2 { printf "%.1f GB free", $4 / 1048576 }'; }
step() { printf '\n==> [%dm%02ds, %s] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$(free_disk)" "$*"; }

# No incremental compilation caches: a run of every test builds each crate
# once, and the caches only take disk space (set CARGO_INCREMENTAL=1 to keep
# them for repeated local runs).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

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
# --- cargo-deny: installed with `cargo install` (into Cargo's bin
# directory, kept across clones) when missing; never skipped silently.
# AGENTRIAGE_SKIP_DENY=1 skips it with a notice, and is refused under CI.
deny_version="0.20.2"
if [ -n "${AGENTRIAGE_SKIP_DENY:-}" ]; then
    if [ -n "${CI:-}" ]; then
        echo "error: AGENTRIAGE_SKIP_DENY is not accepted in CI: the dependency check must run" >&2
        exit 1
    fi
    echo "NOTICE: cargo deny SKIPPED (AGENTRIAGE_SKIP_DENY is set): licenses, advisories and sources are unchecked"
else
    if ! command -v cargo-deny >/dev/null 2>&1; then
        echo "cargo-deny is missing: cargo install cargo-deny@$deny_version --locked (once; several minutes)"
        cargo install "cargo-deny@$deny_version" --locked --quiet
    fi
    # cargo-deny reads the metadata of every platform's dependencies, which
    # builds on this host never download (windows-sys, android_system_properties, …);
    # `cargo fetch` downloads them all from the registry (`--offline` below
    # only keeps cargo-deny itself from fetching).
    cargo fetch --locked --quiet
    # A fetched copy holds the database's `crates/` tree (a failed fetch
    # leaves an empty directory behind).
    if ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/*/crates >/dev/null 2>&1; then
        # A local copy of the RustSec database (no fetch): see SECURITY.md.
        cargo deny --offline check
    elif timeout 120 cargo deny fetch db >/dev/null 2>&1; then
        cargo deny check
    else
        # The advisory database lives on github.com; a machine that reaches
        # only the package registries checks everything else.
        echo "NOTICE: the RustSec advisory database cannot be fetched (github.com unreachable):" \
            "advisories NOT checked; bans, licenses and sources are"
        cargo deny --offline check bans licenses sources
    fi
fi
# --- end cargo-deny


step "Rust tests (core, cli)"
cargo test --locked

step "Python module"
bash scripts/test-python.sh

step "Node module"
bash scripts/test-node.sh

# --- packages: what users install, built and installed offline into fresh
# environments (scripts/package.sh, scripts/test-packages.sh)
step "packages (abi3 wheel, sdist, npm tarball into dist/)"
bash scripts/package.sh
step "packages installed offline (fresh venv, fresh npm project)"
bash scripts/test-packages.sh
# --- end packages

step "all checks passed"
