#!/usr/bin/env bash
# The main job: set-up (idempotent), then the live demo agent, which prints
# enriched process events until Ctrl-C (or --duration SECONDS).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
exec node examples/agent/dist/main.js "$@"
