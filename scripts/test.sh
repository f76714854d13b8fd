#!/usr/bin/env bash
# The whole test suite from a clean clone: installs npm dependencies, builds, installs/builds the test
# servers (scripts/tools.sh, cached in .tools/), then runs every test against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc -p tsconfig.json
bash scripts/tools.sh
exec npx vitest run "$@"
