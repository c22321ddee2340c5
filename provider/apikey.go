package provider

import (
	"context"
	"fmt"
	"slices"

	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth"
)

// ConnectAPIKey connects the profile to the provider with an API key: it
// stores key where the provider's agent reads it (the profile's
// [GrantLocation], in place of any grant, which is then revoked as
// [Connector.Disconnect] does) and reports the resulting status. A pending
// flow of the profile is cancelled first, so that it cannot overwrite the
// key when it completes.
//
// The key is checked first: a malformed key, or one the provider's server
// refuses ([KeyChecker]), fails with [ErrAPIKeyRejected]. A provider
// without [AuthKey], or a Connector whose GrantStore keeps OAuth grants
// only (not an [oauth.KeyStore]), fails with [ErrUnsupported]. The key never appears in an
// error or a log line.
func (c *Connector) ConnectAPIKey(ctx context.Context, profileName, providerName, key string) (_ StatusReport, err error) {
	defer func() { err = c.unreachable(providerName, err) }()
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	if !slices.Contains(t.provider.AuthMethods(), AuthKey) {
		return StatusReport{}, fmt.Errorf("%w: %s does not accept an API key", ErrUnsupported, t.provider.DisplayName())
	}
	if c.GrantStore != nil && c.storeCaps().Keys == nil {
		return StatusReport{}, fmt.Errorf("%w: this server's shared store holds OAuth grants only, not API keys", ErrUnsupported)
	}
	if err := oauth.CheckAPIKey(key); err != nil {
		return StatusReport{}, keyError(err)
	}
	if kc, ok := t.provider.(KeyChecker); ok {
		err := kc.CheckAPIKey(ctx, t.profile, key)
		c.observeKeyCheck(t.provider.Name(), err)
		if err != nil {
			return StatusReport{}, err
		}
	}
	if c.Flows != nil {
		c.Flows.Cancel(ctx, t.key)
	}
	ref, err := c.where(t, true)
	if err != nil {
		return StatusReport{}, err
	}
	undo := c.expect(t.key, events.Connected)
	replaced, err := ref.grants.SetAPIKey(ctx, ref.key, key)
	if err != nil {
		undo()
		return StatusReport{}, keyError(err)
	}
	c.publish(t.key, events.Connected)
	if replaced != nil {
		c.revoke(ctx, t, replaced)
	}
	return c.report(ctx, t)
}

// KeyHint returns "…" and the last four characters of key, or "" when the
// key is shorter than 12 characters, so that the hint never gives away a
// meaningful part of it ([Status.APIKeyHint]).
func KeyHint(key string) string {
	r := []rune(key)
	if len(r) < 12 {
		return ""
	}
	return "…" + string(r[len(r)-4:])
}
