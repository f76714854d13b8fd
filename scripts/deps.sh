#!/usr/bin/env bash
# Installs the npm dependencies, exactly as locked, when node_modules is missing or older than the lock file.
# `npm ci`: it installs what package-lock.json says and fails if the lock does not match package.json.
# The lock lists the optional platform packages of every OS and CPU (rollup, esbuild, typescript), not only
# this machine's: npm 11's `npm ci` refuses a lock that lacks some of them as "out of sync". After changing
# dependencies, refresh the lock with `npm install --package-lock-only` (it resolves every platform's entries
# from the registry's metadata; only this machine's builds are downloaded at install time) and commit it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Whether node_modules matches the lock is decided by content (the lock's SHA-256, kept in node_modules after a
# successful install), not by modification times: a fresh checkout or a git worktree gives package-lock.json a
# new mtime, and `npm ci` would then reinstall for nothing.
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.tykdr-lock-sha256
if [ -L node_modules ]; then
  # A shared node_modules (a symlink, e.g. from a git worktree): `npm ci` would empty the directory it points to.
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "deps.sh: node_modules is a symlink to $(readlink -f node_modules) and does not match package-lock.json; install there (npm ci) or replace the link with a directory" >&2
    exit 1
  fi
elif [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
