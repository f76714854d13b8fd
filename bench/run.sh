#!/usr/bin/env bash
# Builds tykdr, makes sure redis-server, redis-cli, zstd, age and MinIO are there (scripts/tools.sh), then runs
# the backup benchmark at 100,000 and 1,000,000 keys. Extra arguments go to the benchmark, e.g.:
#   bash bench/run.sh --runs 3
#   bash bench/run.sh --sizes 100000 --profile
# Figures go to stdout, progress to stderr. It prints PASS/MISS against the targets and always exits 0
# unless the benchmark itself could not run.
# The other benchmarks (bench/README.md): bench/restore-run.sh (Redis restore and key-level backup),
# bench/postgres-run.sh (PostgreSQL), npx tsx bench/redis-keys-throughput.ts (Redis source modes against raw tools),
# npx tsx bench/crc64.ts (CRC-64 throughput).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
npx tsc -p tsconfig.json
bash scripts/tools.sh
exec npx tsx bench/redis-backup.ts --sizes 100000,1000000 "$@"
