#!/usr/bin/env bash
# install-fastmcp.sh: install npm's fastmcp (a TypeScript framework for MCP
# servers, with its OAuthProxy) and its peer jose from the npm registry into
# the cache (see install-npm.sh), and print its directory as the last line.
set -euo pipefail
exec bash "$(dirname "$0")/install-npm.sh" fastmcp 4.20.16 jose@6.2.19
