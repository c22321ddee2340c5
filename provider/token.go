package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/oauth"
)

// AgentToken is what an agent calls the provider with: the profile's
// access token, fresh, or its API key. It holds a secret: never log it.
type AgentToken struct {
	AccessToken string
	// TokenType is the access token's type ("Bearer"), or
	// [TokenTypeAPIKey] for an API key.
	TokenType string
	// ExpiresAt is when the access token ends; zero for an API key.
	ExpiresAt time.Time
	// RefreshAfter is when to ask again: from then on the token is within
	// its refresh margin ([oauth.SkewFor]); zero for an API key.
	RefreshAfter time.Time
	// Scope is the grant's scope; "" for an API key.
	Scope string
}

// TokenTypeAPIKey is the [AgentToken] type of an API key.
const TokenTypeAPIKey = "api_key"

// ForceInterval is how often a forced refresh of one grant goes to the
// server at most: a forced request within it gets the token the last one
// brought.
const ForceInterval = 10 * time.Second

// ErrNotConnected reports a profile that has no grant and no API key for
// the provider.
var ErrNotConnected = errkind.New(errkind.NotConnected, "provider: the profile is not connected to the provider",
	"This profile is not connected to the provider: connect it first.")

// EnvKeyer is implemented by a provider configured with an API key of its
// own (from the environment) that a profile without one uses.
type EnvKeyer interface {
	EnvAPIKey() string
}

// forced remembers the forced refreshes of the last ForceInterval.
type forced struct {
	mu   sync.Mutex // guards last
	last map[connid.ID]forcedRefresh
}

type forcedRefresh struct {
	at   time.Time
	from string // the access token it replaced
}

// Token returns a fresh token of the profile for the provider, for an
// agent: an OAuth grant's access token, refreshed under the same locks
// and leases as any caller's when it is due, or the profile's API key.
// With force the grant is refreshed even when not due, at most once every
// [ForceInterval]: the calls within it (ten at once, say) share that one
// refresh and get its token.
//
// It fails with [ErrNotConnected] when there is nothing to give, and with
// an error matching [oauth.ErrReauthRequired] when the grant needs a new
// sign-in, classified [errkind.ReauthRequired].
func (c *Connector) Token(ctx context.Context, profileName, providerName string, force bool) (AgentToken, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return AgentToken{}, err
	}
	st, err := c.status(ctx, t)
	if err != nil {
		return AgentToken{}, err
	}
	switch {
	case !st.Connected:
		return AgentToken{}, fmt.Errorf("%w: %s, profile %s", ErrNotConnected, t.provider.DisplayName(), t.profile.Name)
	case st.Auth == AuthAPIKey:
		key, err := c.apiKey(ctx, t)
		if err == nil && key == "" {
			err = fmt.Errorf("%w: %s, profile %s", ErrNotConnected, t.provider.DisplayName(), t.profile.Name)
		}
		return AgentToken{AccessToken: key, TokenType: TokenTypeAPIKey}, err
	case st.ReauthRequired:
		return AgentToken{}, reauthToken(fmt.Errorf("provider: %s, profile %s: %w", t.provider.DisplayName(), t.profile.Name, oauth.ErrReauthRequired))
	}
	ts, err := c.TokenSource(profileName, providerName)
	if err != nil {
		return AgentToken{}, err
	}
	tok, err := ts.TokenContext(ctx)
	if err == nil && force {
		if from, ok := c.forcing(t.key, tok.AccessToken); ok {
			tok, err = ts.ForceRefresh(ctx, from)
		}
	}
	if err != nil {
		return AgentToken{}, reauthToken(err)
	}
	at := AgentToken{AccessToken: tok.AccessToken, TokenType: tok.Type(), ExpiresAt: tok.Expiry}
	info := st
	if info.Token == nil || !info.Token.ExpiresAt.Equal(tok.Expiry) {
		info, err = c.status(ctx, t) // refreshed since: read what the rotation recorded
	}
	if err == nil && info.Token != nil {
		at.Scope = info.Token.Scope
		obtained := info.Token.Obtained
		if !info.Token.ExpiresAt.Equal(tok.Expiry) {
			obtained = time.Time{} // another rotation meanwhile: the margin of an unknown lifetime
		}
		at.RefreshAfter = tok.Expiry.Add(-oauth.SkewFor(obtained, tok.Expiry))
	}
	if at.RefreshAfter.IsZero() && !tok.Expiry.IsZero() {
		at.RefreshAfter = tok.Expiry.Add(-oauth.RefreshSkew)
	}
	return at, nil
}

// forcing decides whether a forced refresh of key, whose current access
// token is current, goes to the server: it returns the access token to
// refresh away from, and false when a forced refresh within
// ForceInterval already replaced current (the caller has the fresh one).
// Calls within the interval that still hold the token it replaced refresh
// away from that same token, so that they wait for the one refresh and
// adopt its answer.
func (c *Connector) forcing(key connid.ID, current string) (string, bool) {
	now := c.now()
	c.forced.mu.Lock()
	defer c.forced.mu.Unlock()
	if last, ok := c.forced.last[key]; ok && now.Sub(last.at) < ForceInterval {
		return last.from, current == last.from
	}
	if c.forced.last == nil {
		c.forced.last = make(map[connid.ID]forcedRefresh)
	}
	for k, f := range c.forced.last {
		if now.Sub(f.at) >= ForceInterval {
			delete(c.forced.last, k)
		}
	}
	c.forced.last[key] = forcedRefresh{at: now, from: current}
	return current, true
}

// apiKey is the API key t's profile is connected with: from where its
// grants live, else the provider's own ([EnvKeyer]).
func (c *Connector) apiKey(ctx context.Context, t target) (string, error) {
	ref, err := c.where(t, false)
	if err != nil {
		return "", err
	}
	var creds oauth.Credentials
	switch {
	case c.GrantStore != nil:
		creds, err = c.GrantStore.Credentials(ctx, ref.key)
	case ref.file != nil:
		creds, err = ref.file.Credentials(ctx, ref.key)
	}
	if err != nil || creds.APIKey != "" {
		return creds.APIKey, err
	}
	if ek, ok := t.provider.(EnvKeyer); ok {
		return ek.EnvAPIKey(), nil
	}
	return "", nil
}

// reauthToken classifies a token refused because the grant needs a new
// sign-in as [errkind.ReauthRequired], the verdict an agent asking for a
// token gets, with what happened for a person; any other error as it is.
func reauthToken(err error) error {
	if !errors.Is(err, oauth.ErrReauthRequired) {
		return err
	}
	msg := "The provider no longer accepts this sign-in: a person must connect again."
	if re, ok := errors.AsType[*oauth.ReauthError](err); ok && re.Code == oauth.CodeAbandoned {
		msg = "A refresh of this sign-in was cut off at the server, so its token is not sent again (that could revoke it): a person must connect again."
	}
	return errkind.Wrap(errkind.ReauthRequired, err, msg)
}
