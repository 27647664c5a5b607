#!/usr/bin/env bash
# The main job on embedded defaults (no server needed): installs fogfed, then runs
# the paper's whole scenario (`fogfed demo`). Extra arguments go to it (e.g. --json-file demo.json).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" ""
exec fogfed demo "$@"
