// Package honchofake is the in-process authorization server in Honcho's
// likeness that this module's tests and examples/server -dev use: package
// oauthfake's [oauthfake.Server] with Honcho's defaults, the public client
// "hermes-agent", the scope "write", "hch-at-" and "hch-rt-" token
// prefixes, and a consent page that shows the config_path the client sends
// (and the "config" Honcho returns with a grant, [WithGrantConfig]).
//
// Package honchotest is the part of it a host's tests need, as public API.
package honchofake
