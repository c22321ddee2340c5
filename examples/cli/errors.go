package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// exit reports err on stderr and returns the exit status it calls for.
func (c *cli) exit(err error) int {
	var (
		ue     *usageError
		silent silentExit
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &silent):
		return int(silent)
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	if c.verbose {
		fmt.Fprintf(c.stderr, "memconnect: -v: %v\n", err) // the whole chain
	}
	var (
		coded       *codedError
		failure     *flow.Failure
		unreachable *provider.UnreachableError
	)
	// say prints the line every failure ends with: the prefix, then a
	// sentence (a usage error's: the command and flag at fault, as typed).
	say := func(code int, msg string) int {
		fmt.Fprintf(c.stderr, "memconnect: %s\n", msg)
		return code
	}
	switch {
	case errors.Is(err, errInterrupted):
		return say(exitInterrupted, sentence(plain(err)))
	case errors.As(err, &ue):
		if ue.msg != "" { // the command and flag at fault, as typed
			fmt.Fprintf(c.stderr, "memconnect: %s\n", ue.msg)
		}
		return exitUsage
	case errors.As(err, &coded):
		return say(coded.code, coded.msg)
	case errors.Is(err, provider.ErrInvalidProfile):
		return say(exitUsage, sentence(plain(err)))
	case errors.Is(err, provider.ErrProfileNotFound):
		return say(exitFailed, fmt.Sprintf("There is no Hermes profile %q: create it with Hermes first, or check --profile.", strings.TrimPrefix(err.Error(), provider.ErrProfileNotFound.Error()+": ")))
	case errors.Is(err, oauth.ErrReauthRequired):
		return say(exitReauth, fmt.Sprintf("The %s sign-in is no longer valid. Sign in again: memconnect login%s", c.displayName(), c.profileHint))
	case errors.Is(err, provider.ErrAPIKeyConnection):
		return say(exitFailed, fmt.Sprintf("This profile connects to %s with an API key set for every profile of the config, or in the environment, which logout does not remove; remove it there to sign out.", c.displayName()))
	case errors.Is(err, provider.ErrAPIKeyRejected):
		ke, _ := errors.AsType[*provider.APIKeyError](err)
		return say(exitFailed, fmt.Sprintf("The API key was not stored: %s.", ke.Reason))
	case errors.As(err, &failure):
		return say(exitFailed, sentence(failure.Detail))
	case errors.As(err, &unreachable):
		return say(exitFailed, sentence(unreachable.Sentence()))
	case isUpstream(err):
		ue, _ := errors.AsType[*authserver.UpstreamError](err)
		return say(exitFailed, sentence(fmt.Sprintf("the server %s failed at the %s step: %s", ue.URL, ue.Step, ue.Reason())))
	}
	return say(exitFailed, sentence(plain(err)))
}

// isUpstream reports whether err's chain holds an [*authserver.UpstreamError].
func isUpstream(err error) bool {
	_, ok := errors.AsType[*authserver.UpstreamError](err)
	return ok
}

// plain returns err's text without the Go error chain a person cannot use:
// the package prefixes ("oauth: ", "provider: ") dropped, and a network or
// file system error (dial tcp 127.0.0.1:1: connect: connection refused)
// said by its cause alone (connection refused), with the file it concerns.
// -v prints the whole chain besides.
func plain(err error) string {
	s := err.Error()
	for _, low := range lowLevel(err) {
		s = strings.ReplaceAll(s, low.Error(), lowPlain(low))
	}
	for _, prefix := range []string{"oauth: ", "flow: ", "provider: ", "honcho: ", "pgstore: ", "memconnect: "} {
		s = strings.ReplaceAll(s, prefix, "")
	}
	return s
}

// lowLevel returns the outermost network and file system errors in err's
// tree, the ones whose text is a chain of Go's own.
func lowLevel(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case *url.Error, *net.OpError, *fs.PathError, *os.SyscallError, *os.LinkError:
		return []error{e}
	case interface{ Unwrap() []error }:
		var all []error
		for _, inner := range e.Unwrap() {
			all = append(all, lowLevel(inner)...)
		}
		return all
	}
	return lowLevel(errors.Unwrap(err))
}

// lowPlain words a network or file system error by its root cause, and the
// file for a file system error.
func lowPlain(err error) string {
	root := err
	for inner := errors.Unwrap(root); inner != nil; inner = errors.Unwrap(root) {
		root = inner
	}
	var (
		path *fs.PathError
		link *os.LinkError
		dns  *net.DNSError
	)
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("%s (%s)", dns.Err, dns.Name)
	case errors.As(err, &path):
		return fmt.Sprintf("%s (%s)", root, path.Path)
	case errors.As(err, &link):
		return fmt.Sprintf("%s (%s)", root, link.New)
	}
	return root.Error()
}

// sentence makes msg one sentence: a capital first and a full stop last.
func sentence(msg string) string {
	s := strings.TrimSpace(msg)
	if s == "" {
		return "Something went wrong."
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}
