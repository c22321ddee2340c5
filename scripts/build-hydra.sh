#!/usr/bin/env bash
# build-hydra.sh: build Ory Hydra v2.3.0 from the Go module proxy into a cache
# outside the repository, for the e2e tests. Prints the binary's path as the
# last line on stdout; everything else goes to stderr.
#
# Skips the build when the cached binary exists and `hydra version` runs.
# Concurrent invocations serialise on a flock(1) lock next to the cache dir.
#
# Environment:
#   MEMCONNECT_HYDRA_CACHE  cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/memconnect/hydra-v2.3.0)
#   GO                      go command (default: go)
#
# Why not `go install github.com/ory/hydra/v2@v2.3.0`: Hydra's go.mod has
# replace directives, which `go install pkg@version` refuses. We build from a
# scratch module that re-applies the one replace the binary needs (pop/v6 =>
# ory's fork) and records Hydra as a tool dependency.
set -euo pipefail

HYDRA_MODULE=github.com/ory/hydra/v2
HYDRA_VERSION=v2.3.0
POP_REPLACE='github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b'
LOCK_TIMEOUT=${MEMCONNECT_HYDRA_LOCK_TIMEOUT:-1200}

GO=${GO:-go}
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

command -v "$GO" >/dev/null 2>&1 || { log "go command '$GO' not found"; exit 1; }

SRC=$CACHE_DIR/src
rm -rf "$SRC" "$BIN.tmp"
mkdir -p "$SRC"
trap 'rm -f "$BIN.tmp"' EXIT

log "building Hydra $HYDRA_VERSION into $BIN (cold: ~90 s on 2 cores, plus downloads)"
start=$(date +%s)
(
	cd "$SRC"
	export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=1
	"$GO" mod init memconnect.local/hydra-build >/dev/null 2>&1
	"$GO" mod edit -replace "$POP_REPLACE"
	log "+ go get -tool $HYDRA_MODULE@$HYDRA_VERSION"
	"$GO" get -tool "$HYDRA_MODULE@$HYDRA_VERSION" >&2
	log "+ go build -tags sqlite,sqlite_omit_load_extension $HYDRA_MODULE"
	"$GO" build -tags sqlite,sqlite_omit_load_extension \
		-ldflags "-s -w -X $HYDRA_MODULE/driver/config.Version=$HYDRA_VERSION" \
		-o "$BIN.tmp" "$HYDRA_MODULE" >&2
)
"$BIN.tmp" version >/dev/null 2>&1 || { log "built binary does not run '$BIN.tmp version'"; exit 1; }
mv -f "$BIN.tmp" "$BIN"
log "built $BIN in $(($(date +%s) - start))s"
echo "$BIN"
