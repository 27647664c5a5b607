#!/usr/bin/env bash
# The main job on embedded defaults (no server needed): installs fogfed, then runs it.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" ""
exec fogfed gas-report "$@"
