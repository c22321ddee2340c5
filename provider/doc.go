// Package provider connects profiles to memory providers.
//
// A [Provider] describes one memory provider (Honcho is the first): its
// sign-in methods (browser, device, API key), its OAuth endpoints, where a
// profile's grant lives in which file and how that file lays it out, and
// the profile's connection status. A provider may also check an API key
// ([KeyChecker]) or obtain its OAuth client at connect time ([Registrar]:
// dynamic registration, or a Client ID Metadata Document the router
// serves), as package mcp's generic provider does. A [Registry] holds
// the providers a server offers; it is a value, never a package global. A
// [ProfileResolver] turns a profile name from a URL or a command line into a
// [Profile]; [HermesProfiles] is the Hermes agent's layout.
//
// [Connector] is the use-case layer that both the HTTP handlers and the
// command-line client use: connect (a flow, or an API key), callback,
// status, cancel, disconnect and the token source of a profile. It decides every default of a connect
// request, applies the disconnect rules, keeps one grant engine per config
// file ([Stores]) and builds the one status wire type, [StatusReport].
//
// It returns the sentinel errors of this package ([ErrInvalidProfile],
// [ErrProfileNotFound], [ErrUnknownProvider], [ErrUnsupported],
// [ErrConflict], [ErrAPIKeyConnection], [ErrAPIKeyRejected],
// [ErrNoCallbackURL]) and those of
// packages oauth and flow (such as
// [github.com/memconnect/memconnect/oauth.ErrReauthRequired]), so that
// callers map them to HTTP statuses or exit codes with [errors.Is].
package provider
