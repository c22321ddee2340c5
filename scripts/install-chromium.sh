#!/usr/bin/env bash
# install-chromium.sh: make sure a headless-capable Chromium is installed for
# the e2e browser tests. Idempotent: does nothing (and prints nothing) when
# /usr/bin/chromium or a `chromium` on PATH already exists.
#
# Installs Debian's `chromium` package with apt-get. Needs root, or sudo when
# run as another user.
set -euo pipefail

if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium.sh: chromium is missing and apt-get is not available; install Chromium by hand" >&2
	exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "install-chromium.sh: chromium is missing; run as root (or install sudo) to install it" >&2
		exit 1
	fi
fi

echo "install-chromium.sh: chromium not found; installing Debian's chromium package" >&2
echo "+ apt-get update" >&2
"${SUDO[@]}" apt-get update -qq >/dev/null
echo "+ apt-get install -y --no-install-recommends chromium" >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null

if ! { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; }; then
	echo "install-chromium.sh: apt-get finished but no chromium binary was found" >&2
	exit 1
fi
echo "install-chromium.sh: installed $(chromium --version 2>/dev/null || echo chromium)" >&2
