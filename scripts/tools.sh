#!/usr/bin/env bash
# Installs and builds what tykdr's tests and benchmarks need, into the ignored .tools/ folder.
# Idempotent: every step is skipped when its result is already there. Safe to run on every test run.
#
#   Debian packages: redis-server, redis-tools, redis-sentinel, age, zstd, postgresql (15)
#   .tools/bin/minio: MinIO (S3), built from the Go module proxy, pinned (see below)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools/bin" "$tools/go-cache"
log() { printf '[tools] %s\n' "$*" >&2; }

need_apt=()
for pair in redis-server:redis-server redis-cli:redis-tools redis-sentinel:redis-sentinel age:age age-keygen:age \
            zstd:zstd /usr/lib/postgresql/15/bin/initdb:postgresql-15; do
  bin=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "$bin" ]; then need_apt+=("$pkg"); fi
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start system services; tykdr's tests start their own servers on free ports.
  for svc in redis-server redis-sentinel; do
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# MinIO has no semver tags: pinned to the pseudo-version the Go module proxy serves as @latest
# (2026-02-12). The commit named in shared/TEST-SERVERS.md (9e49d5e7a648) is refused by the proxy.
MINIO_COMMIT=v0.0.0-20260212201848-7aac2a2c5b7c
if [ ! -x "$tools/bin/minio" ] || [ "$(cat "$tools/bin/.minio-version" 2>/dev/null)" != "$MINIO_COMMIT" ]; then
  log "building MinIO $MINIO_COMMIT from the Go module proxy (5 to 10 minutes on a cold cache)"
  GOBIN="$tools/bin" GOPATH="$tools/gopath" GOCACHE="$tools/go-cache" GOFLAGS=-mod=mod \
    go install "github.com/minio/minio@$MINIO_COMMIT"
  echo "$MINIO_COMMIT" > "$tools/bin/.minio-version"
fi
log "ready: $(redis-server --version | cut -d' ' -f3), $(age --version), zstd $(zstd -V | grep -o 'v[0-9.]*'), minio $(cat "$tools/bin/.minio-version")"
