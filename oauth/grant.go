package oauth

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/errkind"
)

// RefreshSkew is how long before its expiry an access token is refreshed, so
// that a request in flight never races the expiry boundary; a token that
// lives less than twice as long, as far as the process has seen, is
// refreshed when half its lifetime is left.
const RefreshSkew = 120 * time.Second

// defaultExpiresIn is assumed when a token response has no expires_in, so that
// a server that omits it does not cause a refresh on every call.
const defaultExpiresIn = time.Hour

// Errors of the package, for [errors.Is].
var (
	// ErrNoGrant reports that a store holds no OAuth grant for a key (it
	// may hold a plain API key, or nothing).
	ErrNoGrant = errkind.New(errkind.Conflict, "oauth: no grant stored", "This profile has no sign-in for this provider.")

	// ErrReauthRequired reports that the authorization server rejected
	// the grant (invalid_grant, invalid_client or unauthorized_client) and
	// no other holder had stored a newer one: the person has to sign in
	// again. Errors returned for a dead grant match it; they are
	// [*ReauthError] values.
	ErrReauthRequired = errkind.New(errkind.Conflict, "oauth: re-authentication required", reauthMessage)

	// ErrStaleGrant is returned by [LockedGrant.Commit] when the store no
	// longer holds the refresh token the commit replaces: someone wrote
	// the grant without taking the lock.
	ErrStaleGrant = errors.New("oauth: the stored grant changed under the lock")

	// ErrRotationInFlight is returned by [LockedGrant.Prepare] when
	// another holder has begun to spend the refresh token and has not
	// finished: it may be at the server (a holder paused past its lease),
	// so the token is not spent again. [Grants] then adopts what the store
	// holds by now, or keeps the current token while it is valid.
	ErrRotationInFlight = errors.New("oauth: another holder's refresh of this grant has not finished")

	// ErrRotationAbandoned is returned, wrapped, by a [LockedGrant]'s
	// Prepare when a holder recorded that it spent the refresh token and
	// never came back with an answer, for longer than the store waits (it
	// was killed, or paused for good, while its request was at the
	// server). The server may have rotated the token; spending it again
	// could be a replay, which revokes the whole grant. [Grants] records
	// the grant as needing a new sign-in ([CodeAbandoned]) instead.
	ErrRotationAbandoned = errors.New("oauth: a refresh of this grant was sent and never finished")

	// ErrStoreUnavailable is matched by a store's error when the store
	// cannot be reached for now (a database restarting or gone away), as
	// opposed to refusing the operation: try again in a few seconds.
	ErrStoreUnavailable = errkind.New(errkind.Unavailable, "oauth: the store cannot be reached for now",
		"The memory service's database is not answering right now (it may be restarting). Try again in a few seconds.").RetryAfter(2 * time.Second)
)

// Grant is an OAuth grant: the tokens and what is needed to refresh them.
//
// Token fields are tagged json:"-" so a Grant that reaches a logger or an
// encoder never prints them.
type Grant struct {
	AccessToken   string    `json:"-"`
	RefreshToken  string    `json:"-"`
	Expiry        time.Time `json:"expires_at"` // whole seconds
	ClientID      string    `json:"client_id"`
	TokenEndpoint string    `json:"token_endpoint"`
	Scope         string    `json:"scope"`
	TokenType     string    `json:"token_type"`
	// Resource is the protected resource the grant is for (RFC 8707),
	// sent with every refresh; "" for none.
	Resource string `json:"resource,omitempty"`
	// Obtained is when the server issued these tokens (whole seconds): the
	// sign-in or the last rotation. Zero when unknown, as for a grant
	// another program wrote; see [Grant.ObtainedOrEstimate].
	Obtained time.Time `json:"obtained_at,omitzero"`
}

// ObtainedOrEstimate is g.Obtained, or when that is unknown an estimate:
// an hour (the lifetime assumed for a token without expires_in) before
// the access token's expiry.
func (g *Grant) ObtainedOrEstimate() time.Time {
	if !g.Obtained.IsZero() {
		return g.Obtained
	}
	return g.Expiry.Add(-defaultExpiresIn)
}

// token returns the access token as an [oauth2.Token]. The refresh token is
// left out on purpose: it is spent only under the locks.
func (g *Grant) token() *oauth2.Token {
	return &oauth2.Token{AccessToken: g.AccessToken, TokenType: g.TokenType, Expiry: g.Expiry}
}

// StoreKeyError reports a stored value that this process cannot open: it
// was sealed with the key KeyID, which this process was not given (another
// instance sealed it after a key rotation it has not had yet). KeyID is a
// name, never a secret.
type StoreKeyError struct {
	KeyID string
}

// Kind is [errkind.Unavailable]: this instance cannot serve until it is
// given the key.
func (e *StoreKeyError) Kind() errkind.Kind { return errkind.Unavailable }

// Message says what to do, for a person.
func (e *StoreKeyError) Message() string {
	return fmt.Sprintf("This server instance was not given the store key %q that the shared store is now sealed with. Give it the same keys as the other instances (the newest first) and restart it.", e.KeyID)
}

func (e *StoreKeyError) Error() string {
	return fmt.Sprintf("oauth: the store holds values sealed with key %q, which this process was not given", e.KeyID)
}

// Credentials is what a store holds for one key: an OAuth grant, or else a
// plain API key.
type Credentials struct {
	Grant *Grant
	// Rejected is the OAuth error code with which the server rejected
	// Grant ("invalid_grant"), recorded by any holder; "" when it was not.
	Rejected     string
	APIKey       string `json:"-"`
	APIKeySource string // where the API key was found, such as "host" or "root"; "" for none
	// Shared is what a store every instance shares keeps of the
	// connection besides its credentials ([StateStore]); nil for a store
	// that keeps none, whose readers know only their own process's.
	Shared *SharedState
}

// SharedState is what a [StateStore] keeps of a connection for every
// instance: how its refreshes went, the scopes a resource asked for, and
// when a token was last asked for, so that any instance reports the same.
type SharedState struct {
	Health      Health
	NeedsScopes []string
	LastUsed    time.Time // to the minute; zero when never
}

// Rotated returns the grant that the token response tok, received at now,
// rotates g to: its tokens and expiry, and g's client, endpoint, scope and
// token type where the response names none. A negative expires_in gives a
// token that expired already; none gives an hour.
func (g *Grant) Rotated(tok *oauth2.Token, now time.Time) *Grant { return grantFromToken(tok, now, g) }

// grantFromToken builds the grant a token response describes; base supplies
// what the response leaves out.
func grantFromToken(tok *oauth2.Token, now time.Time, base *Grant) *Grant {
	g := *base
	g.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		g.RefreshToken = tok.RefreshToken
	}
	switch {
	case tok.ExpiresIn != 0: // negative: a token already expired, still a rotation
		g.Expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero():
		g.Expiry = tok.Expiry
	default:
		g.Expiry = now.Add(defaultExpiresIn)
	}
	g.Expiry = g.Expiry.Truncate(time.Second)
	g.Obtained = now.Truncate(time.Second)
	if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
		g.Scope = sc
	}
	if tok.TokenType != "" {
		g.TokenType = tok.TokenType
	}
	return &g
}
