#!/usr/bin/env bash
# Renders tykdr's reports from real runs and screenshots them in headless Chromium, so anyone can look at
# what operators and auditors will read. Not part of the test suite.
#
#   scripts/screenshot-reports.sh [OUT_DIR]      (default: ./report-screenshots)
#
# It starts a throwaway redis-server (with a password, to show it never reaches a report), backs up a small
# Tyk-like Redis and config tree into a local store, runs drills (one with a 1 s tier so it MISSES its
# objective), a restore --dry-run, and `tykdr drills --html/--markdown`; then writes, for each HTML page,
# OUT_DIR/<name>.png (1200 px wide), OUT_DIR/<name>-phone.png (390 px wide) and OUT_DIR/<name>.pdf (printed;
# `pdftoppm -png` from poppler-utils turns its pages into pictures). KEEP_WORK=1 keeps the
# temporary folder (config, store, reports) for a closer look. Installs Debian's
# chromium with apt-get when it is missing (needs root). Everything it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$ROOT/report-screenshots}" && cd "${1:-$ROOT/report-screenshots}" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tykdr-shots-XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is missing: installing Debian's chromium with apt-get" >&2
  apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
fi
command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }

(cd "$ROOT" && npx tsc -p tsconfig.json)
tykdr() { node "$ROOT/bin/run.js" "$@"; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
PASSWORD="sample-redis-password-$RANDOM$RANDOM"
start_redis() { # $1 = port, $2 = folder: the "production" Redis, and a second one a restore writes into
  mkdir -p "$2"
  redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --save "" --appendonly no \
    --requirepass "$PASSWORD" --repl-diskless-sync-delay 0 --daemonize no >"$2/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do REDISCLI_AUTH=$PASSWORD redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server on port $1 did not start: $(cat "$2/redis.log")" >&2; exit 1
}
PORT=$(free_port); start_redis "$PORT" "$WORK/redis"
PORT2=$(free_port); start_redis "$PORT2" "$WORK/redis2"
mkdir -p "$WORK/gw/apps" "$WORK/gw/policies"

# A few hundred Tyk-like keys: sessions with TTLs, an org, a canary.
{
  for i in $(seq 1 300); do
    printf 'SET apikey-%032x "{\\"org_id\\":\\"org1\\",\\"alias\\":\\"user-%d\\"}" EX %d\n' "$i" "$i" $((86400 + i))
  done
  echo 'SET orgkey.org1 "{\"org_id\":\"org1\"}"'
  echo 'SET apikey-canary0000000000000000000000000 "{\"org_id\":\"org1\"}"'
} | REDISCLI_AUTH=$PASSWORD redis-cli -p "$PORT" >/dev/null
echo '{"listen_port":8080,"secret":"sample-gateway-secret","storage":{"type":"redis"}}' >"$WORK/gw/tyk.conf"
for n in 1 2 3; do echo "{\"api_id\":\"api$n\",\"name\":\"API $n\"}" >"$WORK/gw/apps/api$n.json"; done
echo '{"pol1":{"name":"Gold"}}' >"$WORK/gw/policies/policies.json"

cd "$WORK"
tykdr key generate --output identity.txt --json >key.json
RECIPIENT=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("key.json","utf8")).recipient)')
tykdr key generate --signing --output signing.pem >/dev/null
config() { # $1 = file, $2 = extra YAML
  cat >"$1" <<EOF
store: { kind: local, path: ./store }
encryption: { recipients: [$RECIPIENT], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: $PORT, password: "\${SAMPLE_REDIS_PASSWORD}", restore: { mode: live } }
  config: { kind: files, roots: [$WORK/gw] }
gateway: { url: "http://127.0.0.1:1", timeout: 3s }
signing: { keyFile: ./signing.pem }
restore: { reportDir: ./reports }
$2
EOF
}
config tykdr.yaml ''
config tight.yaml 'tiers: { critical: { rto: 100ms, rpo: 1s }, important: { rto: 100ms, rpo: 1s }, standard: { rto: 100ms, rpo: 1s }, development: { rto: 100ms, rpo: 1s } }'
export SAMPLE_REDIS_PASSWORD=$PASSWORD

tykdr backup -c tykdr.yaml >/dev/null
tykdr drill --plan full -c tykdr.yaml --ticket CHG-1042 >/dev/null || true
tykdr drill --plan redis -c tykdr.yaml >/dev/null || true
tykdr drill --plan full -c tight.yaml >/dev/null || true   # misses its 1 s objectives: exit 8
tykdr drill --plan redis -c tykdr.yaml >/dev/null || true
# A restore into the second Redis, 10 minutes after a pretend incident; its gateway checks fail (no gateway).
tykdr restore --plan full -c tykdr.yaml --yes --target "redis=127.0.0.1:$PORT2" --to "$WORK/restored" \
  --incident-at "$(date -u -d '10 minutes ago' +%Y-%m-%dT%H:%M:%SZ)" --ticket INC-7 >/dev/null || true
tykdr drills -c tykdr.yaml --html reports/drills.html --markdown reports/drills.md >/dev/null

if grep -rl -- "$PASSWORD" reports store >/dev/null 2>&1; then
  echo "FAIL: the Redis password appears in a report or the store" >&2; exit 1
fi

for f in reports/*.html; do
  name=$(basename "$f" .html)
  cp "$f" "$OUT/$name.html"
  md=${f%.html}.md; [ -f "$md" ] && cp "$md" "$OUT/$name.md"
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$OUT/$name.png" --window-size=1200,2600 "file://$WORK/$f" 2>/dev/null
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$OUT/$name-phone.png" --window-size=390,3000 "file://$WORK/$f" 2>/dev/null
  chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer --print-to-pdf="$OUT/$name.pdf" "file://$WORK/$f" 2>/dev/null
  echo "$OUT/$name.png"
done
