#!/usr/bin/env bash
# Builds the packages a user installs, into dist/:
#   agentriage-<v>-cp39-abi3-<platform>.whl   Python wheel (abi3: CPython >= 3.9), stripped
#   agentriage-<v>.tar.gz                      Python sdist (builds with maturin + cargo)
#   agentriage-<v>.tgz                         npm tarball with the prebuilt, stripped addon
#
#   scripts/package.sh            (from anywhere; needs cargo, python3 with venv, node >= 20, npm)
#
# All three builds use the workspace's target/ and the release profile, so
# the second and third reuse the dependencies the first compiled.
# scripts/test-packages.sh installs each into a fresh environment, offline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# maturin from PyPI, in a virtualenv of its own under target/.
python="${PYTHON:-python3}"
venv="${AGENTRIAGE_PACKAGE_VENV:-$root/target/venv-package}"
if [ ! -x "$venv/bin/maturin" ]; then
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "error: $python cannot create virtualenvs (no venv or ensurepip module):" >&2
        echo "       install python3-venv (Debian/Ubuntu: apt-get install python3-venv) or set PYTHON" >&2
        exit 1
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "maturin>=1.9,<2"
fi

dist="$root/dist"
mkdir -p "$dist"
rm -f "$dist"/agentriage-*.whl "$dist"/agentriage-*.tar.gz "$dist"/agentriage-*.tgz

echo "==> Python wheel (maturin build --release, stripped)"
"$venv/bin/maturin" build --release --strip --locked \
    --manifest-path bindings/python/Cargo.toml --out "$dist"
echo "==> Python sdist"
"$venv/bin/maturin" sdist --manifest-path bindings/python/Cargo.toml --out "$dist"

echo "==> npm tarball (the addon built by scripts/build.mjs: release, stripped)"
(
    cd bindings/node
    node scripts/build.mjs
    npm pack --silent --pack-destination "$dist" >/dev/null
)

echo "==> dist/"
ls -l "$dist"
