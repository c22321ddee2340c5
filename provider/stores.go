package provider

import (
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
	clients oauth.ClientStore // nil: each profile's grant file keeps its clients

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

// Clients returns the store that keeps the clients every profile shares
// ([oauth.ClientStore]), nil when each profile's grant file keeps its own.
func (s *Stores) Clients() oauth.ClientStore {
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
