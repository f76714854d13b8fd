#!/usr/bin/env bash
# Builds tykdr (and its command manifest), makes sure redis-server, redis-cli, zstd, age and MinIO are there
# (scripts/tools.sh), then prints issue 10's table (bench/issue-table.ts): the Redis restore (rdb-file, live), the
# Redis backup (MinIO, folder), CPU, start-up, and with BENCH_PG=1 PostgreSQL, raw tools and tykdr side by side in one
# run, with PASS/MISS against the issue's targets. Scale and rounds come from the environment:
#   bash bench/run.sh                                   # 1,000,000 keys, one round per benchmark
#   BENCH_KEYS=200000 bash bench/run.sh                 # smaller, for a busy machine
#   BENCH_KEYS=200000 BENCH_RUNS=3 BENCH_QUIET_WAIT=0 bash bench/run.sh
#   BENCH_PG=1 BENCH_PG_SCALE=10 bash bench/run.sh      # also PostgreSQL (needs PostgreSQL 15: bench/postgres-run.sh)
# The table goes to stdout, progress to stderr, each benchmark's full output to bench/out/. Always exits 0 unless a
# benchmark itself could not run. The benchmarks one by one (bench/README.md): bench/redis-backup.ts,
# bench/redis-restore.ts (bench/restore-run.sh), bench/redis-keys.ts, bench/postgres-run.sh,
# npx tsx bench/redis-keys-throughput.ts, npx tsx bench/crc64.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
npm run build --silent
bash scripts/tools.sh
BENCH_COMMAND="${BENCH_KEYS:+BENCH_KEYS=$BENCH_KEYS }bash bench/run.sh" exec npx tsx bench/issue-table.ts "$@"
