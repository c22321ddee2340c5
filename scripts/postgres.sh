#!/usr/bin/env bash
# postgres.sh start DIR | stop DIR
#
# A throwaway PostgreSQL cluster for the tests: initdb in DIR (outside the
# repository), a server on a free loopback port, run as a non-root user
# (postgres when started by root), and a database memconnect_test. start
# writes the connection URL to DIR/url; stop ends the server and removes
# DIR. Debian's postgresql package is installed with apt-get when no
# PostgreSQL is found. No container, no fixed port.
set -euo pipefail

cmd=${1:?usage: postgres.sh start|stop DIR}
dir=${2:?usage: postgres.sh start|stop DIR}

pgbin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [[ -z $d && $(id -u) -eq 0 ]]; then
		echo "postgres.sh: PostgreSQL not found; installing Debian's postgresql package" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
		d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	fi
	[[ -n $d ]] || { echo "postgres.sh: no PostgreSQL and cannot install it" >&2; return 1; }
	echo "$d"
}

# as runs a command as the cluster's owner: postgres when we are root.
as() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	bin=$(pgbin)
	mkdir -p "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres "$dir"
	fi
	as "$bin/initdb" -D "$dir/data" -A trust -U memconnect --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	for _ in 1 2 3 4 5; do
		port=$(shuf -i 20000-60000 -n 1)
		if as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
			-o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
			as "$bin/createdb" -h 127.0.0.1 -p "$port" -U memconnect memconnect_test
			echo "postgres://memconnect@127.0.0.1:$port/memconnect_test?sslmode=disable" >"$dir/url"
			echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
			exit 0
		fi
	done
	cat "$dir/server.log" >&2
	exit 1
	;;
stop)
	if [[ -d $dir/data ]]; then
		bin=$(pgbin) || true
		[[ -n ${bin:-} ]] && as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: postgres.sh start|stop DIR" >&2
	exit 2
	;;
esac
