#!/usr/bin/env bash
# install-oidc-provider.sh: install panva's oidc-provider (a certified
# OpenID provider, from the npm registry) into a cache outside the
# repository, for the e2e tests against an authorization server nobody here
# wrote. Installs Debian's nodejs and npm with apt-get when missing. Prints
# the install directory as the last line on stdout; everything else goes to
# stderr. Idempotent: a complete install is reused.
#
# Environment:
#   MEMCONNECT_OIDC_PROVIDER_CACHE  install dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/memconnect/oidc-provider-<version>)
set -euo pipefail

VERSION=9.13.3
DIR=${MEMCONNECT_OIDC_PROVIDER_CACHE:-${XDG_CACHE_HOME:-${HOME:?is not set}/.cache}/memconnect/oidc-provider-$VERSION}

if [ -f "$DIR/node_modules/oidc-provider/lib/index.js" ] && command -v node >/dev/null 2>&1; then
	echo "$DIR"
	exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "install-oidc-provider.sh: node and npm are missing and apt-get is not available; install Node.js by hand" >&2
		exit 1
	fi
	SUDO=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "install-oidc-provider.sh: node is missing; run as root (or install sudo) to install it" >&2; exit 1; }
		SUDO=(sudo)
	fi
	echo "install-oidc-provider.sh: installing Debian's nodejs and npm" >&2
	"${SUDO[@]}" apt-get update -qq >/dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"private": true}' > package.json
echo "install-oidc-provider.sh: npm install oidc-provider@$VERSION into $DIR" >&2
npm install --no-audit --no-fund --loglevel=error "oidc-provider@$VERSION" >&2
echo "$DIR"
