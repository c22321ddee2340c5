#!/usr/bin/env bash
# quietly.sh WHAT CMD [ARG...]: run CMD, keeping what it prints; say in one
# line that WHAT is ready and how long it took, or, when CMD fails, print
# everything it printed and exit with its status. It keeps make test's
# output to what matters: downloads, builds and installs in a line each,
# errors in full.
set -uo pipefail
what=${1:?usage: quietly.sh WHAT CMD [ARG...]}
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
"$@" >"$log" 2>&1
status=$?
if [ $status -ne 0 ]; then
	cat "$log" >&2
	echo "quietly.sh: $what failed (exit $status): $*" >&2
	exit $status
fi
took=$(($(date +%s) - start))
if [ $took -gt 1 ]; then
	echo "$what: ready (${took}s)"
else
	echo "$what: ready"
fi
