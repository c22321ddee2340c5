#!/usr/bin/env bash
# build-hydra.sh: build Ory Hydra from the Go module proxy into a cache
# outside the repository, for the e2e tests. Prints the binary's path as the
# last line on stdout; everything else goes to stderr.
#
# Hydra is a tool dependency of the e2e module: its version (v2.3.0) and
# every module it needs are pinned by e2e/go.mod and e2e/go.sum, and the
# build runs inside e2e/. Skips the build when the cached binary for that
# version exists and `hydra version` runs. Concurrent invocations serialise
# on a flock(1) lock next to the cache dir.
#
# Environment:
#   MEMCONNECT_HYDRA_CACHE  cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/memconnect/hydra-<version>)
#   GO                      go command (default: go)
#
# Why not `go install github.com/ory/hydra/v2@v2.3.0`: Hydra's go.mod has
# replace directives, which `go install pkg@version` refuses. e2e/go.mod
# re-applies the one replace the binary needs (pop/v6 => ory's fork).
set -euo pipefail

HYDRA_MODULE=github.com/ory/hydra/v2
LOCK_TIMEOUT=${MEMCONNECT_HYDRA_LOCK_TIMEOUT:-1200}

GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || { echo "build-hydra.sh: go command '$GO' not found" >&2; exit 1; }
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../e2e" && pwd)
HYDRA_VERSION=$(cd "$E2E_DIR" && GOWORK=off "$GO" list -m -f '{{.Version}}' "$HYDRA_MODULE")
CACHE_DIR=${MEMCONNECT_HYDRA_CACHE:-${XDG_CACHE_HOME:-${HOME:?is not set: set HOME or MEMCONNECT_HYDRA_CACHE}/.cache}/memconnect/hydra-$HYDRA_VERSION}
BIN=$CACHE_DIR/hydra

log() { echo "build-hydra.sh: $*" >&2; }

usable() { [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; }

# Fast path: no lock needed to read a finished binary (it is installed by rename).
if usable; then
	echo "$BIN"
	exit 0
fi

mkdir -p "$CACHE_DIR"
command -v flock >/dev/null 2>&1 || { log "flock(1) not found (package util-linux)"; exit 1; }
exec 9>"$CACHE_DIR.lock"
if ! flock -n 9; then
	log "another build holds $CACHE_DIR.lock; waiting up to ${LOCK_TIMEOUT}s"
	flock -w "$LOCK_TIMEOUT" 9 || { log "timed out waiting for $CACHE_DIR.lock"; exit 1; }
fi

# Someone else may have finished the build while we waited.
if usable; then
	echo "$BIN"
	exit 0
fi

rm -f "$BIN.tmp"
trap 'rm -f "$BIN.tmp"' EXIT

log "building Hydra $HYDRA_VERSION into $BIN (the first time: measured 150 to 200 s on 2 cores, downloads included)"
start=$(date +%s)
(
	cd "$E2E_DIR"
	export GOWORK=off CGO_ENABLED=1
	log "+ go build -tags sqlite,sqlite_omit_load_extension $HYDRA_MODULE (in e2e/)"
	"$GO" build -tags sqlite,sqlite_omit_load_extension \
		-ldflags "-s -w -X $HYDRA_MODULE/driver/config.Version=$HYDRA_VERSION" \
		-o "$BIN.tmp" "$HYDRA_MODULE" >&2
)
"$BIN.tmp" version >/dev/null 2>&1 || { log "built binary does not run '$BIN.tmp version'"; exit 1; }
mv -f "$BIN.tmp" "$BIN"
log "built $BIN in $(($(date +%s) - start))s"
echo "$BIN"
