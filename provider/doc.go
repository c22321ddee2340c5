// Package provider connects memory providers to the OAuth machinery of
// package [github.com/memconnect/memconnect/oauth].
//
// A [Provider] describes one memory provider (Honcho is the first): its
// OAuth endpoints, where a profile's grant lives, and the profile's
// connection status. A [Registry] holds the providers a server offers; it is
// a value, never a package global. A [ProfileResolver] turns a profile name
// from a URL or a command line into a [Profile]; [HermesProfiles] is the
// Hermes agent's layout.
//
// [Service] is the orchestration that both the HTTP handlers and the
// command-line client use: connect, callback, status, cancel, disconnect.
// It returns the sentinel errors of this package ([ErrInvalidProfile],
// [ErrProfileNotFound], [ErrUnknownProvider], [ErrUnsupported],
// [ErrConflict]) and those of package oauth (such as
// [github.com/memconnect/memconnect/oauth.ErrReauthRequired]) so that callers
// map them to HTTP statuses or exit codes with [errors.Is].
package provider
