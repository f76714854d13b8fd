#!/usr/bin/env bash
# Builds tykdr, makes sure PostgreSQL 15 (server, pgbench, client tools) and age are installed, then runs the
# PostgreSQL backup/restore benchmark (pgbench scale 70, about 1 GB). Extra arguments go to the benchmark, e.g.:
#   bash bench/postgres-run.sh --runs 3
#   bash bench/postgres-run.sh --scale 10 --quiet-wait 0
# Figures go to stdout, progress to stderr. It always exits 0 unless the benchmark itself could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
npm run build --silent
PG_BIN="${TYKDR_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$PG_BIN/pgbench" ] || ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client-15 age
fi
exec npx tsx bench/postgres-backup.ts "$@"
