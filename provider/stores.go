package provider

import (
	"context"
	"path/filepath"
	"sync"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
)

// Stores shares one [filestore.Store], and the one [oauth.Grants] that
// keeps its grants fresh, per config file, so that the in-process refresh
// lock, the token cache and the dead-grant state of a file are the same for
// every caller in the process. A [Connector] keeps one, built with its own
// logger, HTTP client and clock.
//
// Stores is safe for concurrent use by multiple goroutines.
type Stores struct {
	logger  zerolog.Logger
	opts    []oauth.Option
	clients ClientStore // nil: each profile's grant file keeps its clients

	mu sync.Mutex            // guards m
	m  map[string]*fileGrant // by cleaned absolute path
}

type fileGrant struct {
	file   *filestore.Store
	grants *oauth.Grants
}

// NewStores returns a Stores whose file stores and engines log to logger,
// the engines configured by opts too.
func NewStores(logger zerolog.Logger, opts ...oauth.Option) *Stores {
	return &Stores{logger: logger, opts: append([]oauth.Option{oauth.WithLogger(logger)}, opts...), m: make(map[string]*fileGrant)}
}

// ClientStore keeps the clients a [Registrar] obtains from an
// authorization server, once for the whole deployment: registrations (RFC
// 7591) per issuer and redirect URIs, and the issuers that refused a
// client metadata document. A GrantStore that every instance shares
// implements it (package pgstore's), so that a provider registers one
// client for every profile and instance instead of one a profile.
// Registrations are JSON, the Registrar's own.
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

// Clients returns the store that keeps the clients every profile shares
// ([ClientStore]), nil when each profile's grant file keeps its own.
func (s *Stores) Clients() ClientStore {
	if s == nil {
		return nil
	}
	return s.clients
}

// File returns the store of the file at path, creating it with layout on
// first use. Paths that name the same file lexically (after
// [filepath.Abs]) share a store; the layout of the first use stays.
func (s *Stores) File(path string, layout filestore.Layout) *filestore.Store {
	return s.get(path, layout).file
}

// Grants returns the grant engine of the file at path, as [Stores.File].
func (s *Stores) Grants(path string, layout filestore.Layout) *oauth.Grants {
	return s.get(path, layout).grants
}

func (s *Stores) get(path string, layout filestore.Layout) *fileGrant {
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fg, ok := s.m[key]; ok {
		return fg
	}
	if s.m == nil {
		s.m = make(map[string]*fileGrant)
	}
	file := filestore.New(key, layout, filestore.WithLogger(s.logger))
	fg := &fileGrant{file: file, grants: oauth.NewGrants(file, s.opts...)}
	s.m[key] = fg
	return fg
}
