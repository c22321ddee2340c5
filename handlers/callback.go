package handlers

import (
	"errors"
	"net/http"

	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/oauth/flow"
)

// Callback serves GET /profiles/{profile}/providers/{provider}/callback, the
// redirect URI of browser flows in "callback" mode (RFC 6749 section 4.1.2).
// It completes the flow with the query (code and state, or error) and
// answers an HTML page for the person in the browser, never JSON:
//
//   - 200 "Connected" only once the grant is stored;
//   - 400 for a missing, unknown, expired or used state (nothing changes:
//     a pending flow keeps waiting for the real callback), a denial, or an
//     expired flow;
//   - 404 for a link naming no such profile or provider;
//   - 502 when the provider's token endpoint refused the code, 429 when it
//     rate-limited, 500 when the grant could not be saved.
//
// Every error page says what happened and what to do next, and carries the
// request id. Pages are never cached and send no referrer, since the URL
// holds the authorization code. The query is never logged.
//
// The session token does not apply to this route: the browser arrives here
// by redirect from the authorization server, without it; the state
// parameter is what authenticates the request.
func (h *Handlers) Callback(w http.ResponseWriter, r *http.Request) {
	var page callbackPage
	profile, prov, err := h.access(r, pathParams, ActionCallback)
	if err == nil {
		var f flow.Flow
		f, err = h.conn.CallbackBound(r.Context(), profile, prov, r.URL.Query(), browserNonce(r))
		clearBrowserBinding(w, r)
		name := h.displayName(prov)
		if _, isFlow := errors.AsType[*flow.Failure](err); err == nil || isFlow || errors.Is(err, flow.ErrInvalidState) {
			page = callbackOutcome(f, err, name)
		} else {
			page = callbackErrorPage(err)
		}
	} else {
		page = callbackErrorPage(err)
	}
	page.Reference = chimw.GetReqID(r.Context())

	log := hlog.FromRequest(r)
	if page.Status == http.StatusOK {
		log.Info().Str("request_id", page.Reference).Str("outcome", page.Outcome).Msg("oauth callback")
	} else {
		ev := log.Warn().Str("request_id", page.Reference).Str("outcome", page.Outcome).Int("status", page.Status)
		if _, isFlow := errors.AsType[*flow.Failure](err); !isFlow && err != nil {
			// Errors of the service name no secret; a flow failure's cause
			// (the token endpoint's answer) is logged by the flow manager.
			ev = ev.AnErr("cause", err)
		}
		ev.Msg("oauth callback failed")
	}
	page.write(w)
}

// callbackErrorPage is the page for an error that is not the outcome of a
// flow: a bad link (invalid profile, no such profile or provider) or an
// internal error. The code, status and message come from [toError].
func callbackErrorPage(err error) callbackPage {
	e := toError(err)
	page := callbackPage{Status: e.Code.Status(), Outcome: string(e.Code),
		Title: "Sign-in failed", Message: e.Text(),
		Next: "Return to the app and connect again."}
	switch e.Code {
	case apierr.CodeInvalidProfile, apierr.CodeProfileNotFound, apierr.CodeUnknownProvider, apierr.CodeUnsupported, apierr.CodeInvalidRequest:
		page.Title = "This sign-in link is not valid"
		page.Message = "It does not name a profile and provider of this app. " + e.Text()
	case apierr.CodeInternal:
		page.Next = "Return to the app and connect again. If it keeps happening, the server log has the details."
	}
	return page
}
