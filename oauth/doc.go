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
//     (or half its lifetime, for a token that lives less than twice that)
//     it is returned with no lock, no store access and no allocation.
//  2. Otherwise the source takes the in-process lock of the key and the
//     store's lock ([GrantStore.Lock]), both with a deadline, re-reads the
//     grant and adopts a token another holder already rotated. When the
//     locks cannot be had in time, or the store cannot be read (a database
//     restarting), it returns the current token while that is still valid.
//  3. Only if the stored token still needs a refresh, and the store proved
//     it can keep the rotation ([LockedGrant.Prepare]), does it spend the
//     refresh token: 15 s an attempt, one retry after 2 s when the request
//     provably did not reach the server or the server answered 5xx or 429,
//     20 s in all. A response lost after the request was sent is not
//     retried: the server may have rotated, and a retry would replay the
//     token. The raw answer is recorded the moment it arrives, before
//     x/oauth2 reads it, and no 2xx answer is thrown away (an expires_in of
//     3600.5 or "3600" is read as a number). The new grant is committed
//     ([LockedGrant.Commit], a compare-and-swap on the old refresh token)
//     before the locks are released. A rotation that cannot be committed is
//     kept in memory and committed on the next call ([Source.Sync] for a
//     process about to exit), never replayed.
//  4. On invalid_grant, invalid_client or unauthorized_client it re-reads
//     the grant and adopts a refresh token that changed meanwhile (a lost
//     race); otherwise the grant is dead, and the verdict is recorded
//     beside it ([LockedGrant.Reject]): no holder makes a network call
//     until the store holds another grant, and calls fail with
//     [ErrReauthRequired].
//  5. On a transient failure it logs a warning (no token values), returns
//     the current token (fail open) and makes no new attempt for 30 s.
//  6. A caller whose request was answered 401 calls [Source.ForceRefresh]
//     with the token it sent; [Transport] does so and retries once.
//
// Token values never appear in logs, errors or panics.
//
// A store can refuse a spend while another holder's spend of the same
// token has not finished ([ErrRotationInFlight]): nothing is spent, the
// current token is kept while it is valid, and an error says so after.
// A rotation that cannot be committed is never dropped: it is kept in
// memory and, where the store's record of the answer succeeded, outlives
// the process; [Source.Sync] says which.
//
// What no client can close is a process killed while its refresh request is
// in flight: the server may rotate and the answer is gone. A server-side
// grace period for the superseded token (Ory Hydra's rotation_grace_period)
// is the only remedy.
//
// # Servers, flows and stores
//
// Package [github.com/memconnect/memconnect/oauth/authserver] talks to the
// authorization server (discovery, registration, revocation) and the
// protected resource; package [github.com/memconnect/memconnect/oauth/flow]
// runs the authorization flows that obtain a grant. A grant with a
// [Grant.Resource] sends it as the resource indicator (RFC 8707) with every
// refresh.
//
// The stores are packages of their own:
// [github.com/memconnect/memconnect/oauth/filestore] keeps grants in a JSON
// config file such as honcho.json, shared with the Python agent, and
// [github.com/memconnect/memconnect/oauth/pgstore] in PostgreSQL, shared by
// instances. What a store must do is [GrantStore] and [LockedGrant]; what
// it may do besides is [Capabilities] (a store that also holds plain API
// keys is a [KeyStore], and [Grants.SetAPIKey] stores one in place of a
// grant). Package [github.com/memconnect/memconnect/oauth/storetest]
// checks a store against all of it.
package oauth
