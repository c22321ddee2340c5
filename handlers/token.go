package handlers

import (
	"net/http"
	"time"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/internal/apierr"
)

// tokenRequest is the body of POST token; it may be left out:
//
//	{"force": false}
type tokenRequest struct {
	// Force refreshes the grant even when its token is not due (an agent
	// whose request was refused with the token it has), at most once
	// every ten seconds for a grant (provider.ForceInterval).
	Force bool `json:"force"`
}

var _ render.Binder = (*tokenRequest)(nil)

// UnmarshalJSON decodes a token request, refusing unknown fields.
func (t *tokenRequest) UnmarshalJSON(data []byte) error {
	type plain tokenRequest // without this method
	var p plain
	if err := strictUnmarshal(data, &p); err != nil {
		return err
	}
	*t = tokenRequest(p)
	return nil
}

// Bind implements [render.Binder]; every value is valid.
func (t *tokenRequest) Bind(*http.Request) error { return nil }

// tokenResponse is the answer of POST token: the broker contract agents
// ask for.
type tokenResponse struct {
	AccessToken  string     `json:"access_token"`
	TokenType    string     `json:"token_type"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	RefreshAfter *time.Time `json:"refresh_after,omitempty"`
	Scope        string     `json:"scope,omitempty"`
}

var _ render.Renderer = (*tokenResponse)(nil)

// Render implements [render.Renderer]: the answer holds a secret, which
// no cache may keep.
func (t *tokenResponse) Render(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	render.Status(r, http.StatusOK)
	return nil
}

// Token serves POST /profiles/{profile}/providers/{provider}/token: a
// fresh token for an agent of the host, so that an agent in any language
// needs neither the store's key nor the grant's refresh token. The answer
// is 200 {"access_token", "token_type", "expires_at", "refresh_after",
// "scope"} for an OAuth grant (refreshed under the same locks and leases
// as any caller's when due; ask again after refresh_after), and
// {"access_token", "token_type": "api_key"} for an API key; with
// {"force": true} the grant is refreshed even when not due, at most once
// every ten seconds (provider.ForceInterval).
//
// Only the host's own credential gets a token: a connect session is 403,
// and [AuthorizeFunc] is asked with [ActionToken]. A profile with nothing
// to give is 404 not_connected; a grant that needs a new sign-in is 409
// reauth_required. The answer is Cache-Control: no-store; the token is
// never logged.
func (h *Handlers) Token(w http.ResponseWriter, r *http.Request) {
	if underSession(r) {
		renderError(w, r, apierr.Errorf(apierr.CodeForbidden, "A connect session cannot get tokens: this route is for the host's own agents, with the host's credential."))
		return
	}
	profile, prov, err := h.access(r, pathParams, ActionToken)
	if err != nil {
		renderError(w, r, err)
		return
	}
	var body tokenRequest
	if err := bind(r, &body); err != nil {
		renderError(w, r, err)
		return
	}
	at, err := h.conn.Token(r.Context(), profile, prov, body.Force)
	if err != nil {
		renderError(w, r, err)
		return
	}
	res := &tokenResponse{AccessToken: at.AccessToken, TokenType: at.TokenType, Scope: at.Scope}
	if !at.ExpiresAt.IsZero() {
		exp, after := at.ExpiresAt.UTC(), at.RefreshAfter.UTC()
		res.ExpiresAt, res.RefreshAfter = &exp, &after
	}
	respond(w, r, res)
}
