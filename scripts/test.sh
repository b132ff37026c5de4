#!/usr/bin/env bash
# Runs every test: set-up first (idempotent), then the whole vitest suite.
# As root the eBPF integration tests run against the real kernel; with CI=true
# they fail (never skip) when they cannot run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
pnpm exec tsc -p packages/core/tsconfig.json --noEmit
pnpm exec vitest run "$@"
