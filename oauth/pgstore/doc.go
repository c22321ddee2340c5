// Package pgstore keeps grants and pending sign-in flows in PostgreSQL, so
// that any number of instances behind a load balancer share them. [Store]
// implements the grant-storage seam of package
// [github.com/memconnect/memconnect/oauth], whose refresh protocol runs over
// it unchanged, and [Store.Flows] the pending-flow seam of package
// [github.com/memconnect/memconnect/oauth/flow].
//
// # Fenced refresh
//
// A refresh takes a lease on the grant's row: an owner, an expiry, and a
// fence number that grows with every lease. Under the lease the holder
// re-reads the row and adopts a grant another instance already rotated.
// Before it spends the refresh token it renews the lease for longer than a
// whole refresh and records, under the fence, that the token is being spent;
// it spends nothing if the lease is no longer its own, or if the spill
// directory ([Config.SpillDir]) does not take a file. It records the
// server's answer in the row the moment it arrives, and commits with a
// compare-and-swap on the old refresh token. So:
//
//   - one refresh-token spend per rotation, across any number of instances;
//   - a holder that finds another holder's spend of the same token
//     unfinished never spends it again: it waits for the outcome
//     ([Config.SpendWait]), commits an answer that holder recorded, and
//     otherwise keeps the current token while it is valid, then reports
//     that the refresh has not finished;
//   - a holder paused past its lease while its request was at the server
//     (a stop signal, a long GC or VM pause) still commits its answer when
//     it wakes, as long as the row holds the token it spent: the swap is on
//     the token, not on the lease that passed;
//   - an answer the database cannot take (it went away while the answer
//     was in flight) is kept in the spill directory, sealed with the
//     store's key, and committed by the next holder on this machine once
//     the database is back: this process on a later call, or the next one;
//   - no lock is held across the token endpoint's call without a lease; a
//     holder that crashed blocks the others only until its lease ends, and
//     the next holder commits an answer it had recorded.
//
// What no store can protect is a holder killed while its request is at the
// server: the server may rotate, and its answer is gone. Its recorded spend
// blocks the grant's refresh (holders keep the current token while it is
// valid) until [Config.AbandonAfter] (10 minutes) has passed; the grant
// then needs a new sign-in, with a status that says why
// ([oauth.CodeAbandoned]). The token is never spent again: that could be a
// replay, which revokes the whole grant at the server.
//
// A rejection (invalid_grant) is recorded on the row, bound to the refresh
// token, so that every instance reports that a sign-in is needed.
//
// # Secrets at rest
//
// Tokens, recorded answers and PKCE verifiers are sealed with AES-256-GCM
// under a [Key] the host supplies, each value naming its key's ID and bound
// to its table, row and column. Without a key [New] refuses to start:
// there is no plaintext fallback. State parameters and refresh tokens are
// compared by their SHA-256 digests; nothing secret is ever in SQL text,
// errors or logs.
//
// To replace a key, give the new one first in [Config.Keys] and the old one
// after it: the store seals with the new key and opens with either. Then
// [Store.Rekey] seals every old value again with the new key, and the old
// one can go.
//
// # Changes
//
// Every committed change to a grant is announced with NOTIFY on the channel
// "memconnect_grants", the payload the grant's key; [Store.Watch] listens,
// so that an event stream held on one instance shows what another did.
//
// # Schema
//
// [Migrate] creates and upgrades the schema, explicitly: call it from a
// deployment step (examples/server -store ... -migrate), never as a side
// effect of a request. [New] refuses a database whose schema is not
// [SchemaVersion].
package pgstore
