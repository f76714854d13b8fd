#!/usr/bin/env bash
# The main job on embedded defaults, from a clean clone: builds tykdr, starts a throwaway Redis seeded
# with a Tyk-like keyspace and a gateway config tree, generates an age identity, writes a tykdr.yaml
# with a local folder as the store, and runs `tykdr backup`, `tykdr snapshots` and `tykdr snapshot show`.
# Everything lives in .tykdr/demo (ignored); run it again to add snapshots.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/deps.sh
npx tsc -p tsconfig.json
bash scripts/tools.sh
demo="$root/.tykdr/demo"
mkdir -p "$demo"
tykdr() { node "$root/bin/run.js" "$@"; }
port=${TYKDR_DEMO_REDIS_PORT:-16379}
redis-server --port "$port" --bind 127.0.0.1 --dir "$demo" --save "" --appendonly no \
  --repl-diskless-sync-delay 0 --daemonize yes --pidfile "$demo/redis.pid" --logfile "$demo/redis.log"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true' EXIT
until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do sleep 0.1; done
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
gw="$demo/tyk-gateway"
mkdir -p "$gw/apps" "$gw/policies"
[ -f "$gw/tyk.conf" ] || printf '{"listen_port":8080,"secret":"demo-secret","hash_keys":true,"app_path":"apps/"}\n' > "$gw/tyk.conf"
[ -f "$gw/apps/api1.json" ] || printf '{"api_id":"api1","name":"Demo API"}\n' > "$gw/apps/api1.json"
[ -f "$gw/policies/policies.json" ] || printf '{}\n' > "$gw/policies/policies.json"
cd "$demo"
[ -f identity.txt ] || tykdr key generate --output identity.txt > recipient.txt
if [ ! -f tykdr.yaml ]; then
  tykdr init --config tykdr.yaml --recipient "$(cat recipient.txt)" --store-path ./store
  # Point the template's components at the demo Redis and config tree.
  sed -i "s|    port: 6379|    port: $port|; s|      - /opt/tyk-gateway|      - $gw|" tykdr.yaml
fi
tykdr backup --config tykdr.yaml
tykdr snapshots --config tykdr.yaml
tykdr snapshot show latest --config tykdr.yaml
echo
echo "Demo files are in $demo: tykdr.yaml, identity.txt (the private key), store/ (the snapshots)."
echo "Restore by hand: docs/FORMAT.md. Try: node bin/run.js --help"
