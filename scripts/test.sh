#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the Python test tools and the
# npm tools (solc, Anvil, Ganache, js-ipfs), then runs pytest. The pytest fixtures
# start and stop Anvil, Ganache and an offline IPFS node on 127.0.0.1.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gas -x).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" "test,ape"
cd "$FOGFED_ROOT"
echo "fogfed: installing npm tools (pinned by package-lock.json)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
export PATH="$FOGFED_ROOT/node_modules/.bin:$PATH"
exec python -m pytest -n 2 -p no:cacheprovider "$@"
