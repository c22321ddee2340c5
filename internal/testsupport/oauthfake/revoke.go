package oauthfake

import (
	"net/http"
)

// handleRevoke is the revocation endpoint (RFC 7009 section 2). Revoking an
// access or refresh token revokes its whole grant. Unknown tokens, and
// tokens of another client, are answered 200 and left alone, so the
// endpoint does not reveal which tokens exist (RFC 7009 section 2.2).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	if oe == nil && !s.isClient(form.Get("client_id")) {
		oe = errInvalidClient()
	}
	if oe == nil && form.Get("token") == "" {
		oe = errInvalidRequest("token is required")
	}
	if oe != nil {
		oe.write(w)
		return
	}
	// token_type_hint is only a hint (RFC 7009 section 2.1): every kind of
	// token is looked up whatever it says.
	s.mu.Lock()
	if rec := s.tokens[form.Get("token")]; rec != nil && rec.grant.clientID == form.Get("client_id") {
		s.revokeLocked(rec.grant)
	}
	s.stats.Revocations++
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// introspection is an RFC 7662 section 2.2 response.
type introspection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Iss       string `json:"iss,omitempty"`
}

// handleIntrospect is the introspection endpoint (RFC 7662). For tests'
// convenience it requires no client authentication. token_type is "Bearer"
// for access tokens and "refresh_token" for refresh tokens; exp is omitted
// for refresh tokens that never expire.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	if oe == nil && form.Get("token") == "" {
		oe = errInvalidRequest("token is required")
	}
	if oe != nil {
		oe.write(w)
		return
	}
	var resp introspection
	s.mu.Lock()
	if rec := s.tokens[form.Get("token")]; rec != nil && s.activeLocked(rec, s.now()) {
		resp = introspection{
			Active:    true,
			ClientID:  rec.grant.clientID,
			Scope:     rec.scope,
			TokenType: "Bearer",
			Iat:       rec.issued.Unix(),
			Iss:       s.URL,
		}
		if rec.kind == refreshToken {
			resp.TokenType = "refresh_token"
		}
		if !rec.expiry.IsZero() {
			resp.Exp = rec.expiry.Unix()
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}
