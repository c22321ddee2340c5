package oauth

import "context"

// GrantStore keeps grants by key and serializes their rotation across every
// holder that shares it: other processes, other instances, the Python agent.
// [Grants] runs the refresh protocol over it; package filestore's Store keeps
// JSON config files, package pgstore's PostgreSQL.
//
// Implementations must be safe for concurrent use.
type GrantStore interface {
	// Credentials reads key's credentials without taking the lock: a
	// snapshot, which may be answered from memory while the source is
	// unchanged. A key with nothing stored is the zero Credentials and no
	// error.
	Credentials(ctx context.Context, key string) (Credentials, error)

	// Lock takes the exclusive lock of key's grant, shared with every
	// other holder, waiting at most until ctx is done. Until Unlock, no
	// other holder spends key's refresh token.
	Lock(ctx context.Context, key string) (LockedGrant, error)

	// Describe names key's grant for log lines and errors, such as
	// `host "hermes" in /home/alice/.hermes/honcho.json`. It holds no
	// secret.
	Describe(key string) string
}

// SpendAbandoner is a [LockedGrant] whose Prepare records a spend in
// flight for other holders (as package pgstore's does). Abandon withdraws
// that record when the spend provably did not rotate the token: the server
// answered with an error, or the request was never sent. Otherwise other
// holders would wait for a spend that is over.
type SpendAbandoner interface {
	Abandon(prev *Grant) error
}

// FinalCommitter is a [LockedGrant] that can end the lock in the same step
// as a commit, such as package pgstore's (one round trip to the database
// instead of two): CommitAndUnlock is Commit followed by Unlock when it
// succeeds; Unlock after it does nothing. [Grants] uses it for the last
// write under a lock.
type FinalCommitter interface {
	CommitAndUnlock(prev, next *Grant) error
}

// ConfigMerger is a [LockedGrant] that keeps a config document beside the
// grant, as package filestore's config file does. CommitWithConfig is Commit
// that also deep-merges patch into that document in the same durable
// write: both land or neither does. [Grants.Install] uses it for
// [InstallConfig]; a store without it keeps the grant alone.
type ConfigMerger interface {
	CommitWithConfig(prev, next *Grant, patch map[string]any) error
}

// LockedGrant is one grant held under its store's lock. It is used by one
// goroutine at a time, and not after Unlock.
type LockedGrant interface {
	// Credentials reads the grant's credentials anew. Unlike an unlocked
	// read it requires the whole source to be valid: a refresh token is
	// spent only when the rotation can be written back.
	Credentials() (Credentials, error)

	// Prepare proves, before prev's refresh token is spent, that its
	// rotation can be kept, and returns record: Grants calls it with the
	// token endpoint's successful answer (the raw body and its content
	// type) the moment it arrives, before anything else is done with it,
	// so that a holder killed before Commit leaves the rotation to the
	// next; record returning nil means the answer is kept durably until
	// Commit. When Prepare fails no token is spent; it fails with
	// [ErrRotationInFlight] when another holder's spend of prev's token
	// has not finished.
	Prepare(prev *Grant) (record func(body []byte, contentType string) error, err error)

	// Commit stores next as the grant, provided the store still holds
	// prev's refresh token (any grant, or none, when prev is nil); a nil
	// next removes the grant. Otherwise it returns [ErrStaleGrant] and
	// changes nothing. A committed grant is durable.
	Commit(prev, next *Grant) error

	// Reject records, bound to prev's refresh token, that the server
	// rejected the grant with the OAuth error code: every holder then
	// reads [Credentials.Rejected] until another grant replaces it.
	Reject(prev *Grant, code string) error

	// Unlock releases the lock.
	Unlock()
}
