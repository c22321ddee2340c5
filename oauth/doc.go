// Package oauth is memconnect's provider-neutral OAuth machinery: a grant
// store for honcho.json-style config files, a file-backed
// [golang.org/x/oauth2.TokenSource] that keeps the grant fresh, and the
// authorization flows (PKCE over a loopback listener or a router callback,
// RFC 8628 device flow, RFC 7009 revocation, RFC 8414 discovery).
//
// # Refresh tokens rotate and are single-use
//
// The servers this package talks to rotate refresh tokens on every use and
// revoke the whole grant when a superseded one is replayed. Several processes
// (desktop backends, CLI runs, the Python agent) share one config file, so
// every rotation is serialized across all of them with an exclusive flock(2)
// on the sibling file "<config>.lock" — the same lock the Python agent takes —
// and persisted atomically before the lock is released. A process that waited
// for the lock re-reads the file and adopts the token its sibling stored
// instead of spending the (now superseded) refresh token again.
//
// [FileTokenSource] implements that protocol. Its hot path — a cached access
// token comfortably inside its lifetime — takes no lock, reads no file and
// allocates nothing.
//
// The package knows nothing of Honcho, chi or HTTP routing; providers supply
// endpoints and file locations.
package oauth
