# memconnect: `make test` is the one command that runs every test.
#
# It vets and tests the library (with the race detector) against a
# throwaway PostgreSQL that scripts/postgres.sh starts on a loopback port, as
# a non-root user, in a temporary directory, and stops at the end (Debian's
# postgresql is installed with apt-get when missing). Then it runs the e2e
# module against a real Ory Hydra, panva's oidc-provider (a certified OpenID
# provider, run by Debian's Node.js), an MCP server made with npm's fastmcp
# (its OAuthProxy with its defaults) and headless Chromium. The e2e step
# installs Debian's chromium (and nodejs, npm, and curl and jq for running
# examples/curl.md) with apt-get when missing,
# builds Hydra v2.3.0 from the Go module proxy and installs oidc-provider
# and fastmcp (pinned) from the npm registry once, into ~/.cache/memconnect
# (outside the repo). Each download, build and install says it is ready in
# one line; what a failed one printed is shown in full.
GO ?= go

.PHONY: test vet unit e2e bench crash

test: vet unit e2e

vet:
	bash scripts/quietly.sh "Go modules" $(GO) mod download
	$(GO) vet ./...

unit:
	bash scripts/with-postgres.sh $(GO) test -race -count=1 -timeout 5m ./...

e2e:
	bash scripts/quietly.sh "Chromium" bash scripts/install-chromium.sh
	bash scripts/quietly.sh "curl and jq" bash scripts/install-debian.sh curl jq
	bash scripts/quietly.sh "Ory Hydra" bash scripts/build-hydra.sh
	bash scripts/quietly.sh "oidc-provider" bash scripts/install-oidc-provider.sh
	bash scripts/quietly.sh "fastmcp" bash scripts/install-fastmcp.sh
	cd e2e && bash ../scripts/quietly.sh "Go modules of e2e" $(GO) mod download && $(GO) vet ./... && bash ../scripts/with-postgres.sh $(GO) test -count=1 -timeout 5m ./...

bench:
	bash scripts/with-postgres.sh $(GO) test -run '^$$' -bench . -benchmem ./...

# crash SIGKILLs a rotating child 500 times with the journal written as the
# answer arrives, and 500 times as the first version wrote it, and reports
# what each kind of kill left behind (see BENCHMARKS.md).
crash:
	$(GO) test -count=1 -run '^TestCrashHarness$$' -v ./oauth/filestore -crash.kills=500 | grep -v -- '-keys'
