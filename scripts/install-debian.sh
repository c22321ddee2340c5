#!/usr/bin/env bash
# install-debian.sh: make sure the commands named are installed, each from
# the Debian package of the same name, with apt-get, as root or with sudo.
# Commands already on PATH are left alone. Used for the tools the e2e
# module runs examples/curl.md with (curl, jq).
set -euo pipefail

missing=()
for cmd in "$@"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-debian.sh: ${missing[*]} missing and apt-get is not available; install them by hand" >&2
	exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-debian.sh: ${missing[*]} missing; run as root (or install sudo) to install them" >&2
		exit 1
	fi
	SUDO=(sudo)
fi
echo "install-debian.sh: installing ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -qq >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
