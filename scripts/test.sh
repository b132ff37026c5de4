#!/usr/bin/env bash
# Runs every test: set-up first (idempotent), then the whole vitest suite.
# As root the eBPF integration tests run against the real kernel; with CI=true
# they fail (never skip) when they cannot run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
for p in core k8s llm; do pnpm exec tsc -p "packages/$p/tsconfig.json" --noEmit; done
mkdir -p .cache
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest.json "$@" || status=$?
# A plain closing line that any CI log reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
