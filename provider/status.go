package provider

import (
	"context"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
)

// Status reports the profile's connection to the provider and its flow.
func (c *Connector) Status(ctx context.Context, profileName, providerName string) (StatusReport, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	rep, err := c.report(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	if c.Flows != nil {
		if f := c.Flows.Status(ctx, t.key); f.ID != "" || f.State != flow.StateIdle {
			rep.Flow = &f
		}
	}
	return rep, nil
}

// report builds the status report of t without its flow.
func (c *Connector) report(ctx context.Context, t target) (StatusReport, error) {
	st, err := c.status(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	now := c.now()
	if tk := st.Token; tk != nil && !tk.Refreshable && !now.Before(tk.ExpiresAt) {
		st.ReauthRequired = true // a grant without a refresh token ends with its access token
	}
	if ic, ok := t.provider.(IssuerChecker); ok && st.Token != nil && ic.Moved(st.Token.TokenEndpoint) {
		st.ReauthRequired = true // its issuer is not the provider's any more
	}
	var needs []string
	if st.Auth == AuthOAuth {
		needs = c.needsScopes(t, st)
	}
	rep := StatusReport{
		Provider:       t.provider.Name(),
		Profile:        t.profile.Name,
		Supported:      st.Supported,
		Connected:      st.Connected,
		Auth:           st.Auth,
		ReauthRequired: st.ReauthRequired,
		Token:          newTokenReport(st.Token, now),
		APIKeyHint:     st.APIKeyHint,
		Account:        st.Account,
		NeedsScopes:    needs,
	}
	c.health(t, st, &rep, now)
	return rep, nil
}

// needsScopes are the scopes a resource asked t's grant for and it lacks
// (a 403 insufficient_scope through a Transport of this Connector).
func (c *Connector) needsScopes(t target, st Status) []string {
	if st.Shared != nil {
		return st.Shared.NeedsScopes // what every instance was asked
	}
	ref, err := c.where(t, false)
	if err != nil {
		return nil
	}
	return ref.grants.NeedsScopes(ref.key)
}

// status is the provider's status of t, or with a GrantStore what the store
// holds for it.
func (c *Connector) status(ctx context.Context, t target) (Status, error) {
	if c.GrantStore == nil {
		return t.provider.Status(ctx, t.profile, c.Stores())
	}
	st := Status{Supported: SupportsOAuth(t.provider)}
	ref, err := c.where(t, false)
	if err != nil {
		return Status{}, err
	}
	creds, err := c.GrantStore.Credentials(ctx, ref.key)
	if err != nil {
		return st, err
	}
	st.Shared = creds.Shared
	if creds.Grant == nil {
		if creds.APIKey != "" {
			st.Connected, st.Auth = true, AuthAPIKey
			st.APIKeySource, st.APIKeyHint = creds.APIKeySource, KeyHint(creds.APIKey)
		}
		return st, nil
	}
	g := creds.Grant
	st.Connected, st.Auth = true, AuthOAuth
	st.ReauthRequired = creds.Rejected != "" || ref.grants.ReauthRequired(ref.key)
	st.Token = &TokenInfo{ClientID: g.ClientID, Scope: g.Scope, ExpiresAt: g.Expiry, Refreshable: g.RefreshToken != "", TokenEndpoint: g.TokenEndpoint, Obtained: g.Obtained}
	return st, nil
}

// TokenSource returns a token source of the profile's grant for the
// provider. Every source of this Connector for that file shares its cache
// and its in-process refresh lock, and refreshes under the file lock.
func (c *Connector) TokenSource(profileName, providerName string, opts ...oauth.SourceOption) (*oauth.Source, error) {
	t, err := c.oauthTarget(profileName, providerName)
	if err != nil {
		return nil, err
	}
	ref, err := c.where(t, false)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oauth.OnRefresh(c.onRefresh(t.key, false)))
	c.used(t.key)
	return ref.grants.TokenSource(ref.key, opts...), nil
}
