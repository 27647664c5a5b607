#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the Python test tools, the
# npm tools (solc, Anvil, Ganache, js-ipfs) and Chromium (apt), then runs pytest. The pytest fixtures
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
# Headless Chromium checks the audit report's HTML (tests/audit/test_report_browser.py).
if ! command -v chromium >/dev/null 2>&1; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$as_root" ] || sudo -n true 2>/dev/null; }; then
    echo "fogfed: installing chromium with apt (headless check of the audit report)" >&2
    $as_root apt-get install -y -q chromium >&2 || { $as_root apt-get update -q >&2 && $as_root apt-get install -y -q chromium >&2; } \
      || echo "fogfed: warning: apt could not install chromium: the audit report's browser check will be skipped" >&2
  else
    echo "fogfed: apt is not available here: the audit report's headless-browser check will be skipped" >&2
  fi
fi
export PATH="$FOGFED_ROOT/node_modules/.bin:$PATH"
# --dist loadfile: a test file runs on one worker, in order, so its module fixtures are built once and
# tests that build on the state an earlier test of the same file left (tests/tas/test_tree_growth.py) hold.
exec python -m pytest -n 2 --dist loadfile -p no:cacheprovider "$@"
