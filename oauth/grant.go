package oauth

import (
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// RefreshSkew is how long before its expiry an access token is refreshed, so
// that a request in flight never races the expiry boundary.
const RefreshSkew = 120 * time.Second

// DefaultAccessTokenPrefix marks a Honcho OAuth access token. A host block is
// an OAuth grant only when its apiKey carries the store's prefix.
const DefaultAccessTokenPrefix = "hch-at-"

// defaultExpiresIn is assumed when a token response has no expires_in, so that
// a server that omits it does not cause a refresh on every call.
const defaultExpiresIn = time.Hour

// ErrNoGrant reports that a host block holds no OAuth grant (it may hold a
// plain API key, or not exist).
var ErrNoGrant = errors.New("oauth: no grant stored for this host")

// Grant is an OAuth grant as stored in a honcho.json host block: the access
// token in the block's "apiKey", the rest in its "oauth" sub-block.
//
// Token fields are tagged json:"-" so a Grant that reaches a logger or an
// encoder never prints them.
type Grant struct {
	AccessToken   string    `json:"-"`
	RefreshToken  string    `json:"-"`
	Expiry        time.Time `json:"expires_at"` // "expiresAt", whole epoch seconds
	ClientID      string    `json:"client_id"`
	TokenEndpoint string    `json:"token_endpoint"`
	Scope         string    `json:"scope"`
	TokenType     string    `json:"token_type"`
}

// Token returns the access token as an [oauth2.Token]. The refresh token is
// left out on purpose: it is spent only by the store, under its locks.
func (g *Grant) Token() *oauth2.Token {
	return &oauth2.Token{AccessToken: g.AccessToken, TokenType: g.TokenType, Expiry: g.Expiry}
}

// needsRefresh reports whether the access token is within [RefreshSkew] of
// its expiry at now.
func (g *Grant) needsRefresh(now time.Time) bool {
	return !now.Before(g.Expiry.Add(-RefreshSkew))
}

// oauthFields writes the grant's fields into an "oauth" sub-block, keeping any
// other keys it already has.
func (g *Grant) oauthFields(o *object) {
	o.setValue("refreshToken", g.RefreshToken)
	o.setValue("expiresAt", g.Expiry.Unix())
	o.setValue("clientId", g.ClientID)
	o.setValue("tokenEndpoint", g.TokenEndpoint)
	o.setValue("scope", g.Scope)
	o.setValue("tokenType", g.TokenType)
}

// Credentials is what a config file holds for one host: an OAuth grant, or
// else a plain API key from the host block or the root.
type Credentials struct {
	Grant        *Grant
	APIKey       string `json:"-"`
	APIKeySource string // "host", "root" or ""
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
