package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// renderError writes err to w as the API's JSON error body
// ([apierr.Write]), with the code and message [toError] gives it.
func renderError(w http.ResponseWriter, r *http.Request, err error) {
	apierr.Write(w, r, toError(err))
}

// toError classifies err ([apierr.Classify]), mapping the sentinel and
// typed errors of the lower packages (first match wins):
//
//	*filestore.ConfigError                                    internal 500, names no path
//	provider.ErrInvalidProfile                            invalid_profile 400
//	provider.ErrProfileNotFound                           profile_not_found 404
//	provider.ErrUnknownProvider                           unknown_provider 404
//	provider.ErrUnsupported, flow.ErrDeviceUnsupported    unsupported 404
//	provider.ErrConflict, flow.ErrConflict                conflict 409
//	*oauth.StoreKeyError                                  unavailable 503, naming the key
//	oauth.ErrStoreUnavailable                             unavailable 503, Retry-After
//	provider.ErrNotConnected                              not_connected 404
//	oauth.ErrReauthRequired                               conflict 409 (connect again; reauth_required on POST token)
//	oauth.ErrNoGrant                                      conflict 409 (nothing to remove)
//	provider.ErrAPIKeyConnection                          conflict 409 (remove the key instead)
//	*provider.APIKeyError                                 invalid_request 400 with its Reason
//	provider.ErrUnbindable                                forbidden 403
//	provider.ErrNoCallbackURL                             invalid_request 400
//	flow.ErrInvalidState                                  invalid_request 400
//	flow.ErrClosed                                        internal 500 (shutting down)
//	*flow.Failure                                         upstream_error 502 with its Detail,
//	                                                      internal 500 for complete_failed and closed
//	*provider.UnreachableError (no connection made)       upstream_error 502: the provider can't be
//	                                                      reached from here, why, what to do
//	*authserver.UpstreamError (discovery, registration, a       upstream_error 502 naming the server,
//	step that timed out or was redirected)                the step and the reason
//	*oauth2.RetrieveError, *authserver.RevokeError,
//	*url.Error (a request to the provider failed)         upstream_error 502
//
// An Error built here has err itself as its cause, so the log keeps the
// whole story. Add one case per error to lowerError, keep the message
// safe and actionable, and keep err as the cause; an [*apierr.Error]
// already in err's chain wins.
func toError(err error) *apierr.Error {
	return apierr.Classify(err, lowerError)
}

// configMessage is what a client sees for an [*filestore.ConfigError]. It names
// no path: an HTTP client must not learn the server's directory layout; the
// log has the full path.
const configMessage = "The memory provider's config file could not be read, or it is not valid JSON. " +
	"It was left untouched: fix or move it, then try again. The server log names the file."

// lowerError maps the sentinel and typed errors of packages oauth and
// provider (see [toError]); it returns nil for any other error.
func lowerError(err error) *apierr.Error {
	switch {
	case isType[*oauth.StoreKeyError](err):
		ke, _ := errors.AsType[*oauth.StoreKeyError](err)
		return apierr.Wrap(apierr.CodeUnavailable, err, fmt.Sprintf("This server instance was not given the store key %q that the shared store is now sealed with. Give it the same keys as the other instances (the newest first) and restart it.", ke.KeyID))
	case errors.Is(err, oauth.ErrStoreUnavailable):
		e := apierr.Wrap(apierr.CodeUnavailable, err, "The memory service's database is not answering right now (it may be restarting). Try again in a few seconds.")
		e.RetryAfter = 2 * time.Second
		return e
	case errors.Is(err, flow.ErrClosed):
		return apierr.Wrap(apierr.CodeInternal, err, "The server is shutting down. Try again in a moment.")
	case isType[*filestore.ConfigError](err):
		// Before *FlowFailure: a grant that could not be stored because
		// the file is broken is a local problem, not the provider's.
		return apierr.Wrap(apierr.CodeInternal, err, configMessage)
	case errors.Is(err, provider.ErrInvalidProfile):
		return apierr.Wrap(apierr.CodeInvalidProfile, err, "")
	case errors.Is(err, provider.ErrProfileNotFound):
		return apierr.Wrap(apierr.CodeProfileNotFound, err, "There is no profile with this name. Use \"default\", or create the profile first.")
	case errors.Is(err, provider.ErrUnknownProvider):
		return apierr.Wrap(apierr.CodeUnknownProvider, err, "There is no provider with this name. GET /providers lists the providers.")
	case errors.Is(err, provider.ErrNoListing):
		return apierr.Wrap(apierr.CodeUnsupported, err, "This server cannot list its connections: its profiles (or its grant store) cannot be enumerated.")
	case errors.Is(err, provider.ErrUnsupported), errors.Is(err, flow.ErrDeviceUnsupported):
		return apierr.Wrap(apierr.CodeUnsupported, err, "The provider does not support this: it cannot be connected from here, or not with this sign-in method.")
	case errors.Is(err, provider.ErrConflict), errors.Is(err, flow.ErrConflict):
		return apierr.Wrap(apierr.CodeConflict, err, "Another kind of sign-in is already waiting for this profile. Finish it, or cancel it (POST .../cancel) and connect again.")
	case errors.Is(err, provider.ErrNotConnected):
		return apierr.Wrap(apierr.CodeNotConnected, err, "This profile is not connected to the provider: connect it first.")
	case errors.Is(err, oauth.ErrReauthRequired):
		return apierr.Wrap(apierr.CodeConflict, err, "The provider no longer accepts this sign-in. Connect again.")
	case errors.Is(err, oauth.ErrNoGrant):
		return apierr.Wrap(apierr.CodeConflict, err, "This profile has no sign-in for this provider.")
	case errors.Is(err, provider.ErrAPIKeyConnection):
		return apierr.Wrap(apierr.CodeConflict, err, "This profile uses an API key that is set for every profile of the provider's config file, or in the environment, so disconnecting cannot remove it. Remove the key there.")
	case isType[*provider.APIKeyError](err):
		ke, _ := errors.AsType[*provider.APIKeyError](err)
		return apierr.Wrap(apierr.CodeInvalidRequest, err, "The API key was not stored: "+ke.Reason+".")
	case errors.Is(err, provider.ErrUnbindable):
		return apierr.Wrap(apierr.CodeForbidden, err, "A connect session can start only a sign-in that finishes in this browser, through this server's callback: not a device code, which anyone could enter, nor a sign-in that returns to the server's own machine.")
	case errors.Is(err, provider.ErrNoCallbackURL):
		return apierr.Wrap(apierr.CodeInvalidRequest, err, "This server has no callback URL configured, so \"redirect\" cannot be \"callback\"; use \"loopback\" or leave it out.")
	case errors.Is(err, flow.ErrInvalidState):
		return apierr.Wrap(apierr.CodeInvalidRequest, err, "This sign-in link is not valid: it is unknown, expired or was already used. Start the sign-in again.")
	}
	if ue, ok := errors.AsType[*provider.UnreachableError](err); ok && ue != nil {
		return apierr.Wrap(apierr.CodeUpstreamError, err, ue.Sentence()+".")
	}
	if ue, ok := errors.AsType[*authserver.UpstreamError](err); ok && ue != nil {
		return apierr.Wrap(apierr.CodeUpstreamError, err, fmt.Sprintf("The server %s failed at the %s step: %s.", ue.URL, ue.Step, strings.TrimSuffix(ue.Reason(), ".")))
	}
	if fe, ok := errors.AsType[*flow.Failure](err); ok && fe != nil {
		switch fe.Code {
		case flow.CodeComplete, flow.CodeClosed:
			return apierr.Wrap(apierr.CodeInternal, err, fe.Detail+".")
		}
		return apierr.Wrap(apierr.CodeUpstreamError, err, fe.Detail+".")
	}
	if isType[*oauth2.RetrieveError](err) || isType[*authserver.RevokeError](err) || isType[*url.Error](err) {
		return apierr.Wrap(apierr.CodeUpstreamError, err, "")
	}
	return nil
}

// isType reports whether err's chain holds an error of type E.
func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}
