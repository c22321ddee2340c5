// Package apierr is the error side of memconnect's HTTP API, shared by
// the handlers and the middleware: the codes, the one table of their
// statuses and default messages, the error value that carries a code and a
// message safe to show, and the one writer of error bodies.
package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/render"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/internal/wire"
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
	// CodeNotConnected (404): the profile has no grant and no API key for
	// the provider.
	CodeNotConnected Code = "not_connected"
	// CodeReauthRequired (409): the grant needs a new sign-in.
	CodeReauthRequired Code = "reauth_required"
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
	CodeNotConnected:     {http.StatusNotFound, "This profile is not connected to the provider."},
	CodeReauthRequired:   {http.StatusConflict, "The provider no longer accepts this sign-in: connect again."},
	CodeInternal:         {http.StatusInternalServerError, InternalMessage},
}

// Status returns the HTTP status code for c. It is the one mapping from
// codes to statuses; an unknown code maps to 500 Internal Server Error.
func (c Code) Status() int {
	if e, ok := codes[c]; ok {
		return e.status
	}
	return http.StatusInternalServerError
}

// Known reports whether c is one of the codes of the HTTP API.
func (c Code) Known() bool {
	_, ok := codes[c]
	return ok
}

// defaultMessage is the person-facing message used when an [Error] has none.
func (c Code) defaultMessage() string {
	if e, ok := codes[c]; ok {
		return e.message
	}
	return InternalMessage
}

// InternalMessage is what a client sees for every error that has no
// person-facing message of its own.
const InternalMessage = "Something went wrong on our side. Try again; if it keeps happening, check the server log."

// Error is an error with a [Code] and a message that is safe to show to a
// person. Err, the internal cause, is logged by [Write] but never sent
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
	// RetryAfter, when positive, is sent as the Retry-After header (RFC
	// 9110 section 10.2.3): when to try again.
	RetryAfter time.Duration
}

// Error returns "apierr: <code>: <message>". It never includes the cause.
func (e *Error) Error() string {
	return "apierr: " + string(e.Code) + ": " + e.Text()
}

// Unwrap returns the internal cause, e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Text returns e.Message, or the code's default message if it is empty.
func (e *Error) Text() string {
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
// message. The cause is logged by [Write], never sent.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// errResponse is the JSON body of every error response:
//
//	{"error": "<code>", "message": "<for a person>", "request_id": "<id>"}
//
// It implements [render.Renderer]; [Write] builds it, so that the status
// and the code always agree.
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

// Classify returns the [*Error] sent for err, or nil for a nil err. It is
// the one mapping from errors to codes:
//
//   - an [*http.MaxBytesError] anywhere in err's chain is
//     [CodePayloadTooLarge], even inside an [*Error] with another code: the
//     size limit is the real reason a body was unreadable;
//   - else the first [*Error] in err's chain, unless its code is not one of
//     the API's, which makes it [CodeInternal];
//   - else err's kind ([errkind.Of]): the code of the kind, the error's
//     message for a person (the code's default when it has none) and its
//     Retry-After;
//   - else a request of another module that failed without a layer
//     classifying it ([*oauth2.RetrieveError], [*url.Error]) is
//     [CodeUpstreamError];
//   - else [CodeInternal] with a generic message.
//
// The Error has err as its cause, so the log keeps the whole story.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &Error{
			Code:    CodePayloadTooLarge,
			Message: fmt.Sprintf("The request body is larger than the limit of %d bytes.", e.Limit),
			Err:     err,
		}
	}
	if e, ok := errors.AsType[*Error](err); ok && e != nil {
		if !e.Code.Known() {
			// A code outside the contract must not reach a client.
			return &Error{Code: CodeInternal, Message: InternalMessage, Err: err}
		}
		return e
	}
	if c, ok := errkind.Of(err); ok {
		if code, ok := kindCodes[c.Kind()]; ok {
			return &Error{Code: code, Message: c.Message(), Err: err, RetryAfter: errkind.RetryAfter(err)}
		}
	}
	if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return &Error{Code: CodeUpstreamError, Err: err}
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return &Error{Code: CodeUpstreamError, Err: err}
	}
	return &Error{Code: CodeInternal, Message: InternalMessage, Err: err}
}

// kindCodes is the code of each kind of error.
var kindCodes = map[errkind.Kind]Code{
	errkind.Invalid:         CodeInvalidRequest,
	errkind.InvalidProfile:  CodeInvalidProfile,
	errkind.ProfileNotFound: CodeProfileNotFound,
	errkind.UnknownProvider: CodeUnknownProvider,
	errkind.Unsupported:     CodeUnsupported,
	errkind.Conflict:        CodeConflict,
	errkind.NotConnected:    CodeNotConnected,
	errkind.ReauthRequired:  CodeReauthRequired,
	errkind.Forbidden:       CodeForbidden,
	errkind.Unavailable:     CodeUnavailable,
	errkind.Upstream:        CodeUpstreamError,
	errkind.Internal:        CodeInternal,
}

// Write writes e to w as a JSON [errResponse]: the one place an error
// becomes an HTTP response. The response is always JSON, whatever the
// request's Accept header says, and carries the request id set by the
// request-id middleware (chi's [chimw.GetReqID]). A nil e is an internal
// error.
//
// The error is logged through the request's logger ([hlog.FromRequest]) with
// the request id: at error level for a 5xx status, at warn level for a 4xx
// status with an internal cause; a 4xx without a cause is left to the access
// log. The internal cause is logged, never sent.
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	if e == nil {
		e = &Error{Code: CodeInternal, Message: InternalMessage,
			Err: errors.New("apierr: Write called with a nil error")}
	}
	resp := &errResponse{
		HTTPStatusCode: e.Code.Status(),
		Code:           e.Code,
		Message:        e.Text(),
		RequestID:      chimw.GetReqID(r.Context()),
	}

	var ev *zerolog.Event
	switch {
	case errors.Is(r.Context().Err(), context.Canceled) && resp.HTTPStatusCode >= 500:
		// The client went away: what failed is its abandoned request, not
		// the server, and nobody reads the answer.
		hlog.FromRequest(r).Info().Str("request_id", resp.RequestID).Msg("request abandoned by the client")
		_ = resp.Render(w, r)
		WriteJSON(w, r, resp)
		return
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

	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Round(time.Second)/time.Second)))
	}
	_ = resp.Render(w, r) // sets the status; never fails
	WriteJSON(w, r, resp)
}

// WriteJSON writes v as the JSON body of the answer, like [render.JSON]
// but without HTML escaping (URLs keep their "&"), with the status
// [render.Status] set, and never cached: a 404 or 405 is cacheable by
// default.
func WriteJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := wire.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal","message":"The answer could not be encoded."}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status, ok := r.Context().Value(render.StatusCtxKey).(int); ok {
		w.WriteHeader(status)
	}
	w.Write(append(body, '\n'))
}
