#!/usr/bin/env bash
# Installs the npm dependencies when node_modules is missing or older than the lock file.
# `npm install`, not `npm ci`: the registry this project uses serves only the Linux builds of optional
# platform packages (rollup's), so the lock file lists only those, and npm 11's `npm ci` then refuses it as
# "out of sync". `npm install` with the committed lock installs exactly the locked versions.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund
fi
