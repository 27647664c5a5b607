#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the Python test tools and the
# npm tools (solc, Anvil, Ganache, js-ipfs), then runs pytest. The pytest fixtures
# start and stop Anvil, Ganache and an offline IPFS node on 127.0.0.1.
# Extra arguments go to pytest (e.g. scripts/test.sh -k gas -x).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" "test,ape"
cd "$FOGFED_ROOT"
echo "fogfed: installing npm tools (pinned by package-lock.json)" >&2
# Not `npm ci`: npm 11 leaves the other platforms' optional Anvil binaries out of the
# lock file and then refuses it as out of sync. `npm install` installs exactly the
# locked versions and leaves the lock file unchanged (checked below).
npm install --no-audit --no-fund --loglevel=error >&2
if git -C "$FOGFED_ROOT" rev-parse --git-dir >/dev/null 2>&1 && ! git -C "$FOGFED_ROOT" diff --quiet -- package-lock.json; then
  echo "fogfed: warning: npm changed package-lock.json; the npm tools differ from the pinned ones" >&2
fi
export PATH="$FOGFED_ROOT/node_modules/.bin:$PATH"
exec python -m pytest -n 2 -p no:cacheprovider "$@"
