// Package oauth keeps OAuth grants fresh when refresh tokens rotate and are
// single-use, and several processes share them.
//
// The servers this package talks to rotate the refresh token on every use
// and revoke the whole grant when a superseded one is replayed. Desktop
// backends, command-line runs and the Python agent share one grant, so
// every rotation is serialized across all of them and stored before anyone
// else may spend the token.
//
// # The refresh protocol
//
// [Grants] runs the protocol, written once over the [GrantStore] interface;
// [Source] is its [golang.org/x/oauth2.TokenSource] for one key:
//
//  1. While the cached access token is more than [RefreshSkew] from expiry
//     it is returned with no lock, no store access and no allocation.
//  2. Otherwise the source takes the in-process lock of the key and the
//     store's lock ([GrantStore.Lock]), both with a deadline, re-reads the
//     grant and adopts a token another holder already rotated.
//  3. Only if the stored token still needs a refresh does it spend the
//     refresh token: 15 s an attempt, one retry after 2 s when the request
//     provably did not reach the server or the server answered 5xx or 429,
//     20 s in all. A response lost after the request was sent is not
//     retried: the server may have rotated, and a retry would replay the
//     token. The new grant goes to the journal ([LockedGrant.Journal]) the
//     moment it is parsed and is then committed ([LockedGrant.Commit],
//     a compare-and-swap on the old refresh token) before the locks are
//     released. A rotation that cannot be committed is kept in memory and
//     committed on the next call, never replayed.
//  4. On invalid_grant, invalid_client or unauthorized_client it re-reads
//     the grant and adopts a refresh token that changed meanwhile (a lost
//     race); otherwise the grant is dead: no network call until the store
//     holds another grant, and calls fail with [ErrReauthRequired].
//  5. On a transient failure it logs a warning (no token values), returns
//     the current token (fail open) and makes no new attempt for 30 s.
//  6. A caller whose request was answered 401 calls [Source.ForceRefresh]
//     with the token it sent; [Transport] does so and retries once.
//
// Token values never appear in logs, errors or panics.
//
// What no client can close is a process killed while its refresh request is
// in flight: the server may rotate and the answer is gone. A server-side
// grace period for the superseded token (Ory Hydra's rotation_grace_period)
// is the only remedy.
//
// # Config files
//
// [FileStore] is the [GrantStore] of a JSON config file: an exclusive
// flock(2) on "<config>.lock" (the lock the Python agent takes), atomic
// writes that keep every other member, a rotation journal
// "<config>.rotation" that the next holder finishes, and a [FileLayout]
// that says where in the file each key's grant lives. A provider supplies
// the layout; this package knows no provider.
//
// # Standards helpers
//
// [Discover] reads authorization server metadata (RFC 8414) and [Revoke]
// revokes a token (RFC 7009). The authorization flows that obtain a grant
// are in package [github.com/memconnect/memconnect/oauth/flow].
package oauth
