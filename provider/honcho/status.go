package honcho

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/memconnect/memconnect/oauth"

	"github.com/memconnect/memconnect/provider"
)

// Status implements [provider.Provider]. The profile is connected with
// OAuth when its host block holds a grant; else with an API key from the
// host block, the file's root, or [WithAPIKey], in that order; else not at
// all. ReauthRequired is set once a refresh in any process found the grant
// rejected: the verdict is recorded beside the grant ([VerdictKey]).
func (p *Provider) Status(ctx context.Context, prof provider.Profile, stores *provider.Stores) (provider.Status, error) {
	st := provider.Status{Supported: true}
	// Walk the same chain as GrantLocation, one stat a file (an unchanged
	// file is answered from the store's memory).
	write, chain, host, err := p.chain(prof)
	if err != nil {
		return provider.Status{}, err
	}
	layout := p.layout()
	read := write
	var creds oauth.Credentials
	for _, path := range chain {
		c, found, err := stores.File(path, layout).Lookup(ctx, host)
		if err != nil {
			return provider.Status{}, err
		}
		if found {
			read, creds = path, c
			break
		}
	}
	switch {
	case creds.Grant != nil:
		g := creds.Grant
		st.Connected, st.Auth = true, provider.AuthOAuth
		st.ReauthRequired = creds.Rejected != "" || stores.Grants(read, layout).ReauthRequired(host)
		st.Token = &provider.TokenInfo{ClientID: g.ClientID, Scope: g.Scope, ExpiresAt: g.Expiry, Refreshable: g.RefreshToken != "", TokenEndpoint: g.TokenEndpoint, Obtained: g.Obtained}
	case creds.APIKey != "":
		st.Connected, st.Auth = true, provider.AuthAPIKey
		st.APIKeySource, st.APIKeyHint = creds.APIKeySource, provider.KeyHint(creds.APIKey)
	case p.envAPIKey != "":
		st.Connected, st.Auth = true, provider.AuthAPIKey
		st.APIKeySource, st.APIKeyHint = "env", provider.KeyHint(p.envAPIKey)
	}
	if st.Connected {
		st.Account = p.peerName(read, host)
	}
	return st, nil
}

// peerName is the "peerName" of the config at path, in the host block or at
// the root: the name the person gave at consent, or set themselves; "" for
// none or an unreadable file. A file that has not changed since the last
// look is answered from memory after one stat.
func (p *Provider) peerName(path, host string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	p.peerMu.Lock()
	if c, ok := p.peers[path]; ok && c.size == fi.Size() && c.mod.Equal(fi.ModTime()) {
		p.peerMu.Unlock()
		return c.byHost(host)
	}
	p.peerMu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	c := peerCache{size: fi.Size(), mod: fi.ModTime()}
	if json.Unmarshal(b, &c.cfg) != nil {
		return ""
	}
	p.peerMu.Lock()
	if p.peers == nil {
		p.peers = make(map[string]peerCache)
	}
	p.peers[path] = c
	p.peerMu.Unlock()
	return c.byHost(host)
}

// peerCache is what peerName read of one file.
type peerCache struct {
	size int64
	mod  time.Time
	cfg  struct {
		PeerName string `json:"peerName"`
		Hosts    map[string]struct {
			PeerName string `json:"peerName"`
		} `json:"hosts"`
	}
}

func (c peerCache) byHost(host string) string {
	if n := c.cfg.Hosts[host].PeerName; n != "" {
		return n
	}
	return c.cfg.PeerName
}
