#!/usr/bin/env bash
# with-postgres.sh CMD [ARG...]: run CMD with MEMCONNECT_TEST_POSTGRES set to
# the URL of a throwaway PostgreSQL (scripts/postgres.sh), stopped when CMD
# ends. When no PostgreSQL can be started, CMD still runs, and the tests that
# need one skip, saying why.
set -uo pipefail
dir=$(mktemp -d)
trap 'bash "$(dirname "$0")/postgres.sh" stop "$dir"' EXIT
if bash "$(dirname "$0")/postgres.sh" start "$dir"; then
	export MEMCONNECT_TEST_POSTGRES=$(cat "$dir/url")
else
	echo "with-postgres.sh: no PostgreSQL; the tests that need one skip" >&2
	export MEMCONNECT_TEST_POSTGRES=
fi
"$@"
