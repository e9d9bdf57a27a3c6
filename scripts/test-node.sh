#!/usr/bin/env bash
# Builds the Node module's native addon from source and runs its tests
# (node --test over bindings/node/test and the example's test).
#
#   scripts/test-node.sh        (from anywhere; needs cargo, node >= 20, npm)
#
# The addon is built with the `test-hooks` cargo feature, which adds the
# native hook the panic test needs; `npm run build` builds it without.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../bindings/node"

# npm ci on a fresh checkout or when the lockfile changed; otherwise the
# installed packages are already what package-lock.json says.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

npm run --silent build:test
AGENTRIAGE_REQUIRE_TEST_HOOKS=1 RUST_BACKTRACE=0 npm test
