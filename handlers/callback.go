package handlers

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"

	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/oauth"
)

// callbackTemplate is the page a person sees at the end of a browser flow
// redirected to the callback route. html/template escapes every value.
var callbackTemplate = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}.ref{color:#555;font-size:.875rem}</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p role="status">{{.Message}}</p>
{{with .Next}}<p>{{.}}</p>{{end}}
{{with .RequestID}}<p class="ref">Reference: <code>{{.}}</code></p>{{end}}
</main>
</body>
</html>
`))

// callbackPage is what the callback page says, and with which status.
type callbackPage struct {
	Status    int
	Title     string
	Message   string
	Next      string // the next step, for a person
	RequestID string
	outcome   string // for the log: "connected" or why not
}

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
	profile, prov, err := pathParams(r)
	if err == nil {
		var flow oauth.Flow
		flow, err = h.svc.Callback(r.Context(), profile, prov, r.URL.Query())
		page = h.callbackOutcome(prov, flow, err)
	} else {
		page = callbackErrorPage(err)
	}
	page.RequestID = chimw.GetReqID(r.Context())

	log := hlog.FromRequest(r)
	if page.Status == http.StatusOK {
		log.Info().Str("request_id", page.RequestID).Str("outcome", page.outcome).Msg("oauth callback")
	} else {
		ev := log.Warn().Str("request_id", page.RequestID).Str("outcome", page.outcome).Int("status", page.Status)
		if _, isFlow := errors.AsType[*oauth.FlowFailure](err); !isFlow && err != nil {
			// Errors of the service name no secret; a flow failure's cause
			// (the token endpoint's answer) is logged by the flow manager.
			ev = ev.AnErr("cause", err)
		}
		ev.Msg("oauth callback failed")
	}
	writeCallbackPage(w, page)
}

// callbackOutcome is the page for the result of [provider.Service.Callback].
func (h *Handlers) callbackOutcome(prov string, flow oauth.Flow, err error) callbackPage {
	const again = "Return to the app and connect again."
	if err == nil && flow.State == oauth.FlowConnected {
		name := prov
		if p, ok := h.svc.Registry.Lookup(prov); ok {
			name = p.DisplayName()
		}
		return callbackPage{Status: http.StatusOK, outcome: "connected",
			Title:   "Connected to " + name,
			Message: oauth.SuccessMessage,
		}
	}
	if errors.Is(err, oauth.ErrInvalidState) {
		return callbackPage{Status: http.StatusBadRequest, outcome: "invalid_state",
			Title:   "This sign-in link is not valid",
			Message: "It is unknown, expired, or was already used, so it was ignored.",
			Next:    "Return to the app: if it is still waiting, finish the sign-in from the page it opened; otherwise connect again.",
		}
	}
	fe, ok := errors.AsType[*oauth.FlowFailure](err)
	if !ok || fe == nil {
		if err == nil {
			err = errors.New("handlers: callback ended without a connection or an error")
		}
		return callbackErrorPage(err)
	}
	page := callbackPage{Status: http.StatusInternalServerError, outcome: fe.Code,
		Title: "Sign-in failed", Message: fe.Detail + ".", Next: again}
	switch fe.Code {
	case oauth.FlowErrAccessDenied:
		page.Status, page.Title = http.StatusBadRequest, "Sign-in was declined"
		page.Message = "Access was not granted, so nothing was connected."
		page.Next = "If that was a mistake, return to the app and connect again."
	case oauth.FlowErrAuthorization:
		page.Status = http.StatusBadRequest
	case oauth.FlowErrExpired, oauth.FlowErrTimedOut:
		page.Status, page.Title = http.StatusBadRequest, "Sign-in expired"
	case oauth.FlowErrRateLimited:
		page.Status = http.StatusTooManyRequests
		page.Next = "Wait a minute, then return to the app and connect again."
	case oauth.FlowErrExchange:
		page.Status = http.StatusBadGateway
		page.Next = "Return to the app and connect again. If it keeps failing, the provider's server may be having trouble."
	case oauth.FlowErrComplete:
		page.Title = "Signed in, but not saved"
		page.Message = "You approved the sign-in, but the credentials could not be saved, so nothing was connected."
		page.Next = "Check that the Honcho config file is valid JSON and can be written (the server log names it), then connect again from the app."
	case oauth.FlowErrManagerClosed:
		page.Status, page.Title = http.StatusServiceUnavailable, "The app is shutting down"
		page.Next = "Start the app again, then connect again."
	}
	return page
}

// callbackErrorPage is the page for an error that is not the outcome of a
// flow: a bad link (invalid profile, no such profile or provider) or an
// internal error. The code, status and message come from [ToError].
func callbackErrorPage(err error) callbackPage {
	e := ToError(err)
	page := callbackPage{Status: e.Code.Status(), outcome: string(e.Code),
		Title: "Sign-in failed", Message: e.message(),
		Next: "Return to the app and connect again."}
	switch e.Code {
	case CodeInvalidProfile, CodeProfileNotFound, CodeUnknownProvider, CodeUnsupported, CodeInvalidRequest:
		page.Title = "This sign-in link is not valid"
		page.Message = "It does not name a profile and provider of this app. " + e.message()
	case CodeInternal:
		page.Next = "Return to the app and connect again. If it keeps happening, the server log has the details."
	}
	return page
}

// writeCallbackPage writes page as HTML, never cached and with no referrer.
func writeCallbackPage(w http.ResponseWriter, page callbackPage) {
	var buf bytes.Buffer
	if err := callbackTemplate.Execute(&buf, page); err != nil {
		// The template and its data are fixed; this cannot happen.
		http.Error(w, "Sign-in: the result page could not be shown.", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(page.Status)
	_, _ = w.Write(buf.Bytes())
}
