// Command memconnect signs a Hermes profile in to Honcho from a terminal.
//
// Usage:
//
//	memconnect login  [--profile P | --config FILE] [--host HOST] [--device] [--no-browser] [--port N]
//	memconnect status [--profile P | --config FILE] [--host HOST] [--json]
//	memconnect token  [--profile P | --config FILE] [--host HOST]
//	memconnect logout [--profile P | --config FILE] [--host HOST]
//
// Profiles follow the Hermes layout: the default profile lives in
// $HERMES_HOME (else ~/.hermes) and profile "work" in its profiles/work. The
// endpoint flags default to the HONCHO_OAUTH_* environment variables (see
// [honcho.FromEnv]).
//
// Exit status: 0 success, 2 usage error, 3 re-authentication required,
// 1 anything else.
//
// Secrets never reach the output, except the access token that "token"
// prints on standard output for a script to use.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
