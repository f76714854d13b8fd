#!/usr/bin/env bash
# The whole test suite from a clean clone: installs npm dependencies, builds, installs/builds the test
# servers (scripts/tools.sh, cached in .tools/), then runs every test against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
npm run build --silent
bash scripts/tools.sh
exec npx vitest run "$@"
