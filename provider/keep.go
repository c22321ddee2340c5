package provider

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth"
)

// Keep refreshes the profile's grant for the provider in the background's
// way ([oauth.Source.Keep]): only when p says it is due,
// decided again under the locks so that keepers of several processes or
// instances spend it once. A grant that is not due, not refreshable or
// rejected (reauth_required) is left alone without taking a lock: the
// outcome is "" then. Refreshes count as background ones for the
// observer and publish events as a caller's do.
func (c *Connector) Keep(ctx context.Context, profileName, providerName string, p oauth.KeepPolicy) (oauth.Outcome, error) {
	return c.keep(ctx, profileName, providerName, p, false)
}

// KeepClaimed is [Connector.Keep] for a grant that the GrantStore handed
// out as due ([Connector.ClaimDue]): it skips the unlocked check, which
// the store made, and goes to the lock, where the decision is made again.
func (c *Connector) KeepClaimed(ctx context.Context, profileName, providerName string, p oauth.KeepPolicy) (oauth.Outcome, error) {
	return c.keep(ctx, profileName, providerName, p, true)
}

func (c *Connector) keep(ctx context.Context, profileName, providerName string, p oauth.KeepPolicy, claimed bool) (oauth.Outcome, error) {
	t, err := c.oauthTarget(profileName, providerName)
	if err != nil {
		return "", err
	}
	ref, err := c.where(t, false)
	if err != nil {
		return "", err
	}
	if claimed && c.GrantStore != nil {
		ts := ref.grants.TokenSource(ref.key, oauth.OnRefresh(c.onRefresh(t.key, true)))
		return ts.Keep(ctx, p)
	}
	var store oauth.GrantStore = c.GrantStore
	if ref.file != nil {
		store = ref.file
	}
	cr, err := store.Credentials(ctx, ref.key)
	if err != nil {
		return "", err
	}
	g := cr.Grant
	if g == nil || g.RefreshToken == "" || cr.Rejected != "" || ref.grants.ReauthRequired(ref.key) {
		return "", nil
	}
	if !p.Due(g, c.now()) {
		return "", nil
	}
	ts := ref.grants.TokenSource(ref.key, oauth.OnRefresh(c.onRefresh(t.key, true)))
	return ts.Keep(ctx, p)
}

// UsedSince returns the connections whose tokens were asked for at or
// after since: by any instance with a GrantStore that lists its uses
// ([oauth.UseLister]), else by this Connector's token sources
// ([Connector.TokenSource]) as far as this process knows. These are the
// grants a keeper refreshes ahead of their expiry.
func (c *Connector) UsedSince(since time.Time) []connid.ID {
	if ul := c.storeCaps().Uses; ul != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := ul.UsedSince(ctx, since)
		if err != nil {
			c.Logger.Warn().Str("error", err.Error()).Msg("the grants used recently cannot be read from the store")
			return nil
		}
		return parseKeys(keys)
	}
	c.sourcesMu.Lock()
	keys := make([]connid.ID, 0, len(c.sources))
	for k := range c.sources {
		keys = append(keys, k)
	}
	c.sourcesMu.Unlock()
	var out []connid.ID
	for _, k := range keys {
		t, err := c.oauthTarget(k.Profile, k.Provider)
		if err != nil {
			continue
		}
		ref, err := c.where(t, false)
		if err != nil {
			continue
		}
		if !ref.grants.LastUsed(ref.key).Before(since) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, connid.Compare)
	return out
}

// ClaimDue returns, with a GrantStore that shares out work
// ([oauth.DueClaimer], such as pgstore's), the connections whose grants
// were obtained before obtainedBefore, claimed for owner for hold so that
// keepers of other instances skip them. It fails with [ErrNoListing]
// without such a store.
func (c *Connector) ClaimDue(ctx context.Context, owner string, obtainedBefore time.Time, hold time.Duration, limit int) ([]connid.ID, error) {
	dc := c.storeCaps().Due
	if dc == nil {
		return nil, ErrNoListing
	}
	keys, err := dc.ClaimDue(ctx, owner, obtainedBefore, time.Time{}, hold, limit)
	if err != nil {
		return nil, err
	}
	return parseKeys(keys), nil
}

// parseKeys turns a GrantStore's keys into connections, leaving out any
// that is not one.
func parseKeys(keys []string) []connid.ID {
	out := make([]connid.ID, 0, len(keys))
	for _, k := range keys {
		if id, err := connid.Parse(k); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// OAuthConnections returns every profile and OAuth provider pair the
// Connector can enumerate without a GrantStore: each profile the resolver
// lists ([ProfileLister]) with each registered provider that signs in
// with OAuth. It fails with [ErrNoListing] when the profiles cannot be
// listed.
func (c *Connector) OAuthConnections() ([]connid.ID, error) {
	lister, ok := c.Profiles.(ProfileLister)
	if !ok {
		return nil, ErrNoListing
	}
	names, err := lister.ProfileNames()
	if err != nil {
		return nil, err
	}
	var out []connid.ID
	for _, prof := range names {
		for _, p := range c.Registry.List() {
			if SupportsOAuth(p) {
				out = append(out, connid.ID{Profile: prof, Provider: p.Name()})
			}
		}
	}
	return out, nil
}

// IsGone reports whether err, from [Connector.Keep], means there is no
// such connection (any more): a profile removed, a provider unregistered,
// no grant; not a failed refresh.
func IsGone(err error) bool {
	return errors.Is(err, ErrProfileNotFound) || errors.Is(err, ErrUnknownProvider) || errors.Is(err, oauth.ErrNoGrant)
}
