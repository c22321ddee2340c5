package provider

import (
	"path/filepath"
	"sync"

	"github.com/memconnect/memconnect/oauth"
)

// Stores shares one [oauth.Store] per configuration file, so that the
// in-process refresh lock, the token cache and the dead-grant state of a
// file are the same for every caller in the process. A [Provider] keeps one
// to implement its Store method.
//
// The zero value is ready to use. Stores is safe for concurrent use by
// multiple goroutines.
type Stores struct {
	// Options are passed to [oauth.NewStore] for every new store. Set them
	// before the first call to Get.
	Options []oauth.StoreOption

	mu sync.Mutex              // guards m
	m  map[string]*oauth.Store // by cleaned absolute path
}

// Get returns the store for the file at path, creating it on first use.
// Paths that name the same file lexically (after [filepath.Abs]) share a
// store.
func (s *Stores) Get(path string) *oauth.Store {
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[key]; ok {
		return st
	}
	if s.m == nil {
		s.m = make(map[string]*oauth.Store)
	}
	st := oauth.NewStore(key, s.Options...)
	s.m[key] = st
	return st
}
