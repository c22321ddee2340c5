package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// consentApp is the login and consent app that Hydra sends the browser to
// (urls.login, urls.consent, urls.error). It talks to Hydra's admin API with
// net/http and encoding/json only: it signs in [HydraSubject] without asking
// anything, and grants every requested scope and audience unless told to deny.
//
// consentApp is safe for concurrent use by multiple goroutines.
type consentApp struct {
	admin  string       // Hydra's admin base URL
	client *http.Client // for the admin API
	deny   atomic.Bool  // reject consent requests
	mux    *http.ServeMux

	mu   sync.Mutex // guards hold
	hold *loginHold // while not nil, login requests wait for it
}

// loginHold keeps login requests waiting; see [Hydra.HoldLogin].
type loginHold struct {
	arrived     chan struct{} // closed when the first login request waits
	arrivedOnce sync.Once
	release     chan struct{} // closed by the release func
}

func newConsentApp(adminURL string, client *http.Client) *consentApp {
	a := &consentApp{admin: adminURL, client: client, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /login", a.login)
	a.mux.HandleFunc("GET /consent", a.consent)
	a.mux.HandleFunc("GET /error", a.showError)
	return a
}

func (a *consentApp) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// redirect is the answer of Hydra's accept and reject calls.
type redirect struct {
	RedirectTo string `json:"redirect_to"`
}

// login accepts the login request: PUT
// /admin/oauth2/auth/requests/login/accept, then back to Hydra.
func (a *consentApp) login(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("login_challenge")
	if challenge == "" {
		http.Error(w, "e2e login app: missing login_challenge", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	hold := a.hold
	a.mu.Unlock()
	if hold != nil {
		hold.arrivedOnce.Do(func() { close(hold.arrived) })
		select {
		case <-hold.release:
		case <-r.Context().Done():
			return
		}
	}
	var out redirect
	body := map[string]any{"subject": HydraSubject, "remember": false}
	if err := adminJSON(r.Context(), a.client, http.MethodPut, a.adminURL("login/accept", "login_challenge", challenge), body, &out, http.StatusOK); err != nil {
		http.Error(w, "e2e login app: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusFound)
}

// consent reads the consent request and accepts it with every requested
// scope and audience (or rejects it with access_denied), then back to Hydra.
func (a *consentApp) consent(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("consent_challenge")
	if challenge == "" {
		http.Error(w, "e2e consent app: missing consent_challenge", http.StatusBadRequest)
		return
	}
	var req struct {
		RequestedScope    []string `json:"requested_scope"`
		RequestedAudience []string `json:"requested_access_token_audience"`
	}
	if err := adminJSON(r.Context(), a.client, http.MethodGet, a.adminURL("consent", "consent_challenge", challenge), nil, &req, http.StatusOK); err != nil {
		http.Error(w, "e2e consent app: "+err.Error(), http.StatusBadGateway)
		return
	}
	action := "consent/accept"
	body := map[string]any{
		"grant_scope":                 nonNil(req.RequestedScope),
		"grant_access_token_audience": nonNil(req.RequestedAudience),
		"remember":                    false,
	}
	if a.deny.Load() {
		action = "consent/reject"
		body = map[string]any{"error": "access_denied", "error_description": "The e2e user denied the request."}
	}
	var out redirect
	if err := adminJSON(r.Context(), a.client, http.MethodPut, a.adminURL(action, "consent_challenge", challenge), body, &out, http.StatusOK); err != nil {
		http.Error(w, "e2e consent app: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, out.RedirectTo, http.StatusFound)
}

// showError is urls.error: Hydra sends the browser here when it cannot
// redirect to the client, e.g. for an unregistered redirect URI. It answers
// 400 with Hydra's error, so a test that follows redirects sees why.
func (a *consentApp) showError(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	http.Error(w, fmt.Sprintf("hydra error: %s: %s %s", q.Get("error"), q.Get("error_description"), q.Get("error_hint")), http.StatusBadRequest)
}

// adminURL returns the admin API URL /admin/oauth2/auth/requests/<path>
// with the challenge as the query parameter key.
func (a *consentApp) adminURL(path, key, challenge string) string {
	return a.admin + "/admin/oauth2/auth/requests/" + path + "?" + url.Values{key: {challenge}}.Encode()
}

// nonNil turns a nil slice into an empty one, so it encodes as [] not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
