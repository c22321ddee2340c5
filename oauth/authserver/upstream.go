package authserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/wire"
)

// Steps of a sign-in, a refresh or a disconnect that reach a server, as an
// [*UpstreamError] names them.
const (
	StepProbe               = "probe"
	StepResourceMetadata    = "resource metadata"
	StepServerMetadata      = "server metadata"
	StepRegistration        = "registration"
	StepDeviceAuthorization = "device authorization"
	StepToken               = "token"
	StepRevocation          = "revocation"
	StepKeyCheck            = "key check"
)

// StepTimeout bounds one step that reaches a server, reading of the answer
// included, when the caller's context allows longer. A refresh has its own
// bounds (see the package documentation).
const StepTimeout = outbound.StepTimeout

// UpstreamError reports a server that failed one step: it did not answer
// in time, answered with a redirect that is not followed, or answered what
// the step's rules refuse (metadata naming another issuer, a registration
// refused). URL names the server's URL at fault; the error never holds a
// secret.
type UpstreamError struct {
	Step string // one of the Step constants
	URL  string
	Err  error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("oauth: %s at %s: %s", e.Step, e.URL, e.Reason())
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Kind is [errkind.Upstream].
func (e *UpstreamError) Kind() errkind.Kind { return errkind.Upstream }

// Message names the server, the step and the reason, for a person.
func (e *UpstreamError) Message() string {
	return fmt.Sprintf("The server %s failed at the %s step: %s.", e.URL, e.Step, strings.TrimSuffix(e.Reason(), "."))
}

// Timeout reports whether the server did not answer in time.
func (e *UpstreamError) Timeout() bool { return outbound.TimedOut(e.Err) }

// Unreachable reports whether no connection to the server could be made:
// its host name did not resolve, or the network, the host or the port
// refused or did not answer the dial. Such a server is likely on the
// internet while this machine is offline; a server that answered badly is
// not unreachable.
func (e *UpstreamError) Unreachable() bool {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(e.Err, &dns),
		errors.Is(e.Err, syscall.ECONNREFUSED),
		errors.Is(e.Err, syscall.ENETUNREACH),
		errors.Is(e.Err, syscall.EHOSTUNREACH):
		return true
	case errors.As(e.Err, &op):
		return op.Op == "dial"
	}
	return false
}

// Reason says what went wrong, for a person: printable, at most a few
// hundred characters, without the package prefixes of the cause.
func (e *UpstreamError) Reason() string {
	if e.Timeout() {
		return "the server did not answer in time"
	}
	var re *outbound.RedirectError
	if errors.As(e.Err, &re) {
		return re.Error()
	}
	if e.Err == nil {
		return "failed"
	}
	return wire.Printable(trimPrefixes(plainCause(e.Err)), 300)
}

// plainCause words a transport failure as a person reads it ("it refused
// the connection") instead of Go's chain ("Get \"...\": dial tcp ...");
// any other error is left as it is.
func plainCause(err error) string {
	var dns *net.DNSError
	var ue *url.Error
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("the host name %q could not be resolved", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the server refused the connection"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the server closed the connection"
	case outbound.TimedOut(err):
		return "the server did not answer in time"
	case errors.As(err, &ue):
		return ue.Err.Error() // without the method and URL, said already
	}
	return err.Error()
}

// trimPrefixes drops the package prefixes ("oauth: ") that begin s.
func trimPrefixes(s string) string {
	for {
		i := strings.Index(s, ": ")
		if i <= 0 || i > 8 || strings.IndexFunc(s[:i], func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			return s
		}
		s = s[i+2:]
	}
}

// upstream wraps err, when not nil and not already an [*UpstreamError], as
// step's failure at url.
func upstream(step, url string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*UpstreamError](err); ok {
		return err
	}
	return &UpstreamError{Step: step, URL: url, Err: err}
}

// joinCauses joins errs on one line, as a person reads a message, each in
// plain words and each said once.
func joinCauses(errs []error) error {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		if p := plainCause(e); !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	return &joined{msg: strings.Join(parts, "; "), errs: errs}
}

type joined struct {
	msg  string
	errs []error
}

func (j *joined) Error() string   { return j.msg }
func (j *joined) Unwrap() []error { return j.errs }
