#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: a virtualenv in .venv
# with fogfed installed from this checkout, at the versions requirements.lock pins.
# Usage: source scripts/bootstrap.sh [extras]   (extras e.g. "test,ape")
set -euo pipefail
FOGFED_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FOGFED_VENV:-$FOGFED_ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "fogfed: creating virtualenv $VENV" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade "pip>=24"
fi
spec="$FOGFED_ROOT"
[ -n "${1:-}" ] && spec="$FOGFED_ROOT[$1]"
echo "fogfed: installing Python packages (pinned by requirements.lock)" >&2
"$VENV/bin/python" -m pip install -q -c "$FOGFED_ROOT/requirements.lock" -e "$spec"
export PATH="$VENV/bin:$PATH"
