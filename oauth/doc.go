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
// Two choices go beyond the Python agent, both to keep a rotation from being
// lost or replayed:
//
//   - A refresh request is retried only when it provably never reached the
//     server (it was not fully written) or the server answered 5xx or 429. A
//     response lost after the request was sent is not retried: the server may
//     have rotated, and a retry would replay the old token.
//   - The new grant is first written to "<config>.rotation" (one small write,
//     the moment the response is parsed) and then to the config file by the
//     atomic, fsynced replace. A process killed in between leaves the journal,
//     and the next process of this package to take the lock finishes the
//     write. The Python agent does not read the journal.
//
// What no client can close is a process killed while its refresh request is
// in flight: the server may rotate and the answer is gone. A server-side
// grace period for the superseded token (Ory Hydra's rotation_grace_period)
// is the only remedy.
//
// The package knows nothing of Honcho, chi or HTTP routing; providers supply
// endpoints and file locations.
package oauth
