// Package honchotest is an in-process authorization server in Honcho's
// likeness, for tests and for local development: package oauthtest's
// [oauthtest.Server] with Honcho's defaults, the public client
// "hermes-agent", the scope "write", "hch-at-" and "hch-rt-" token
// prefixes, and a consent page that shows the config_path the client sends
// (and the "config" Honcho returns with a grant, [WithGrantConfig]).
//
// See package oauthtest for what the server speaks and how tests drive it.
package honchotest
