package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
)

// DisconnectResult is what [Connector.Disconnect] did.
type DisconnectResult struct {
	// Removed reports that a grant, or the profile's own API key, was
	// removed; false when there was none (disconnecting is idempotent).
	Removed bool
	// APIKey reports that what was removed is the profile's API key.
	APIKey bool
	// Revoked reports that the server accepted the revocation of the
	// refresh token (RFC 7009).
	Revoked bool
	// RevokeError says, for a person, why the grant was not revoked at
	// the server: the revocation failed, or the server offers none (no
	// revocation endpoint is known); empty when it was revoked, or when
	// nothing was removed. It never holds a token.
	RevokeError string
	// ValidUntil, when the grant was removed but not revoked, is when its
	// access token stops working at the server (its refresh token may
	// work until the server expires it); zero otherwise.
	ValidUntil time.Time
}

// NotRevokedSentence says, in one sentence for a person, what a removal
// that could not revoke left at the server; "" when there is nothing to
// say (revoked, or nothing removed).
func (r DisconnectResult) NotRevokedSentence(provider string) string {
	if !r.Removed || r.Revoked || r.RevokeError == "" {
		return ""
	}
	s := fmt.Sprintf("The sign-in was removed here, but %s did not revoke it (%s)", provider, strings.TrimPrefix(r.RevokeError, "oauth: "))
	if r.RevokeError == noRevocationEndpoint {
		s = fmt.Sprintf("The sign-in was removed here, but %s offers no way to revoke it", provider)
	}
	if !r.ValidUntil.IsZero() {
		s += fmt.Sprintf(": its access token works until %s UTC, and its refresh token until %s expires it", r.ValidUntil.UTC().Format("2006-01-02 15:04"), provider)
	}
	return s + "."
}

// noRevocationEndpoint is the RevokeError of a server without revocation.
const noRevocationEndpoint = "the server offers no revocation endpoint (RFC 7009)"

// Disconnect removes the profile's credentials for the provider from the
// file they are read from, keeping every other key and host: its grant,
// or else its own API key. A removed grant's refresh token is then revoked
// at the authorization server (RFC 7009) when a revocation endpoint is
// known from the provider's endpoints or from discovery (RFC 8414).
// Revocation is best effort: a failure is logged at warning level and
// reported in the result, and the grant stays removed.
//
// With nothing to remove, Disconnect succeeds with Removed false, so a
// repeated request is not an error; but a profile that connects with an
// API key it does not own (set for every host of the file, or in the
// environment) fails with [ErrAPIKeyConnection].
func (c *Connector) Disconnect(ctx context.Context, profileName, providerName string) (DisconnectResult, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return DisconnectResult{}, err
	}
	if len(t.provider.AuthMethods()) == 0 {
		return DisconnectResult{}, fmt.Errorf("%w: %s cannot be connected here", ErrUnsupported, t.provider.DisplayName())
	}
	ref, err := c.where(t, false)
	if err != nil {
		return DisconnectResult{}, err
	}
	undo := c.expect(t.key, events.Disconnected)
	g, err := ref.grants.Remove(ctx, ref.key)
	if err != nil {
		undo()
	}
	if errors.Is(err, oauth.ErrNoGrant) {
		return c.disconnectKey(ctx, t, ref)
	}
	if err != nil {
		return DisconnectResult{}, err
	}
	c.publish(t.key, events.Disconnected)
	return c.revoke(ctx, t, g), nil
}

// disconnectKey is Disconnect of a profile without a grant: it removes the
// profile's own API key, if it has one.
func (c *Connector) disconnectKey(ctx context.Context, t target, ref grantRef) (DisconnectResult, error) {
	st, err := c.status(ctx, t)
	if err != nil || !st.Connected || st.Auth != AuthAPIKey {
		return DisconnectResult{}, err
	}
	if (st.APIKeySource == "host" && ref.file != nil) || st.APIKeySource == "store" {
		undo := c.expect(t.key, events.Disconnected)
		removed, err := ref.grants.RemoveAPIKey(ctx, ref.key)
		if !removed {
			undo()
		}
		if err != nil || removed {
			if removed {
				c.publish(t.key, events.Disconnected)
			}
			return DisconnectResult{Removed: removed, APIKey: removed}, err
		}
	}
	where := "for every profile of the configuration file"
	if st.APIKeySource == "env" {
		where = "in the environment"
	}
	return DisconnectResult{}, fmt.Errorf("%w: %s: the key is set %s; remove it there", ErrAPIKeyConnection, t.provider.DisplayName(), where)
}

// revoke revokes g's refresh token, best effort (see Disconnect), and
// returns the result of the removal of g.
func (c *Connector) revoke(ctx context.Context, t target, g *oauth.Grant) DisconnectResult {
	res := DisconnectResult{Removed: true}
	token, hint := g.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = g.AccessToken, "access_token" // a grant without a refresh token
	}
	if token == "" {
		return res
	}
	log := c.Logger.With().Str("provider", t.provider.Name()).Str("profile", t.profile.Name).Logger()
	endpoint := c.revocationEndpoint(ctx, t)
	if endpoint == "" {
		log.Info().Msg("grant removed; no revocation endpoint is known, so the refresh token was not revoked")
		res.RevokeError, res.ValidUntil = noRevocationEndpoint, g.Expiry
		return res
	}
	if err := authserver.Revoke(ctx, c.httpClient(), endpoint, g.ClientID, token, hint); err != nil {
		log.Warn().Err(err).Str("endpoint", endpoint).Msg("grant removed, but revoking the refresh token failed")
		res.RevokeError, res.ValidUntil = err.Error(), g.Expiry
		return res
	}
	log.Info().Msg("grant removed and refresh token revoked")
	res.Revoked = true
	return res
}

// revocationEndpoint returns the provider's revocation endpoint, discovering
// it from the issuer's metadata when the provider names none. It returns ""
// when none is known.
func (c *Connector) revocationEndpoint(ctx context.Context, t target) string {
	ep, _, err := c.endpoints(ctx, t, false)
	if err != nil {
		c.Logger.Warn().Err(err).Str("provider", t.provider.Name()).Msg("no endpoints for revocation")
		return ""
	}
	return ep.RevocationURL
}
