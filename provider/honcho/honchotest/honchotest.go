// Package honchotest is an authorization server in Honcho's likeness for a
// host's tests: package oauthtest's [oauthtest.Server] with Honcho's
// defaults, the public client "hermes-agent", the scope "write", "hch-at-"
// and "hch-rt-" token prefixes, and the "config" Honcho returns with a
// grant ([WithGrantConfig]).
package honchotest

import (
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/oauthtest"
)

// Honcho's defaults, which [NewServer] starts from.
const (
	// DefaultClientID is the public client Hermes is registered as.
	DefaultClientID = honchofake.DefaultClientID
	// DefaultAccessTokenPrefix starts every access token, as Honcho's do.
	DefaultAccessTokenPrefix = honchofake.DefaultAccessTokenPrefix
	// DefaultScope is Honcho's scope, granted when a request names none.
	DefaultScope = honchofake.DefaultScope
)

// NewServer starts an authorization server in Honcho's likeness; opts come
// after Honcho's defaults and override them. Close it with
// [oauthtest.Server.Close].
func NewServer(opts ...oauthtest.Option) *oauthtest.Server {
	var all []oauthtest.Option
	for _, o := range honchofake.Defaults() {
		all = append(all, oauthtest.Option(o))
	}
	return oauthtest.NewServer(append(all, opts...)...)
}

// WithGrantConfig is the "config" Honcho returns with a new grant, such as
// {"peerName": "alice"}.
func WithGrantConfig(cfg map[string]any) oauthtest.Option {
	return oauthtest.Option(oauthfake.WithGrantConfig(cfg))
}

// WithAPIKey makes Honcho's API accept key as an API key.
func WithAPIKey(key string) oauthtest.Option { return oauthtest.Option(oauthfake.WithAPIKey(key)) }
