package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
)

// Connection is one profile's connection to one provider, as the host's
// list of connections shows it ([Connector.Connections]).
type Connection struct {
	Profile        string
	Provider       string
	Auth           string // [AuthOAuth] or [AuthAPIKey]
	ReauthRequired bool
	// Token is the grant's description; nil for an API key.
	Token *TokenReport
}

// ConnectionFilter narrows [Connector.Connections]: a profile, a provider
// (empty: all), and a page: the connections after After ("profile/provider"),
// at most Limit of them.
type ConnectionFilter struct {
	Profile, Provider string
	After             string
	Limit             int
}

// ErrNoListing reports a Connector that cannot enumerate its connections:
// its profiles cannot be listed ([ProfileLister]) or its GrantStore not
// ([oauth.GrantLister]).
var ErrNoListing = errkind.New(errkind.Unsupported, "provider: the connections cannot be listed here",
	"This server cannot list its connections: its profiles (or its grant store) cannot be enumerated.")

// MaxConnectionsPage bounds one page of [Connector.Connections].
const MaxConnectionsPage = 500

// Connections returns the connections the Connector can see, sorted by
// profile then provider, and the cursor of the next page ("" when this is
// the last): with a GrantStore, every grant it holds; otherwise every
// connected provider of every profile the resolver lists. It reads no
// token and holds no secret.
func (c *Connector) Connections(ctx context.Context, f ConnectionFilter) ([]Connection, string, error) {
	if f.Limit <= 0 || f.Limit > MaxConnectionsPage {
		f.Limit = MaxConnectionsPage
	}
	if f.Provider != "" {
		if _, ok := c.Registry.Lookup(f.Provider); !ok {
			return nil, "", fmt.Errorf("%w: %s", ErrUnknownProvider, quoteShort(f.Provider))
		}
	}
	if f.Profile != "" {
		if err := ValidateProfileName(f.Profile); err != nil {
			return nil, "", err
		}
		if f.Profile == "current" {
			f.Profile = DefaultProfile
		}
	}
	var after connid.ID
	if f.After != "" {
		var err error
		if after, err = connid.ParseCursor(f.After); err != nil {
			return nil, "", fmt.Errorf("provider: the page's after: %w", err)
		}
	}
	caps := c.storeCaps()
	if caps.Pages != nil {
		return c.connectionPage(ctx, caps.Pages, f)
	}
	var pairs []connid.ID
	lister, _ := c.Profiles.(ProfileLister)
	switch {
	case c.GrantStore != nil:
		gl := caps.List
		if gl == nil {
			return nil, "", ErrNoListing
		}
		// Keys are "<provider>/<profile>": list them all, sort by profile.
		for after := ""; ; {
			keys, err := gl.GrantKeys(ctx, after, MaxConnectionsPage)
			if err != nil {
				return nil, "", err
			}
			pairs = append(pairs, parseKeys(keys)...)
			if len(keys) < MaxConnectionsPage {
				break
			}
			after = keys[len(keys)-1]
		}
	case lister != nil:
		names, err := lister.ProfileNames()
		if err != nil {
			return nil, "", err
		}
		for _, prof := range names {
			for _, p := range c.Registry.List() {
				pairs = append(pairs, connid.ID{Profile: prof, Provider: p.Name()})
			}
		}
	default:
		return nil, "", ErrNoListing
	}
	slices.SortFunc(pairs, connid.Compare)
	var out []Connection
	for _, pr := range pairs {
		if (f.Profile != "" && pr.Profile != f.Profile) || (f.Provider != "" && pr.Provider != f.Provider) ||
			(f.After != "" && connid.Compare(pr, after) <= 0) {
			continue
		}
		if len(out) == f.Limit {
			last := out[len(out)-1]
			return out, connid.ID{Profile: last.Profile, Provider: last.Provider}.Cursor(), nil
		}
		rep, err := c.Status(ctx, pr.Profile, pr.Provider)
		if errors.Is(err, ErrProfileNotFound) || errors.Is(err, ErrUnknownProvider) {
			continue // gone meanwhile, or a provider no longer registered
		}
		if _, bad := errors.AsType[*filestore.ConfigError](err); bad {
			c.Logger.Warn().Str("profile", pr.Profile).Str("provider", pr.Provider).Err(err).Msg("connections: a config file cannot be read; left out")
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if !rep.Connected {
			continue
		}
		out = append(out, Connection{Profile: rep.Profile, Provider: rep.Provider, Auth: rep.Auth,
			ReauthRequired: rep.ReauthRequired, Token: rep.Token})
	}
	return out, "", nil
}

// connectionPage is Connections over a [oauth.ConnectionPager]: one page from
// the store, with no read per connection.
func (c *Connector) connectionPage(ctx context.Context, cp oauth.ConnectionPager, f ConnectionFilter) ([]Connection, string, error) {
	var out []Connection
	var visited int
	var next string // the cursor after the limit-th row visited
	more := false
	now := c.now()
	err := cp.ConnectionPage(ctx, f.Profile, f.Provider, f.After, f.Limit+1, func(key string, cr oauth.Credentials) {
		visited++
		if visited > f.Limit {
			more = true // a row past the page: there is a next one
			return
		}
		id, err := connid.Parse(key)
		next = id.Cursor()
		p, registered := c.Registry.Lookup(id.Provider)
		if err != nil || !registered {
			return // a provider no longer registered
		}
		conn := Connection{Profile: id.Profile, Provider: id.Provider, Auth: AuthAPIKey}
		if g := cr.Grant; g != nil {
			info := &TokenInfo{ClientID: g.ClientID, Scope: g.Scope, ExpiresAt: g.Expiry, Refreshable: g.RefreshToken != "", TokenEndpoint: g.TokenEndpoint, Obtained: g.Obtained}
			conn.Auth, conn.Token = AuthOAuth, newTokenReport(info, now)
			conn.ReauthRequired = cr.Rejected != "" || (!info.Refreshable && !now.Before(g.Expiry))
			if ic, ok := p.(IssuerChecker); ok && ic.Moved(g.TokenEndpoint) {
				conn.ReauthRequired = true
			}
		}
		out = append(out, conn)
	})
	if err != nil {
		return nil, "", err
	}
	if more {
		return out, next, nil
	}
	return out, "", nil
}
