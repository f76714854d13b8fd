#!/usr/bin/env bash
# Builds tykdr, makes sure redis-server, redis-cli, zstd and age are there (scripts/tools.sh), then runs the Redis
# restore benchmark (bench/redis-restore.ts) and the key-level backup benchmark (bench/redis-keys.ts) at their
# default sizes (1,000,000 keys each). Extra arguments go to both, e.g.:
#   bash bench/restore-run.sh --runs 3
#   bash bench/restore-run.sh --keys 100000 --quiet-wait 0
# Figures go to stdout, progress to stderr. It prints PASS/MISS against the targets and always exits 0 unless a
# benchmark itself could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
npm run build --silent
bash scripts/tools.sh
rc=0
npx tsx bench/redis-restore.ts "$@" || rc=$?
echo
npx tsx bench/redis-keys.ts "$@" || rc=$?
exit $rc
