package oauth

import "errors"

// Errors of the authorization flows, for [errors.Is].
var (
	// ErrInvalidState is returned for a callback whose state parameter is
	// missing, unknown, expired, already used or bound to another
	// [FlowKey] (RFC 6749 section 10.12). Such a callback changes nothing: a
	// pending flow keeps waiting for the real one.
	ErrInvalidState = errors.New("oauth: missing, unknown or expired state")

	// ErrDeviceFlowUnsupported is returned by [FlowManager.Start] for a
	// device flow the authorization server is not known to support
	// (RFC 8628 section 4, RFC 8414 grant_types_supported).
	ErrDeviceFlowUnsupported = errors.New("oauth: the authorization server does not support the device flow")

	// ErrInvalidFlowRequest is wrapped by the errors [FlowManager.Start]
	// returns for a malformed [FlowRequest].
	ErrInvalidFlowRequest = errors.New("oauth: invalid flow request")

	// ErrFlowConflict is returned by [FlowManager.Start], together with the
	// pending flow, when a flow of another method or redirect mode is
	// already pending for the key. Cancel it first to switch.
	ErrFlowConflict = errors.New("oauth: another kind of flow is pending")

	// ErrFlowCancelled is returned by [FlowManager.Wait] when the flow was
	// cancelled.
	ErrFlowCancelled = errors.New("oauth: flow cancelled")

	// ErrFlowManagerClosed is returned once [FlowManager.Close] was called.
	ErrFlowManagerClosed = errors.New("oauth: flow manager closed")
)

// Codes of a [FlowFailure].
const (
	FlowErrAccessDenied  = "access_denied"       // the person or the server refused consent
	FlowErrAuthorization = "authorization_error" // the callback carried another error= (RFC 6749 section 4.1.2.1)
	FlowErrExpired       = "expired"             // the state or device code expired before approval
	FlowErrTimedOut      = "timed_out"           // the loopback listener waited too long
	FlowErrRateLimited   = "rate_limited"        // HTTP 429 from the authorization server
	FlowErrExchange      = "exchange_failed"     // the code could not be exchanged for a token
	FlowErrComplete      = "complete_failed"     // FlowRequest.Complete failed: the grant was not stored
	FlowErrStart         = "start_failed"        // the device authorization request failed
	FlowErrDevice        = "device_failed"       // device polling failed otherwise
	FlowErrManagerClosed = "closed"              // the manager was closed while the flow was pending
)

// FlowFailure is how a flow ended in [FlowError] state. It is returned by
// [FlowManager.Callback], [FlowManager.Wait] and, for a device flow whose
// start failed at the server, [FlowManager.Start].
//
// Error returns only the code and Detail, which never contain a secret; the
// cause (often an [*oauth2.RetrieveError]) is available through
// [errors.Unwrap] for logging by a caller that knows what it holds.
type FlowFailure struct {
	Code   string // one of the FlowErr* constants
	Detail string // for a person; also the flow's Detail
	Err    error  // the cause, or nil
}

// Error returns "oauth: flow <code>: <detail>"; never the cause.
func (e *FlowFailure) Error() string { return "oauth: flow " + e.Code + ": " + e.Detail }

// Unwrap returns the cause.
func (e *FlowFailure) Unwrap() error { return e.Err }
