package oauth

import (
	"context"
	"time"
)

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

// LockedGrant is one grant held under its store's lock. It is used by one
// goroutine at a time, and not after Unlock.
//
// Each method takes the caller's context, within which a store bounds its
// own work. After a refresh token was spent, and for a sign-in's commit,
// [Grants] passes [context.WithoutCancel] of the caller's: the store is
// reached when the request is gone, so no rotation is lost to a closed
// tab. Prepare's record takes none; a store derives one from Prepare's.
type LockedGrant interface {
	// Credentials reads the grant's credentials anew. Unlike an unlocked
	// read it requires the whole source to be valid: a refresh token is
	// spent only when the rotation can be written back.
	Credentials(ctx context.Context) (Credentials, error)

	// Prepare proves, before prev's refresh token is spent, that its
	// rotation can be kept, and returns record: Grants calls it with the
	// token endpoint's successful answer (the raw body and its content
	// type) the moment it arrives, before anything else is done with it,
	// so that a holder killed before Commit leaves the rotation to the
	// next; record returning nil means the answer is kept durably until
	// Commit. When Prepare fails no token is spent; it fails with
	// [ErrRotationInFlight] when another holder's spend of prev's token
	// has not finished.
	Prepare(ctx context.Context, prev *Grant) (record func(body []byte, contentType string) error, err error)

	// Commit stores next as the grant, provided the store still holds
	// prev's refresh token (any grant, or none, when prev is nil); a nil
	// next removes the grant. Otherwise it returns [ErrStaleGrant] and
	// changes nothing. A committed grant is durable.
	Commit(ctx context.Context, prev, next *Grant) error

	// Reject records, bound to prev's refresh token, that the server
	// rejected the grant with the OAuth error code: every holder then
	// reads [Credentials.Rejected] until another grant replaces it.
	Reject(ctx context.Context, prev *Grant, code string) error

	// Unlock releases the lock. It takes no context: a lock is released
	// whatever became of the request that took it, within the store's own
	// bound.
	Unlock()
}

// Capabilities are the optional interfaces a store implements beyond
// [GrantStore], each field the store itself when it does and nil when it
// does not; [CapabilitiesOf] finds them, once per store. A lock's are
// [SpendAbandoner], [FinalCommitter] and [ConfigMerger]. Package storetest
// checks a store against all of it; an in-memory store in this package's
// tests implements every one.
type Capabilities struct {
	// Keys holds plain API keys in place of grants ([Grants.SetAPIKey]);
	// without it, connecting with a key is refused.
	Keys KeyStore
	// State shares what refreshes learn (health, step-up scopes, last use)
	// with every instance; without it, each process knows its own.
	State StateStore
	// Due hands the keeper's batches to one instance at a time; without
	// it, every instance's keeper goes through the grants it knows.
	Due DueClaimer
	// Uses lists the grants any instance used lately; without it, the
	// keeper knows the uses of its own process.
	Uses UseLister
	// List lists the keys with grants, and Pages pages through
	// connections in one statement a page; without either, connections
	// are listed by profile through the profiles' files.
	List  GrantLister
	Pages ConnectionPager
	// Watch tells of changes another instance commits; without it,
	// a connection's events come from this process and its files.
	Watch GrantWatcher
	// Clients keeps registered clients for every profile and instance;
	// without it, each profile's file keeps its own.
	Clients ClientStore
}

// CapabilitiesOf returns the capabilities s implements.
func CapabilitiesOf(s GrantStore) Capabilities {
	var c Capabilities
	c.Keys, _ = s.(KeyStore)
	c.State, _ = s.(StateStore)
	c.Due, _ = s.(DueClaimer)
	c.Uses, _ = s.(UseLister)
	c.List, _ = s.(GrantLister)
	c.Pages, _ = s.(ConnectionPager)
	c.Watch, _ = s.(GrantWatcher)
	c.Clients, _ = s.(ClientStore)
	return c
}

// lockCapabilities are the optional interfaces a lock implements.
type lockCapabilities struct {
	abandon SpendAbandoner
	final   FinalCommitter
	config  ConfigMerger
}

func lockCapabilitiesOf(lg LockedGrant) lockCapabilities {
	var c lockCapabilities
	c.abandon, _ = lg.(SpendAbandoner)
	c.final, _ = lg.(FinalCommitter)
	c.config, _ = lg.(ConfigMerger)
	return c
}

// SpendAbandoner is a [LockedGrant] whose Prepare records a spend in
// flight for other holders (as package pgstore's does). Abandon withdraws
// that record when the spend provably did not rotate the token: the server
// answered with an error, or the request was never sent. Otherwise other
// holders would wait for a spend that is over.
type SpendAbandoner interface {
	Abandon(ctx context.Context, prev *Grant) error
}

// FinalCommitter is a [LockedGrant] that can end the lock in the same step
// as a commit, such as package pgstore's (one round trip to the database
// instead of two): CommitAndUnlock is Commit followed by Unlock when it
// succeeds; Unlock after it does nothing. [Grants] uses it for the last
// write under a lock.
type FinalCommitter interface {
	CommitAndUnlock(ctx context.Context, prev, next *Grant) error
}

// ConfigMerger is a [LockedGrant] that keeps a config document beside the
// grant, as package filestore's config file does. CommitWithConfig is Commit
// that also deep-merges patch into that document in the same durable
// write: both land or neither does. [Grants.Install] uses it for
// [InstallConfig]; a store without it keeps the grant alone.
type ConfigMerger interface {
	CommitWithConfig(ctx context.Context, prev, next *Grant, patch map[string]any) error
}

// KeyStore is a [GrantStore] that can also hold a plain API key for a key,
// in place of an OAuth grant, such as package filestore's.
type KeyStore interface {
	GrantStore
	// SetAPIKey stores apiKey as key's credentials, removing key's grant,
	// under the store's lock, and returns the grant it removed (nil for
	// none), so that the caller can revoke it.
	SetAPIKey(ctx context.Context, key, apiKey string) (replaced *Grant, err error)
	// RemoveAPIKey removes key's own API key under the store's lock and
	// reports whether there was one. A grant, and an API key that key
	// only inherits (a file's root key), are left alone.
	RemoveAPIKey(ctx context.Context, key string) (removed bool, err error)
}

// StateStore is a [GrantStore] that several instances share and that keeps
// what each process learns of a connection for all of them, such as
// package pgstore's: [Grants] records there how refreshes went (a failure,
// and the recovery after one; a store's commit records a refresh), the
// scopes a resource asked for (step-up), and that a token was used (at
// most once a minute), and readers find it in [Credentials.Shared]. A
// store's record fails only the record: the refresh stands.
type StateStore interface {
	RecordHealth(ctx context.Context, key string, h Health) error
	RecordNeeds(ctx context.Context, key string, scopes []string) error
	RecordUse(ctx context.Context, key string, at time.Time) error
}

// DueClaimer is a [GrantStore] that several instances share and that can
// hand out the grants due for a keep-alive refresh, each to one instance
// at a time, such as package pgstore's: a keeper claims a batch, refreshes
// it, and the others skip what it holds.
type DueClaimer interface {
	// ClaimDue claims for owner, until hold has passed, up to limit keys
	// whose refreshable, unrejected grant was obtained before
	// obtainedBefore ([Grant.ObtainedOrEstimate]) or whose access token
	// expires before expiresBefore (zero: not for expiry), and that no
	// other owner holds a claim on; oldest first.
	ClaimDue(ctx context.Context, owner string, obtainedBefore, expiresBefore time.Time, hold time.Duration, limit int) ([]string, error)
}

// UseLister is a [GrantStore] that knows when every instance last used each
// grant ([StateStore]), such as package pgstore's.
type UseLister interface {
	// UsedSince returns the keys whose tokens were asked for at or after
	// since, by any instance.
	UsedSince(ctx context.Context, since time.Time) ([]string, error)
}

// GrantLister is a [GrantStore] that can list the keys it holds grants
// for, such as package pgstore's.
type GrantLister interface {
	// GrantKeys returns the keys with a grant, sorted, after the key after
	// (all when ""), at most limit.
	GrantKeys(ctx context.Context, after string, limit int) ([]string, error)
}

// ConnectionPager is a [GrantStore] that pages through what it holds in a
// listing's order, such as package pgstore's: one statement a page however
// many it holds. Keys are "<provider>/<profile>".
type ConnectionPager interface {
	// ConnectionPage calls each, in order of profile then provider, with
	// the key and credentials of up to limit keys that hold a grant or an
	// API key and come after after ("profile/provider"; "" for the
	// first), only of profile and of provider when they are not "".
	ConnectionPage(ctx context.Context, profile, provider, after string, limit int, each func(key string, c Credentials)) error
}

// GrantWatcher is a [GrantStore] that tells of the changes any instance
// commits to a grant, such as package pgstore's.
type GrantWatcher interface {
	// Watch returns a channel that receives a value when key's grant
	// changed; stop ends the watch.
	Watch(ctx context.Context, key string) (changed <-chan struct{}, stop func(), err error)
}

// ClientStore is a [GrantStore] that keeps the clients a provider's
// registrar obtains, once for the whole deployment (package pgstore's):
// registrations (RFC 7591) by issuer and redirect URIs, as the registrar's
// JSON, and the issuers that refused a client metadata document.
type ClientStore interface {
	// Client returns the registration for issuer and redirectURIs (space
	// separated, as asked for); nil for none.
	Client(ctx context.Context, issuer, redirectURIs string) ([]byte, error)
	// SaveClient stores reg as the client for issuer and redirectURIs.
	SaveClient(ctx context.Context, issuer, redirectURIs string, reg []byte) error
	// ForgetClient forgets every registration of issuer whose client is
	// clientID (the server rejected it).
	ForgetClient(ctx context.Context, issuer, clientID string) error
	// DocumentRefused reports whether issuer refused a client metadata
	// document, and RefuseDocument records that it did.
	DocumentRefused(ctx context.Context, issuer string) (bool, error)
	RefuseDocument(ctx context.Context, issuer string) error
}
