#!/usr/bin/env bash
# Installs the packages of dist/ (scripts/package.sh) the way a user would,
# with no network: the wheel into a fresh virtualenv (`pip install
# --no-index`), the npm tarball into a fresh npm project (`npm install
# --offline`, engine-strict, so a dependency that demands a newer Node than
# package.json's `engines` fails). Each then decides the sample requests of
# testdata/requests.jsonl against the reference pack, from outside the
# checkout: all three outcomes must occur, and both packages must decide
# every request alike. The sdist is checked for the sources a build needs.
#
#   scripts/test-packages.sh          (after scripts/package.sh)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dist="$root/dist"
python="${PYTHON:-python3}"

shopt -s nullglob
wheels=("$dist"/agentriage-*-abi3-*.whl)
sdists=("$dist"/agentriage-*.tar.gz)
tarballs=("$dist"/agentriage-*.tgz)
shopt -u nullglob
if [ ${#wheels[@]} -ne 1 ] || [ ${#sdists[@]} -ne 1 ] || [ ${#tarballs[@]} -ne 1 ]; then
    echo "error: dist/ must hold one abi3 wheel, one sdist and one npm tarball; run scripts/package.sh" >&2
    ls -l "$dist" >&2 || true
    exit 1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
pack="$root/policies/a2a-supply-chain"
requests="$root/testdata/requests.jsonl"

echo "==> wheel: $(basename "${wheels[0]}")"
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "error: $python cannot create virtualenvs: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
fi
"$python" -m venv "$scratch/venv"
PIP_NO_INDEX=1 "$scratch/venv/bin/python" -m pip install --quiet --no-index "${wheels[0]}"
# Run from the scratch directory, so `import agentriage` cannot find the
# sources of the checkout.
(cd "$scratch" && "$scratch/venv/bin/python" - "$pack" "$requests" <<'PY'
import json, sys
import agentriage

pack, requests = sys.argv[1], sys.argv[2]
assert "site-packages" in agentriage.__file__, agentriage.__file__
engine = agentriage.Engine.from_bundle(pack)
lines = [l for l in open(requests) if l.strip()]
outcomes = [engine.decide(line).outcome.value for line in lines]
print(" ".join(outcomes))
# The pack's sample requests cover all three outcomes.
assert {"execute", "reject", "escalate"} <= set(outcomes), outcomes
PY
) > "$scratch/python.out"
cat "$scratch/python.out"

echo "==> sdist: $(basename "${sdists[0]}")"
listing="$(tar -tzf "${sdists[0]}")"
for member in pyproject.toml Cargo.toml Cargo.lock bindings/python/src/lib.rs core/src/lib.rs python/agentriage/__init__.py; do
    if ! grep -q "^[^/]*/$member\$" <<<"$listing"; then
        echo "error: the sdist lacks $member" >&2
        exit 1
    fi
done
echo "pyproject, workspace manifest and lock, sources of the module and the core: present"

echo "==> npm tarball: $(basename "${tarballs[0]}")"
mkdir "$scratch/project"
(
    cd "$scratch/project"
    npm init -y >/dev/null
    npm install --offline --engine-strict --no-audit --no-fund --silent "${tarballs[0]}"
    test -f node_modules/agentriage/agentriage."$(node -p 'process.platform + "-" + process.arch')".node
    node - "$pack" "$requests" <<'JS'
const { readFileSync } = require('node:fs')
const assert = require('node:assert/strict')
const { Engine } = require('agentriage')
const [pack, requests] = process.argv.slice(2)
assert.match(require.resolve('agentriage'), /node_modules/)
const engine = Engine.fromBundle(pack)
const outcomes = readFileSync(requests, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => engine.decideSync(l).outcome)
console.log(outcomes.join(' '))
for (const o of ['execute', 'reject', 'escalate']) assert.ok(outcomes.includes(o), o)
JS
) > "$scratch/node.out"
cat "$scratch/node.out"

# The same requests, the same outcomes, in both languages.
if ! cmp -s "$scratch/python.out" "$scratch/node.out"; then
    echo "error: the Python and Node packages decided differently" >&2
    exit 1
fi
echo "==> both packages installed offline and decided alike"
