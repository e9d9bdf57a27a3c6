#!/usr/bin/env bash
# Builds and tests the Python module: installs ./bindings/python (and its
# test requirements) into a virtualenv under target/, then runs pytest over
# bindings/python: the shared decision cases, conversion, threads, the
# stubtest check and the LangGraph example. Run from anywhere; works on a
# fresh machine with Python >= 3.9, pip and a Rust toolchain.
#
#   scripts/test-python.sh            # build, install, test
#   scripts/test-python.sh -k threads # extra arguments go to pytest
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
venv="${AGENTRIAGE_PY_VENV:-$root/target/venv-python}"

if [ ! -x "$venv/bin/python" ]; then
    echo "==> creating $venv"
    # Debian and Ubuntu ship `venv` without ensurepip unless python3-venv
    # is installed: say so instead of leaving a half-made virtualenv.
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "error: $python cannot create virtualenvs (no venv or ensurepip module):" >&2
        echo "       install python3-venv (Debian/Ubuntu: apt-get install python3-venv) or set PYTHON" >&2
        exit 1
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi

# The `test-hooks` feature adds a function that panics on purpose, so the
# tests can prove a panic becomes agentriage.InternalError. Release wheels
# built by a plain `pip install ./bindings/python` do not have it.
echo "==> pip install -r bindings/python/requirements-test.txt"
"$venv/bin/python" -m pip install --quiet -r bindings/python/requirements-test.txt

# The reference engines of the differential suite (fidelity/, docs/fidelity.md):
# OPA's Go engine behind a ctypes wrapper, and Cedar. The OPA wheel's metadata
# asks for Python 3.14; the wheel itself runs on 3.9 and later.
echo "==> pip install the reference engines (OPA, Cedar)"
"$venv/bin/python" -m pip install --quiet --ignore-requires-python \
    "opa-golib-python-bindings==0.4.4" "cedarpy==4.12.2"

echo "==> pip install ./bindings/python (release build, features: test-hooks)"
MATURIN_PEP517_ARGS="--features test-hooks" \
    "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps ./bindings/python

# The OTLP receiver tests (tests/test_otlp_receivers.py) run the CLI's
# exporter; `cargo test` builds the same debug binary, so after it this is
# a no-op.
echo "==> cargo build -p agentriage-cli (for the OTLP receiver tests)"
cargo build --quiet --locked -p agentriage-cli
export AGENTRIAGE_CLI="${AGENTRIAGE_CLI:-$root/target/debug/agentriage}"

echo "==> pytest bindings/python"
# Strict: a missing test tool (mypy, langgraph) or test hook fails the run
# instead of skipping tests.
AGENTRIAGE_PY_STRICT=1 "$venv/bin/python" -m pytest bindings/python -p no:cacheprovider "$@"
