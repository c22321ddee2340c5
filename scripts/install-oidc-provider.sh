#!/usr/bin/env bash
# install-oidc-provider.sh: install panva's oidc-provider (a certified
# OpenID provider) from the npm registry into the cache (see
# install-npm.sh), and print its directory as the last line.
set -euo pipefail
exec bash "$(dirname "$0")/install-npm.sh" oidc-provider 9.13.3
