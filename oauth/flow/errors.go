package flow

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/internal/wire"
)

// Errors of the authorization flows, for [errors.Is].
var (
	// ErrInvalidState is returned for a callback whose state parameter is
	// missing, unknown, expired, already used or bound to another
	// [Key] (RFC 6749 section 10.12). Such a callback changes nothing: a
	// pending flow keeps waiting for the real one.
	ErrInvalidState = errkind.New(errkind.Invalid, "flow: missing, unknown or expired state",
		"This sign-in link is not valid: it is unknown, expired or was already used. Start the sign-in again.")

	// ErrDeviceUnsupported is returned by [Manager.Start] for a
	// device flow the authorization server is not known to support
	// (RFC 8628 section 4, RFC 8414 grant_types_supported).
	ErrDeviceUnsupported = errkind.New(errkind.Unsupported, "flow: the authorization server does not support the device flow",
		"The provider does not support this: it cannot be connected from here, or not with this sign-in method.")

	// ErrInvalidRequest is wrapped by the errors [Manager.Start]
	// returns for a malformed [Request].
	ErrInvalidRequest = errors.New("flow: invalid request")

	// ErrConflict is returned by [Manager.Start], together with the
	// pending flow, when a flow of another method or redirect mode is
	// already pending for the key. Cancel it first to switch.
	ErrConflict = errkind.New(errkind.Conflict, "flow: another kind of flow is pending", ConflictMessage)

	// ErrCancelled is returned by [Manager.Wait] when the flow was
	// cancelled.
	ErrCancelled = errors.New("flow: cancelled")

	// ErrClosed is returned once [Manager.Close] was called.
	ErrClosed = errkind.New(errkind.Internal, "flow: manager closed", "The server is shutting down. Try again in a moment.")
)

// ConflictMessage is what a person reads of a sign-in refused because
// another kind is waiting for the same connection.
const ConflictMessage = "Another kind of sign-in is already waiting for this profile. Finish it, or cancel it (POST .../cancel) and connect again."

// Codes of a [Failure].
const (
	CodeAccessDenied  = "access_denied"       // the person or the server refused consent
	CodeAuthorization = "authorization_error" // the callback carried another error= (RFC 6749 section 4.1.2.1)
	CodeExpired       = "expired"             // the state or device code expired before approval
	CodeTimedOut      = "timed_out"           // the loopback listener waited too long
	CodeRateLimited   = "rate_limited"        // HTTP 429 from the authorization server
	CodeExchange      = "exchange_failed"     // the code could not be exchanged for a token
	CodeComplete      = "complete_failed"     // Request.Complete failed: the grant was not stored
	CodeStart         = "start_failed"        // the device authorization request failed
	CodeDevice        = "device_failed"       // device polling failed otherwise
	CodeClosed        = "closed"              // the manager was closed while the flow was pending
	CodeOtherBrowser  = "other_browser"       // the callback came without the cookie of the browser that started the flow
)

// Failure is how a flow ended in [StateError] state. It is returned by
// [Manager.Callback], [Manager.Wait] and, for a device flow whose
// start failed at the server, [Manager.Start].
//
// Error returns only the code and Detail, which never contain a secret; the
// cause (often an [*oauth2.RetrieveError]) is available through
// [errors.Unwrap] for logging by a caller that knows what it holds.
type Failure struct {
	Code   string // one of the Code* constants
	Detail string // for a person; also the flow's Detail
	Err    error  // the cause, or nil
}

// Error returns "flow: <code>: <detail>"; never the cause.
func (e *Failure) Error() string { return "flow: " + e.Code + ": " + e.Detail }

// Unwrap returns the cause.
func (e *Failure) Unwrap() error { return e.Err }

// Kind is [errkind.Internal] for a flow that failed here (the grant was
// not stored, the manager closed), else [errkind.Upstream]: the
// authorization server refused or failed.
func (e *Failure) Kind() errkind.Kind {
	if e.Code == CodeComplete || e.Code == CodeClosed {
		return errkind.Internal
	}
	return errkind.Upstream
}

// Message is the Detail, as a sentence.
func (e *Failure) Message() string { return strings.TrimSuffix(e.Detail, ".") + "." }

// authorizationError is the Failure for an error= callback
// (RFC 6749 section 4.1.2.1). The server's words are kept, cleaned and
// shortened; pages escape them.
func (m *Manager) authorizationError(code, desc string) *Failure {
	if code == "access_denied" {
		return &Failure{Code: CodeAccessDenied, Detail: m.say(ReasonDenied)}
	}
	detail := m.say(ReasonRefused) + ": " + wire.Printable(code, 64)
	if desc = wire.Printable(desc, 200); desc != "" {
		detail += " (" + desc + ")"
	}
	return &Failure{Code: CodeAuthorization, Detail: detail}
}

// tokenError classifies a failure of a token or device endpoint request.
func (m *Manager) tokenError(code string, why Reason, err error) *Failure {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusTooManyRequests:
		return &Failure{Code: CodeRateLimited, Detail: m.say(ReasonRateLimited), Err: err}
	case errors.As(err, &re):
		return &Failure{Code: code, Detail: m.say(why), Err: err}
	default:
		return &Failure{Code: code, Detail: m.say(ReasonUnreachable), Err: err}
	}
}

// causeForLog describes err for a log line without risking a secret: of an
// [*oauth2.RetrieveError] only the status and error code (its body could echo
// the request).
func causeForLog(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := re.ErrorCode
		if re.Response != nil {
			s = strings.TrimSpace(fmt.Sprintf("%d %s", re.Response.StatusCode, s))
		}
		return "oauth2 retrieve error " + s
	}
	return err.Error()
}
