#!/usr/bin/env bash
# The main job end to end on embedded defaults, from a clean clone: builds tykdr, starts a throwaway Redis
# seeded with a Tyk-like keyspace, a gateway config tree, and (when PostgreSQL 15 is installed, as
# scripts/tools.sh does) a throwaway PostgreSQL with a Dashboard-like database; generates an age identity,
# writes a tykdr.yaml with `tykdr init` and a local folder as the store, then:
#   1. backs up           tykdr backup; tykdr snapshots; tykdr snapshot show latest
#   2. the disaster       Redis FLUSHALL, apps/ deleted (and the Dashboard's API table dropped)
#   3. restores           tykdr restore --plan full, and shows that keys, files and rows are back
#   4. drills             tykdr drill --plan full: the same restore into scratch targets, production untouched
# and prints where the HTML reports are. Everything lives in .tykdr/demo (ignored; TYKDR_DEMO_DIR moves it);
# run it again to add snapshots. TYKDR_DEMO_REDIS_PORT / TYKDR_DEMO_PG_PORT pick the ports (16379 / 15432);
# TYKDR_DEMO_PG_DIR the PostgreSQL cluster's folder; TYKDR_DEMO_POSTGRES=0 leaves PostgreSQL out.
# TYKDR_DEMO_SKIP_SETUP=1 skips the dependencies, build and tools steps (the test suite has done them, and
# rebuilding dist/ while other tests run the CLI would break those runs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ "${TYKDR_DEMO_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/deps.sh
  npm run build --silent
  bash scripts/tools.sh
fi
demo=${TYKDR_DEMO_DIR:-"$root/.tykdr/demo"}
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)
tykdr() { node "$root/bin/run.js" "$@"; }
step() { printf '\n==> %s\n' "$*"; }
# wait_for WHAT TRIES CMD...: runs CMD every 0.1 s until it succeeds, at most TRIES times.
wait_for() {
  local what=$1 tries=$2
  shift 2
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: $what did not come up; see the logs in $demo" >&2
  return 1
}

port=${TYKDR_DEMO_REDIS_PORT:-16379}
pg_port=${TYKDR_DEMO_PG_PORT:-15432}
pg_bin=/usr/lib/postgresql/15/bin
use_pg=0
if [ "${TYKDR_DEMO_POSTGRES:-1}" != 0 ] && [ -x "$pg_bin/initdb" ]; then use_pg=1; fi
# PostgreSQL refuses to run as root: as root, its tools run as the `postgres` system user (the package creates
# it), and its cluster lives where that user can reach it (the demo folder may sit under a 0700 home).
if [ "$(id -u)" -eq 0 ]; then pg_default="/tmp/tykdr-demo-postgres-$pg_port"; else pg_default="$demo/postgres"; fi
pg_dir=${TYKDR_DEMO_PG_DIR:-$pg_default}
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_all() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  if [ "$use_pg" = 1 ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" stop -D "$pg_dir/data" -m fast -s -w -t 30 >/dev/null 2>&1 || true
  fi
}
trap stop_all EXIT

step "Starting a throwaway Redis on 127.0.0.1:$port"
# repl-diskless-sync-delay 0: this Redis has no replicas to wait for, so a backup starts at once (the default
# 5 s delay is explained in the README).
redis-server --port "$port" --bind 127.0.0.1 --dir "$demo" --save "" --appendonly no \
  --repl-diskless-sync-delay 0 --daemonize yes --pidfile "$demo/redis.pid" --logfile "$demo/redis.log"
wait_for "Redis on port $port" 100 redis-cli -p "$port" ping
# Seed: Tyk-like sessions, an OAuth client, a certificate, and ephemeral keys that the classes tell apart.
{
  for i in $(seq 1 2000); do
    printf 'SET apikey-%032x "{\\"org_id\\":\\"demo\\",\\"alias\\":\\"user-%d\\",\\"last_updated\\":\\"%d\\"}" EX 86400\n' "$i" "$i" "$(date +%s)"
  done
  echo 'SET oauth-data.api1.oauth-clientid.client1 "{\"id\":\"client1\"}"'
  echo 'SET cert-raw-demo1 "-----BEGIN CERTIFICATE-----"'
  echo 'SET rate-limit-demo 1 EX 60'
  echo 'RPUSH analytics-tyk-system-analytics rec1 rec2'
} | redis-cli -p "$port" >/dev/null
echo "Redis holds $(redis-cli -p "$port" dbsize) keys."

gw="$demo/tyk-gateway"
mkdir -p "$gw/apps" "$gw/policies"
[ -f "$gw/tyk.conf" ] || printf '{"listen_port":8080,"secret":"demo-secret","hash_keys":true,"app_path":"apps/"}\n' > "$gw/tyk.conf"
[ -f "$gw/apps/api1.json" ] || printf '{"api_id":"api1","name":"Demo API"}\n' > "$gw/apps/api1.json"
[ -f "$gw/apps/api2.json" ] || printf '{"api_id":"api2","name":"Orders API"}\n' > "$gw/apps/api2.json"
[ -f "$gw/policies/policies.json" ] || printf '{}\n' > "$gw/policies/policies.json"

export TYKDR_DEMO_PG_PASSWORD=demo-pg-password
pg_psql() { PGPASSWORD=$TYKDR_DEMO_PG_PASSWORD "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U tyk -d tyk_analytics -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$use_pg" = 1 ]; then
  step "Starting a throwaway PostgreSQL 15 on 127.0.0.1:$pg_port with a Dashboard-like tyk_analytics"
  if [ ! -d "$pg_dir/data" ]; then
    mkdir -p "$pg_dir"
    [ "$(id -u)" -ne 0 ] || { chown postgres: "$pg_dir"; chmod 700 "$pg_dir"; }
    as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  fi
  as_pg "$pg_bin/pg_ctl" start -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 -s \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off"
  su_psql() { as_pg "$pg_bin/psql" -h "$pg_dir" -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
  if [ -z "$(su_psql -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'tyk'")" ]; then
    # CREATEDB: a drill restores into a scratch database beside the real one.
    su_psql -d postgres -c "CREATE ROLE tyk LOGIN CREATEDB PASSWORD '$TYKDR_DEMO_PG_PASSWORD'"
    su_psql -d postgres -c "CREATE DATABASE tyk_analytics OWNER tyk"
  fi
  pg_psql -c "CREATE TABLE IF NOT EXISTS tyk_apis (id serial PRIMARY KEY, api_id text UNIQUE, definition jsonb)" \
    -c "CREATE TABLE IF NOT EXISTS tyk_policies (id serial PRIMARY KEY, policy_id text UNIQUE, policy jsonb)" \
    -c "INSERT INTO tyk_apis (api_id, definition) SELECT 'api' || i, jsonb_build_object('name', 'API ' || i) FROM generate_series(1, 50) i ON CONFLICT DO NOTHING" \
    -c "INSERT INTO tyk_policies (policy_id, policy) SELECT 'pol' || i, '{}'::jsonb FROM generate_series(1, 10) i ON CONFLICT DO NOTHING"
  echo "tyk_analytics holds $(pg_psql -c 'SELECT count(*) FROM tyk_apis') APIs and $(pg_psql -c 'SELECT count(*) FROM tyk_policies') policies."
fi

cd "$demo"
[ -f identity.txt ] || tykdr key generate --output identity.txt > recipient.txt
if [ ! -f tykdr.yaml ]; then
  step "tykdr init: a commented tykdr.yaml, pointed at the demo servers"
  tykdr init --config tykdr.yaml --recipient "$(cat recipient.txt)" --store-path ./store
  sed -i "s|    port: 6379|    port: $port|; s|      - /opt/tyk-gateway|      - $gw|" tykdr.yaml
  if [ "$use_pg" = 1 ]; then
    # The Dashboard's database, as the template's commented example shows it, inserted under components.
    awk -v port="$pg_port" -v bin="$pg_bin" '
      /^  # The Dashboard.s database/ {
        print "  dashboard-db:"; print "    kind: postgres"; print "    tier: important"; print "    host: 127.0.0.1"
        print "    port: " port; print "    database: tyk_analytics"; print "    username: tyk"
        print "    password: ${TYKDR_DEMO_PG_PASSWORD}"; print "    binDir: " bin; print ""
      }
      { print }' tykdr.yaml > tykdr.yaml.new && mv tykdr.yaml.new tykdr.yaml
  fi
fi

step "1. Back up (the identity stays apart: backing up needs only the public recipient)"
tykdr backup --config tykdr.yaml
tykdr snapshots --config tykdr.yaml
tykdr snapshot show latest --config tykdr.yaml

step "2. The disaster: Redis flushed, apps/ deleted$([ "$use_pg" = 1 ] && echo ', the API table dropped')"
redis-cli -p "$port" flushall >/dev/null
rm -rf "$gw/apps"
[ "$use_pg" = 0 ] || pg_psql -c "DROP TABLE tyk_apis"
echo "Redis holds $(redis-cli -p "$port" dbsize) keys; $gw/apps $([ -d "$gw/apps" ] && echo exists || echo 'is gone')."

step "3. Restore: tykdr restore --plan full (Redis, then the database, then the Dashboard and the Gateway)"
tykdr restore --config tykdr.yaml --plan full --identity identity.txt --yes
echo "Redis holds $(redis-cli -p "$port" dbsize) keys again; apps/ holds $(ls "$gw/apps" | wc -l) API definition(s)."
[ "$use_pg" = 0 ] || echo "tyk_analytics holds $(pg_psql -c 'SELECT count(*) FROM tyk_apis') APIs again."

step "4. Drill: tykdr drill --plan full (scratch Redis, scratch folder$([ "$use_pg" = 1 ] && echo ', scratch database'); production is not touched)"
tykdr drill --config tykdr.yaml --plan full --identity identity.txt

step "Reports (JSON, Markdown, HTML; also stored next to the snapshot in store/reports/)"
ls -1t "$demo"/tykdr-reports/*.html | head -2 | sed 's/^/  /'
echo
echo "Demo files are in $demo: tykdr.yaml, identity.txt (the private key), store/ (the snapshots)."
echo "Next: tykdr drills --config $demo/tykdr.yaml (the RTO trend), docs/FORMAT.md (restoring without tykdr)."
