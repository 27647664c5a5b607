#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the Python test tools and the
# npm tools (solc, Anvil, Ganache, js-ipfs), then runs pytest. The pytest fixtures
# start and stop Anvil, Ganache and an offline IPFS node on 127.0.0.1.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gas -x).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" "test,ape,plot"
cd "$FOGFED_ROOT"
# `npm ci` installs exactly package-lock.json (complete for every platform, so npm
# never rewrites it). It wipes node_modules first, so it is skipped when
# node_modules was already installed from this very lock file (stamp below).
lock_sha="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.fogfed-lock.sha256"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]]; then
  echo "fogfed: installing npm tools with npm ci (pinned by package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock_sha" > "$stamp"
fi
export PATH="$FOGFED_ROOT/node_modules/.bin:$PATH"
exec python -m pytest -n 2 -p no:cacheprovider "$@"
