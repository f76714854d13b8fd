#!/usr/bin/env bash
# Installs the npm dependencies, exactly as locked, when node_modules is missing or older than the lock file.
# `npm ci`: it installs what package-lock.json says and fails if the lock does not match package.json.
# The lock lists the optional platform packages of every OS and CPU (rollup, esbuild, typescript), not only
# this machine's: npm 11's `npm ci` refuses a lock that lacks some of them as "out of sync". After changing
# dependencies, refresh the lock with `npm install --package-lock-only` (it resolves every platform's entries
# from the registry's metadata; only this machine's builds are downloaded at install time) and commit it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
