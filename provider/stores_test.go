package provider_test

import (
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
)

// Paths that name one file share one store and one grant engine, so the
// in-process refresh lock and the token cache are the same for every caller.
func TestStoresSharePerFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := provider.NewStores(zerolog.Nop())
	var layout filestore.Layout
	a := s.File(filepath.Join(dir, "honcho.json"), layout)
	if b := s.File(filepath.Join(dir, ".", "x", "..", "honcho.json"), layout); a != b {
		t.Error("File returned two stores for one file")
	}
	if c := s.File(filepath.Join(dir, "other.json"), layout); c == a {
		t.Error("File returned one store for two files")
	}
	g := s.Grants(filepath.Join(dir, "honcho.json"), layout)
	if g != s.Grants(filepath.Join(dir, "x", "..", "honcho.json"), layout) {
		t.Error("Grants returned two engines for one file")
	}
}
