package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/memconnect/memconnect/internal/wire"
	"github.com/memconnect/memconnect/oauth/flow"
)

// StatusReport is a profile's connection to a provider together with its
// pending authorization flow. It is the one wire type of the status body,
// the answer of the HTTP status, connect and cancel routes:
//
//	{"provider": "honcho", "profile": "default", "supported": true,
//	 "connected": true, "auth": "oauth", "reauth_required": false,
//	 "token": {"client_id": "hermes-agent", "scope": "write",
//	           "expires_at": "2026-11-28T22:00:00Z", "expires_in": 3412,
//	           "refreshable": true},
//	 "flow": {"id": "...", "state": "pending", "method": "browser",
//	          "detail": "Waiting for browser consent",
//	          "authorize_url": "https://...", "redirect_uri": "http://127.0.0.1:8765/callback",
//	          "user_code": null, "verification_uri": null,
//	          "expires_at": "2026-11-28T21:40:00Z"}}
//
// "auth", "token" and "flow" are null when absent, and so are the flow's
// optional fields; times are RFC 3339 UTC seconds. The report never holds a
// secret; APIKeyHint is left out of the JSON.
//
// The JSON is the wire format the HTTP API and the command-line client
// share (memconnect status --json prints it), which is why it lives beside
// the use cases rather than in package handlers: both sides encode it
// here, and openapi.yaml describes it as the Status schema.
type StatusReport struct {
	// Provider is the provider's name.
	Provider string
	// Profile is the profile's canonical name.
	Profile string
	// Supported reports whether the provider supports OAuth.
	Supported bool
	// Connected reports whether the profile has credentials.
	Connected bool
	// Auth is [AuthOAuth], [AuthAPIKey] or "" (JSON null).
	Auth string
	// ReauthRequired reports that the grant is dead and a person must
	// connect again.
	ReauthRequired bool
	// Token describes the OAuth grant; nil unless Auth is [AuthOAuth].
	Token *TokenReport
	// Flow is the profile's authorization flow for the provider; nil when
	// there is none.
	Flow *flow.Flow
	// APIKeyHint is [Status.APIKeyHint]; not part of the JSON.
	APIKeyHint string
	// Account is [Status.Account]; "account" in the JSON, left out when "".
	Account string
	// NeedsScopes are the scopes a resource asked for (403
	// insufficient_scope) that the grant lacks; "needs_scopes" in the
	// JSON, left out when none. The next Connect asks for them.
	NeedsScopes []string
	// Health is one of [HealthOK], [HealthExpiring], [HealthFailing] and
	// [HealthReauthRequired]; "" (left out of the JSON) when not
	// connected.
	Health string
	// LastRefreshAt is when the grant's tokens were issued (the sign-in
	// or the last refresh, by any holder), or when this process last
	// refreshed them if the store does not say; nil when unknown.
	LastRefreshAt *time.Time
	// LastError is the last failed refresh this process saw, while no
	// refresh has worked since; nil otherwise.
	LastError *ErrorReport
}

// TokenReport describes an OAuth grant at the time of a [StatusReport].
type TokenReport struct {
	// ClientID is the client the grant was issued to.
	ClientID string
	// Scope is the granted scope.
	Scope string
	// ExpiresAt is when the access token expires.
	ExpiresAt time.Time
	// ExpiresIn is the whole seconds from the report's time to ExpiresAt,
	// never negative.
	ExpiresIn int64
	// Refreshable reports that the grant renews itself; false for one
	// issued without a refresh token, which ends at ExpiresAt.
	Refreshable bool
}

// newTokenReport describes t as seen at now.
func newTokenReport(t *TokenInfo, now time.Time) *TokenReport {
	if t == nil {
		return nil
	}
	in := int64(t.ExpiresAt.Sub(now) / time.Second)
	if in < 0 || t.ExpiresAt.IsZero() {
		in = 0
	}
	return &TokenReport{ClientID: t.ClientID, Scope: t.Scope, ExpiresAt: t.ExpiresAt, ExpiresIn: in, Refreshable: t.Refreshable}
}

// statusJSON is the wire form of [StatusReport].
type statusJSON struct {
	Provider       string     `json:"provider"`
	Profile        string     `json:"profile"`
	Supported      bool       `json:"supported"`
	Connected      bool       `json:"connected"`
	Auth           *string    `json:"auth"`
	ReauthRequired bool       `json:"reauth_required"`
	Token          *tokenJSON `json:"token"`
	Flow           *flowJSON  `json:"flow"`
	Account        string     `json:"account,omitempty"`
	NeedsScopes    []string   `json:"needs_scopes,omitempty"`
	Health         string     `json:"health,omitempty"`
	LastRefreshAt  *time.Time `json:"last_refresh_at,omitempty"`
	LastError      *errorJSON `json:"last_error,omitempty"`
}

// errorJSON is the wire form of [ErrorReport].
type errorJSON struct {
	At      time.Time `json:"at"`
	Since   time.Time `json:"since"`
	Message string    `json:"message"`
}

// tokenJSON is the wire form of [TokenReport].
type tokenJSON struct {
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	ExpiresAt string `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in"`
	// Refreshable is false for a grant without a refresh token.
	Refreshable bool `json:"refreshable"`
}

// MarshalJSON implements [json.Marshaler].
func (r StatusReport) MarshalJSON() ([]byte, error) {
	w := statusJSON{
		Provider:       r.Provider,
		Profile:        r.Profile,
		Supported:      r.Supported,
		Connected:      r.Connected,
		ReauthRequired: r.ReauthRequired,
		Flow:           newFlowJSON(r.Flow),
		Account:        r.Account,
		NeedsScopes:    r.NeedsScopes,
		Health:         r.Health,
	}
	if r.Auth != "" {
		w.Auth = &r.Auth
	}
	if r.LastRefreshAt != nil {
		at := r.LastRefreshAt.UTC().Truncate(time.Second)
		w.LastRefreshAt = &at
	}
	if e := r.LastError; e != nil {
		w.LastError = &errorJSON{At: e.At.UTC().Truncate(time.Second), Since: e.Since.UTC().Truncate(time.Second), Message: e.Message}
	}
	if t := r.Token; t != nil {
		w.Token = &tokenJSON{
			ClientID:    t.ClientID,
			Scope:       t.Scope,
			ExpiresAt:   t.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339),
			ExpiresIn:   t.ExpiresIn,
			Refreshable: t.Refreshable,
		}
	}
	// Without HTML escaping: the flow's authorize_url must keep its "&" so
	// that a person can copy it from curl's output.
	return wire.Marshal(w)
}

// UnmarshalJSON implements [json.Unmarshaler], for clients of the HTTP API.
func (r *StatusReport) UnmarshalJSON(b []byte) error {
	var w statusJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = StatusReport{
		Provider:       w.Provider,
		Profile:        w.Profile,
		Supported:      w.Supported,
		Connected:      w.Connected,
		ReauthRequired: w.ReauthRequired,
		Flow:           w.Flow.flow(),
		Account:        w.Account,
		NeedsScopes:    w.NeedsScopes,
		Health:         w.Health,
		LastRefreshAt:  w.LastRefreshAt,
	}
	if w.Auth != nil {
		r.Auth = *w.Auth
	}
	if e := w.LastError; e != nil {
		r.LastError = &ErrorReport{At: e.At, Since: e.Since, Message: e.Message}
	}
	if t := w.Token; t != nil {
		at, err := time.Parse(time.RFC3339, t.ExpiresAt)
		if err != nil {
			return fmt.Errorf("provider: token.expires_at: %w", err)
		}
		r.Token = &TokenReport{ClientID: t.ClientID, Scope: t.Scope, ExpiresAt: at, ExpiresIn: t.ExpiresIn, Refreshable: t.Refreshable}
	}
	return nil
}

// MarshalFlow returns the JSON of f as the status body's "flow" member
// shows it (null for nil), for answers that carry a flow alone, such as an
// event stream's flow events: the same wire format as [StatusReport]'s.
// URLs keep their "&": the JSON is not HTML-escaped, as no answer of the
// API is.
func MarshalFlow(f *flow.Flow) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(newFlowJSON(f)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// flowJSON is the wire form of a [flow.Flow].
type flowJSON struct {
	ID              *string    `json:"id"`
	State           flow.State `json:"state"`
	Method          *string    `json:"method"`
	Detail          *string    `json:"detail"`
	AuthorizeURL    *string    `json:"authorize_url"`
	RedirectURI     *string    `json:"redirect_uri"`
	UserCode        *string    `json:"user_code"`
	VerificationURI *string    `json:"verification_uri"`
	ExpiresAt       *time.Time `json:"expires_at"`
}

// newFlowJSON returns the wire form of f, nil for nil.
func newFlowJSON(f *flow.Flow) *flowJSON {
	if f == nil {
		return nil
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	w := &flowJSON{
		ID:              str(f.ID),
		State:           f.State,
		Method:          str(string(f.Method)),
		Detail:          str(f.Detail),
		AuthorizeURL:    str(f.AuthorizeURL),
		RedirectURI:     str(f.RedirectURI),
		UserCode:        str(f.UserCode),
		VerificationURI: str(f.VerificationURI),
	}
	if w.State == "" {
		w.State = flow.StateIdle
	}
	if !f.ExpiresAt.IsZero() {
		t := f.ExpiresAt.UTC().Truncate(time.Second)
		w.ExpiresAt = &t
	}
	return w
}

// flow returns the flow w describes; nulls become zero values.
func (w *flowJSON) flow() *flow.Flow {
	if w == nil {
		return nil
	}
	val := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	f := &flow.Flow{
		ID:              val(w.ID),
		State:           w.State,
		Method:          flow.Method(val(w.Method)),
		Detail:          val(w.Detail),
		AuthorizeURL:    val(w.AuthorizeURL),
		RedirectURI:     val(w.RedirectURI),
		UserCode:        val(w.UserCode),
		VerificationURI: val(w.VerificationURI),
	}
	if w.ExpiresAt != nil {
		f.ExpiresAt = *w.ExpiresAt
	}
	return f
}
