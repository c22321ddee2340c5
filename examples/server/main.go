// Command server is an "existing" web server that mounts the memconnect
// router: it has routes of its own (GET /healthz, GET /api/hello), serves
// the desktop Connect page (examples/desktop) at /, and the memconnect API
// at /api/memory.
//
// Usage:
//
//	go run ./examples/server -dev                  # everything offline, on 127.0.0.1:8080
//	go run ./examples/server                       # the real Honcho endpoints
//
// Flags:
//
//	-addr host:port          listen address (default 127.0.0.1:8080; port 0 picks one)
//	-dev                     run a development authorization server (honchotest) on
//	                         127.0.0.1 with a consent page to click and the device flow,
//	                         and point the Honcho provider at it; use a temporary Hermes
//	                         home, removed on exit, unless -home is given
//	-home dir                the Hermes home (default: temporary with -dev, else
//	                         $HERMES_HOME, else ~/.hermes)
//	-session-token token     require "Authorization: Bearer <token>" (not on the callback)
//	-callback-base-url url   where the router is reachable, for the "callback" redirect
//	                         mode (default with -dev: http://<addr>/api/memory; else none,
//	                         so browser flows use a loopback listener: 127.0.0.1:8765
//	                         for Honcho, any free port for other providers)
//	-allowed-hosts a,b       host names the API answers (default: loopback names)
//	-store postgres://...    keep grants and pending sign-ins in PostgreSQL, shared by
//	                         every instance (default $MEMCONNECT_STORE; none: honcho.json)
//	-store-key id:base64     the AES-256 key that seals the tokens in -store
//	                         (default $MEMCONNECT_STORE_KEY; required with -store);
//	                         "new,old" seals with new and still opens what old sealed
//	-migrate                 create or upgrade the schema of -store, then exit
//	-rekey                   seal everything in -store again with the first
//	                         -store-key, then exit
//	-open-browser            open sign-in pages in this desktop's browser when a
//	                         Hermes desktop calls POST /providers/{provider}/oauth/start
//
// Without -dev the Honcho endpoints come from the HONCHO_OAUTH_* environment
// variables (see honcho.FromEnv), else the Honcho cloud.
//
// The server prints what to open and which curl to try. On SIGINT or
// SIGTERM it stops accepting requests, waits up to 10 seconds for those in
// flight, ends pending sign-ins (freeing their ports), stops the
// development authorization server and removes the temporary home.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(1)
	}
}
