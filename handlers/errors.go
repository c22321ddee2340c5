package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/render"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// Code is the machine-readable error code sent to clients in the "error"
// field of an [errResponse]. The set of codes is part of the HTTP API
// contract: codes may be added, never renamed.
type Code string

// The error codes of the HTTP API. [Code.Status] gives the HTTP status of each.
const (
	// CodeInvalidRequest (400): the request is malformed (bad JSON, bad field).
	CodeInvalidRequest Code = "invalid_request"
	// CodeInvalidProfile (400): the {profile} path segment is not a valid name.
	CodeInvalidProfile Code = "invalid_profile"
	// CodeUnauthorized (401): the session token is missing or wrong.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden (403): the Host or Origin of the request is not allowed.
	CodeForbidden Code = "forbidden"
	// CodeProfileNotFound (404): the profile does not exist.
	CodeProfileNotFound Code = "profile_not_found"
	// CodeUnknownProvider (404): no provider is registered under that name.
	CodeUnknownProvider Code = "unknown_provider"
	// CodeUnsupported (404): the provider does not support the operation.
	CodeUnsupported Code = "unsupported"
	// CodeConflict (409): the request conflicts with the current state,
	// for example a flow is already pending.
	CodeConflict Code = "conflict"
	// CodeUpstreamError (502): the provider's server failed or answered badly.
	CodeUpstreamError Code = "upstream_error"
	// CodeInternal (500): anything else; the details are only in the log.
	CodeInternal Code = "internal"
	// CodeNotFound (404): no route matches the request path.
	CodeNotFound Code = "not_found"
	// CodeMethodNotAllowed (405): the route exists but not for this method.
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodePayloadTooLarge (413): the request body exceeds the size limit.
	CodePayloadTooLarge Code = "payload_too_large"
	// CodeUnavailable (503): the server cannot take the request now, for
	// example as many event streams are open as it allows.
	CodeUnavailable Code = "unavailable"
)

// codes is the one table of the API's error codes: each code's HTTP status
// and the person-facing message used when an [Error] has none.
var codes = map[Code]struct {
	status  int
	message string
}{
	CodeInvalidRequest:   {http.StatusBadRequest, "The request is not valid."},
	CodeInvalidProfile:   {http.StatusBadRequest, "The profile name is not valid: use default, current, or lowercase letters, digits, '-' and '_' (at most 64)."},
	CodeUnauthorized:     {http.StatusUnauthorized, "This server needs a session token: send it as \"Authorization: Bearer TOKEN\"."},
	CodeForbidden:        {http.StatusForbidden, "This request is not allowed."},
	CodeProfileNotFound:  {http.StatusNotFound, "There is no such profile."},
	CodeUnknownProvider:  {http.StatusNotFound, "There is no such provider."},
	CodeUnsupported:      {http.StatusNotFound, "The provider does not support this."},
	CodeNotFound:         {http.StatusNotFound, "There is nothing at this path."},
	CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "This path does not accept this method."},
	CodeConflict:         {http.StatusConflict, "The request conflicts with the current state; reload the status and try again."},
	CodePayloadTooLarge:  {http.StatusRequestEntityTooLarge, "The request body is too large."},
	CodeUpstreamError:    {http.StatusBadGateway, "The provider's server did not answer as expected. Try again later."},
	CodeUnavailable:      {http.StatusServiceUnavailable, "The server is busy. Try again in a moment."},
	CodeInternal:         {http.StatusInternalServerError, internalMessage},
}

// Status returns the HTTP status code for c. It is the one mapping from
// codes to statuses; an unknown code maps to 500 Internal Server Error.
func (c Code) Status() int {
	if e, ok := codes[c]; ok {
		return e.status
	}
	return http.StatusInternalServerError
}

// known reports whether c is one of the codes of the HTTP API.
func (c Code) known() bool {
	_, ok := codes[c]
	return ok
}

// defaultMessage is the person-facing message used when an [Error] has none.
func (c Code) defaultMessage() string {
	if e, ok := codes[c]; ok {
		return e.message
	}
	return internalMessage
}

// internalMessage is what a client sees for every error that has no
// person-facing message of its own.
const internalMessage = "Something went wrong on our side. Try again; if it keeps happening, check the server log."

// Error is an error with a [Code] and a message that is safe to show to a
// person. Err, the internal cause, is logged by [RenderError] but never sent
// to a client, and it is not part of the string returned by [Error.Error];
// reach it with [errors.Unwrap], [errors.Is] or [errors.As].
//
// Neither Message nor Err may contain secrets (tokens, codes, verifiers):
// Message is sent to clients and Err is written to the log.
type Error struct {
	// Code is the machine-readable code; it decides the HTTP status.
	Code Code
	// Message is for a person: it says what went wrong and, when it can,
	// what to do. An empty Message means the code's default message.
	Message string
	// Err is the internal cause, or nil. It is logged, never sent.
	Err error
}

// Error returns "handlers: <code>: <message>". It never includes the cause.
func (e *Error) Error() string {
	return "handlers: " + string(e.Code) + ": " + e.message()
}

// Unwrap returns the internal cause, e.Err.
func (e *Error) Unwrap() error { return e.Err }

// message returns e.Message, or the code's default message if it is empty.
func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.defaultMessage()
}

// Errorf returns an [*Error] with the given code and a message formatted
// with [fmt.Sprintf]. The message is sent to clients, so the arguments must
// be safe to show; it has no cause (use [Wrap] to keep one).
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an [*Error] with the given code and person-facing message
// whose internal cause is err. An empty message means the code's default
// message. The cause is logged by [RenderError], never sent.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// toError classifies err: it returns the [*Error] that [RenderError] sends
// for it, or nil if err is nil. This is THE one mapping from errors to codes.
//
//   - an [*http.MaxBytesError] (from [http.MaxBytesReader]) anywhere in
//     err's chain is [CodePayloadTooLarge], even inside an [*Error] with
//     another code: the size limit is the real reason a body was unreadable;
//   - else the first [*Error] in err's chain is returned as it is, unless its
//     code is not one of the API's codes, which makes it [CodeInternal];
//   - else the sentinel and typed errors of the lower packages map to
//     codes, as listed in the table below;
//   - else anything is [CodeInternal] with a generic message.
//
// The errors of the lower packages (first match wins):
//
//	*oauth.ConfigError                                    internal 500, names no path
//	provider.ErrInvalidProfile                            invalid_profile 400
//	provider.ErrProfileNotFound                           profile_not_found 404
//	provider.ErrUnknownProvider                           unknown_provider 404
//	provider.ErrUnsupported, flow.ErrDeviceUnsupported    unsupported 404
//	provider.ErrConflict, flow.ErrConflict                conflict 409
//	oauth.ErrReauthRequired                               conflict 409 (connect again)
//	oauth.ErrNoGrant                                      conflict 409 (nothing to remove)
//	provider.ErrAPIKeyConnection                          conflict 409 (remove the key instead)
//	*provider.APIKeyError                                 invalid_request 400 with its Reason
//	provider.ErrNoCallbackURL                             invalid_request 400
//	flow.ErrInvalidState                                  invalid_request 400
//	flow.ErrClosed                                        internal 500 (shutting down)
//	*flow.Failure                                         upstream_error 502 with its Detail,
//	                                                      internal 500 for complete_failed and closed
//	*provider.UnreachableError (no connection made)       upstream_error 502: the provider can't be
//	                                                      reached from here, why, what to do
//	*oauth.UpstreamError (discovery, registration, a       upstream_error 502 naming the server,
//	step that timed out or was redirected)                the step and the reason
//	*oauth2.RetrieveError, *oauth.RevokeError,
//	*url.Error (a request to the provider failed)         upstream_error 502
//
// An Error built here has err itself as its cause, so the log keeps the
// whole story.
func toError(err error) *Error {
	if err == nil {
		return nil
	}
	// A body over the limit is the real reason whatever a handler made of
	// its read error (typically "invalid JSON"), so this check comes first.
	if e, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &Error{
			Code:    CodePayloadTooLarge,
			Message: fmt.Sprintf("The request body is larger than the limit of %d bytes.", e.Limit),
			Err:     err,
		}
	}
	if e, ok := errors.AsType[*Error](err); ok && e != nil {
		if !e.Code.known() {
			// A code outside the contract must not reach a client.
			return &Error{Code: CodeInternal, Message: internalMessage, Err: err}
		}
		return e
	}

	// Extension point: sentinel and typed errors of the lower packages
	// (oauth, provider, ...) are mapped here, and only here, so that every
	// route answers them alike. Add one case per error, keep the message
	// safe and actionable, and keep err as the cause. An *Error found above
	// wins: a handler that already chose a code for a sentinel keeps it.
	if e := lowerError(err); e != nil {
		return e
	}

	return &Error{Code: CodeInternal, Message: internalMessage, Err: err}
}

// configMessage is what a client sees for an [*oauth.ConfigError]. It names
// no path: an HTTP client must not learn the server's directory layout; the
// log has the full path.
const configMessage = "The memory provider's config file could not be read, or it is not valid JSON. " +
	"It was left untouched: fix or move it, then try again. The server log names the file."

// lowerError maps the sentinel and typed errors of packages oauth and
// provider (see [toError]); it returns nil for any other error.
func lowerError(err error) *Error {
	switch {
	case errors.Is(err, flow.ErrClosed):
		return Wrap(CodeInternal, err, "The server is shutting down. Try again in a moment.")
	case isType[*oauth.ConfigError](err):
		// Before *FlowFailure: a grant that could not be stored because
		// the file is broken is a local problem, not the provider's.
		return Wrap(CodeInternal, err, configMessage)
	case errors.Is(err, provider.ErrInvalidProfile):
		return Wrap(CodeInvalidProfile, err, "")
	case errors.Is(err, provider.ErrProfileNotFound):
		return Wrap(CodeProfileNotFound, err, "There is no profile with this name. Use \"default\", or create the profile first.")
	case errors.Is(err, provider.ErrUnknownProvider):
		return Wrap(CodeUnknownProvider, err, "There is no provider with this name. GET /providers lists the providers.")
	case errors.Is(err, provider.ErrNoListing):
		return Wrap(CodeUnsupported, err, "This server cannot list its connections: its profiles (or its grant store) cannot be enumerated.")
	case errors.Is(err, provider.ErrUnsupported), errors.Is(err, flow.ErrDeviceUnsupported):
		return Wrap(CodeUnsupported, err, "The provider does not support this: it cannot be connected from here, or not with this sign-in method.")
	case errors.Is(err, provider.ErrConflict), errors.Is(err, flow.ErrConflict):
		return Wrap(CodeConflict, err, "Another kind of sign-in is already waiting for this profile. Finish it, or cancel it (POST .../cancel) and connect again.")
	case errors.Is(err, oauth.ErrReauthRequired):
		return Wrap(CodeConflict, err, "The provider no longer accepts this sign-in. Connect again.")
	case errors.Is(err, oauth.ErrNoGrant):
		return Wrap(CodeConflict, err, "This profile has no sign-in for this provider.")
	case errors.Is(err, provider.ErrAPIKeyConnection):
		return Wrap(CodeConflict, err, "This profile uses an API key that is set for every profile of the provider's config file, or in the environment, so disconnecting cannot remove it. Remove the key there.")
	case isType[*provider.APIKeyError](err):
		ke, _ := errors.AsType[*provider.APIKeyError](err)
		return Wrap(CodeInvalidRequest, err, "The API key was not stored: "+ke.Reason+".")
	case errors.Is(err, provider.ErrNoCallbackURL):
		return Wrap(CodeInvalidRequest, err, "This server has no callback URL configured, so \"redirect\" cannot be \"callback\"; use \"loopback\" or leave it out.")
	case errors.Is(err, flow.ErrInvalidState):
		return Wrap(CodeInvalidRequest, err, "This sign-in link is not valid: it is unknown, expired or was already used. Start the sign-in again.")
	}
	if ue, ok := errors.AsType[*provider.UnreachableError](err); ok && ue != nil {
		return Wrap(CodeUpstreamError, err, ue.Sentence()+".")
	}
	if ue, ok := errors.AsType[*oauth.UpstreamError](err); ok && ue != nil {
		return Wrap(CodeUpstreamError, err, fmt.Sprintf("The server %s failed at the %s step: %s.", ue.URL, ue.Step, strings.TrimSuffix(ue.Reason(), ".")))
	}
	if fe, ok := errors.AsType[*flow.Failure](err); ok && fe != nil {
		switch fe.Code {
		case flow.CodeComplete, flow.CodeClosed:
			return Wrap(CodeInternal, err, fe.Detail+".")
		}
		return Wrap(CodeUpstreamError, err, fe.Detail+".")
	}
	if isType[*oauth2.RetrieveError](err) || isType[*oauth.RevokeError](err) || isType[*url.Error](err) {
		return Wrap(CodeUpstreamError, err, "")
	}
	return nil
}

// isType reports whether err's chain holds an error of type E.
func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// errResponse is the JSON body of every error response:
//
//	{"error": "<code>", "message": "<for a person>", "request_id": "<id>"}
//
// It implements [render.Renderer]; build one with [RenderError] rather than
// by hand so that the status and the code always agree.
type errResponse struct {
	// HTTPStatusCode is the response status; it is not part of the body.
	HTTPStatusCode int `json:"-"`
	// Code is the machine-readable error code.
	Code Code `json:"error"`
	// Message is safe to show to a person.
	Message string `json:"message"`
	// RequestID is the request's id, also sent in the X-Request-Id header.
	RequestID string `json:"request_id"`
}

var _ render.Renderer = (*errResponse)(nil)

// Render sets the response status to e.HTTPStatusCode; it implements
// [render.Renderer].
func (e *errResponse) Render(w http.ResponseWriter, r *http.Request) error {
	render.Status(r, e.HTTPStatusCode)
	return nil
}

// RenderError writes err to w as a JSON [errResponse]. It is THE one place
// that turns an error into an HTTP response; handlers and middleware call it
// instead of writing error bodies themselves.
//
// The code and message come from [toError]. The response is always JSON,
// whatever the request's Accept header says, and carries the request id set
// by the request-id middleware (chi's [chimw.GetReqID]).
//
// The error is logged through the request's logger ([hlog.FromRequest]) with
// the request id: at error level for a 5xx status, at warn level for a 4xx
// status with an internal cause; a 4xx without a cause is left to the access
// log. The internal cause is logged, never sent.
func RenderError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	if e == nil {
		e = &Error{Code: CodeInternal, Message: internalMessage,
			Err: errors.New("handlers: RenderError called with a nil error")}
	}
	resp := &errResponse{
		HTTPStatusCode: e.Code.Status(),
		Code:           e.Code,
		Message:        e.message(),
		RequestID:      chimw.GetReqID(r.Context()),
	}

	var ev *zerolog.Event
	switch {
	case resp.HTTPStatusCode >= 500:
		ev = hlog.FromRequest(r).Error()
	case e.Err != nil:
		ev = hlog.FromRequest(r).Warn()
	}
	if ev != nil {
		ev = ev.Str("request_id", resp.RequestID).
			Str("error", string(resp.Code)).
			Int("status", resp.HTTPStatusCode).
			Str("detail", resp.Message) // zerolog's "message" is the line's own
		if e.Err != nil {
			ev = ev.AnErr("cause", e.Err)
		}
		ev.Msg("request failed")
	}

	_ = resp.Render(w, r) // sets the status; never fails
	writeJSON(w, r, resp)
}
