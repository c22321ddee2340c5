package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/memconnect/memconnect/oauth"
)

// StatusReport is a profile's connection to a provider together with its
// pending authorization flow. It marshals to the "Status body" of DESIGN.md:
//
//	{"provider": "honcho", "profile": "default", "supported": true,
//	 "connected": true, "auth": "oauth", "reauth_required": false,
//	 "token": {"client_id": "hermes-agent", "scope": "write",
//	           "expires_at": "2026-11-28T22:00:00Z", "expires_in": 3412},
//	 "flow": null}
//
// "auth", "token" and "flow" are null when absent. The report never holds a
// secret; APIKeyHint is left out of the JSON.
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
	Flow *oauth.Flow
	// APIKeyHint is [Status.APIKeyHint]; not part of the JSON.
	APIKeyHint string
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
	return &TokenReport{ClientID: t.ClientID, Scope: t.Scope, ExpiresAt: t.ExpiresAt, ExpiresIn: in}
}

// statusJSON is the wire form of [StatusReport].
type statusJSON struct {
	Provider       string      `json:"provider"`
	Profile        string      `json:"profile"`
	Supported      bool        `json:"supported"`
	Connected      bool        `json:"connected"`
	Auth           *string     `json:"auth"`
	ReauthRequired bool        `json:"reauth_required"`
	Token          *tokenJSON  `json:"token"`
	Flow           *oauth.Flow `json:"flow"`
}

// tokenJSON is the wire form of [TokenReport].
type tokenJSON struct {
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	ExpiresAt string `json:"expires_at"`
	ExpiresIn int64  `json:"expires_in"`
}

// MarshalJSON implements [json.Marshaler].
func (r StatusReport) MarshalJSON() ([]byte, error) {
	w := statusJSON{
		Provider:       r.Provider,
		Profile:        r.Profile,
		Supported:      r.Supported,
		Connected:      r.Connected,
		ReauthRequired: r.ReauthRequired,
		Flow:           r.Flow,
	}
	if r.Auth != "" {
		w.Auth = &r.Auth
	}
	if t := r.Token; t != nil {
		w.Token = &tokenJSON{
			ClientID:  t.ClientID,
			Scope:     t.Scope,
			ExpiresAt: t.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339),
			ExpiresIn: t.ExpiresIn,
		}
	}
	// Without HTML escaping: the flow's authorize_url must keep its "&" so
	// that a person can copy it from curl's output.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
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
		Flow:           w.Flow,
	}
	if w.Auth != nil {
		r.Auth = *w.Auth
	}
	if t := w.Token; t != nil {
		at, err := time.Parse(time.RFC3339, t.ExpiresAt)
		if err != nil {
			return fmt.Errorf("provider: token.expires_at: %w", err)
		}
		r.Token = &TokenReport{ClientID: t.ClientID, Scope: t.Scope, ExpiresAt: at, ExpiresIn: t.ExpiresIn}
	}
	return nil
}
