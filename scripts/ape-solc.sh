#!/usr/bin/env bash
# Run an Ape command offline with the project's own tools:
#   scripts/ape-solc.sh compile
#   scripts/ape-solc.sh test tests/ape --network ethereum:local:foundry --gas
#   scripts/ape-solc.sh run deploy --network ethereum:local:foundry
# ape-solidity looks for solc only at $SOLCX_BINARY_PATH/solc-v<version> and would
# otherwise try to download it; this places a shim there that runs scripts/solc.js
# (npm solcjs). ape-foundry starts `anvil` from PATH: the npm Anvil binary.
# Ape's data folder goes to .cache/ape so nothing is written outside the checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_MODULES="${FOGFED_NODE_MODULES:-$ROOT/node_modules}"
ANVIL_DIR="$NODE_MODULES/@foundry-rs/anvil-linux-amd64/bin"
if [ ! -f "$NODE_MODULES/solc/package.json" ] || [ ! -x "$ANVIL_DIR/anvil" ]; then
  echo "error: npm tools (solc, anvil) not found in $NODE_MODULES" >&2
  echo "hint: run scripts/test.sh once (it runs npm ci), or set FOGFED_NODE_MODULES" >&2
  exit 2
fi
if ! command -v ape >/dev/null; then
  echo "error: ape not found on PATH" >&2
  echo "hint: source .venv/bin/activate (scripts/test.sh installs the [ape] extra)" >&2
  exit 2
fi
VERSION="$(node -p "require('$NODE_MODULES/solc/package.json').version")"
export SOLCX_BINARY_PATH="$ROOT/.cache/solcx"
mkdir -p "$SOLCX_BINARY_PATH"
SHIM="$SOLCX_BINARY_PATH/solc-v$VERSION"
printf '#!/bin/sh\nexec node "%s/scripts/solc.js" "$@"\n' "$ROOT" > "$SHIM.tmp"
chmod +x "$SHIM.tmp"
mv -f "$SHIM.tmp" "$SHIM"  # atomic: parallel runs never see a half-written shim
export PATH="$ANVIL_DIR:$PATH"
export APE_DATA_FOLDER="${APE_DATA_FOLDER:-$ROOT/.cache/ape}"
cd "$ROOT"
exec ape "$@"
