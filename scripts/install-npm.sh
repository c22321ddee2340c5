#!/usr/bin/env bash
# install-npm.sh NAME VERSION [PEER@VERSION...]: install the npm package
# NAME@VERSION (and the peers named) from the npm registry into a cache
# outside the repository, for the e2e tests against servers nobody here
# wrote. Installs Debian's nodejs and npm with apt-get when missing. Prints
# the install directory as the last line on stdout; everything else goes
# to stderr. Idempotent: a complete install is reused.
#
# Environment:
#   XDG_CACHE_HOME  the cache (default $HOME/.cache); the install dir is
#                   <cache>/memconnect/NAME-VERSION
set -euo pipefail

NAME=${1:?usage: install-npm.sh NAME VERSION [PEER@VERSION...]}
VERSION=${2:?usage: install-npm.sh NAME VERSION [PEER@VERSION...]}
shift 2
DIR=${XDG_CACHE_HOME:-${HOME:?is not set}/.cache}/memconnect/$NAME-$VERSION

if [ -f "$DIR/node_modules/$NAME/package.json" ] && [ -f "$DIR/.complete" ] && command -v node >/dev/null 2>&1; then
	echo "$DIR"
	exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "install-npm.sh: node and npm are missing and apt-get is not available; install Node.js by hand" >&2
		exit 1
	fi
	SUDO=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "install-npm.sh: node is missing; run as root (or install sudo) to install it" >&2; exit 1; }
		SUDO=(sudo)
	fi
	echo "install-npm.sh: installing Debian's nodejs and npm" >&2
	"${SUDO[@]}" apt-get update -qq >/dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"private": true}' > package.json
echo "install-npm.sh: npm install $NAME@$VERSION $* into $DIR" >&2
npm install --no-audit --no-fund --loglevel=error "$NAME@$VERSION" "$@" >&2
touch .complete
echo "$DIR"
