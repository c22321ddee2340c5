package provider

import (
	"path/filepath"
	"sync"

	"github.com/memconnect/memconnect/oauth"
)

// Stores shares one [oauth.FileStore], and the one [oauth.Grants] that
// keeps its grants fresh, per config file, so that the in-process refresh
// lock, the token cache and the dead-grant state of a file are the same for
// every caller in the process. A [Connector] keeps one, built with its own
// logger, HTTP client and clock.
//
// Stores is safe for concurrent use by multiple goroutines.
type Stores struct {
	opts []oauth.Option

	mu sync.Mutex            // guards m
	m  map[string]*fileGrant // by cleaned absolute path
}

type fileGrant struct {
	file   *oauth.FileStore
	grants *oauth.Grants
}

// NewStores returns a Stores whose stores and engines are configured by
// opts.
func NewStores(opts ...oauth.Option) *Stores {
	return &Stores{opts: opts, m: make(map[string]*fileGrant)}
}

// File returns the store of the file at path, creating it with layout on
// first use. Paths that name the same file lexically (after
// [filepath.Abs]) share a store; the layout of the first use stays.
func (s *Stores) File(path string, layout oauth.FileLayout) *oauth.FileStore {
	return s.get(path, layout).file
}

// Grants returns the grant engine of the file at path, as [Stores.File].
func (s *Stores) Grants(path string, layout oauth.FileLayout) *oauth.Grants {
	return s.get(path, layout).grants
}

func (s *Stores) get(path string, layout oauth.FileLayout) *fileGrant {
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
	file := oauth.NewFileStore(key, layout, s.opts...)
	fg := &fileGrant{file: file, grants: oauth.NewGrants(file, s.opts...)}
	s.m[key] = fg
	return fg
}
