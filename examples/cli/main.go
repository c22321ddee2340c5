// Command memconnect signs a Hermes profile in to a memory provider (Honcho
// by default) from a terminal.
//
// Usage:
//
//	memconnect login  [--provider NAME] [--profile P | --config FILE] [--host HOST] [--device | --api-key] [--no-browser] [--port N] [--force] [endpoint flags] [-v]
//	memconnect status [--provider NAME] [--profile P | --config FILE] [--host HOST] [--json] [--store URL --store-key K] [-v]
//	memconnect token  [--provider NAME] [--profile P | --config FILE] [--host HOST] [--store URL --store-key K] [-v]
//	memconnect logout [--provider NAME] [--profile P | --config FILE] [--host HOST] [--revocation-url U] [-v]
//
// --provider is honcho (the default), supermemory, or NAME=URL for any
// server behind the MCP authorization model; the grants of those live in
// the profile's memconnect.json. login --api-key reads the key from stdin
// (on a terminal it asks, without echo), never from the command line.
//
// Profiles follow the Hermes layout: the default profile lives in
// $HERMES_HOME (else ~/.hermes) and profile "work" in its profiles/work. The
// endpoint flags default to the HONCHO_OAUTH_* environment variables (see
// [honcho.FromEnv]).
//
// login asks for the peer name only when a person can answer (stdin is a
// terminal); otherwise it keeps a peer name already set and takes the one
// given at consent only when none is. Over a sign-in that still works,
// login asks before replacing it, refuses without a terminal, and does
// not ask with --force. An API key is checked where the router checks it
// (Honcho: at HONCHO_API_KEY_CHECK_URL when set). Ctrl-C at any prompt
// ends the command at once, changing nothing. Errors are one sentence on
// stderr; -v adds the log lines and the whole error.
//
// Exit status: 0 success (logout when not signed in, too), 1 failure,
// 2 usage error, 3 not signed in or the sign-in is no longer valid,
// 130 interrupted.
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
