#!/usr/bin/env bash
# Generates the typedoc API reference into docs/api (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm exec typedoc
echo "API reference written to docs/api/index.html"
