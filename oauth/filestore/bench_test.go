package filestore

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/internal/tuning"

	"golang.org/x/oauth2"
)

// benchSource returns a token source over a grant valid for an hour. A
// settled file was last written an hour ago; an unsettled one just now, so
// every cache miss reads and scans it. The function drops the cached
// access token.
func benchSource(b *testing.B, settled bool) (*oauth.Source, func()) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "honcho.json")
	if err := writeFileAtomic(path, []byte(configWithGrant("https://t.example/token", "hch-at-bench", "hch-rt-bench", time.Now().Add(time.Hour)))); err != nil {
		b.Fatal(err)
	}
	if settled {
		past := time.Now().Add(-time.Hour)
		if err := os.Chtimes(path, past, past); err != nil {
			b.Fatal(err)
		}
	}
	var uncache func(key string)
	ts := newTestStore(path, tuning.Uncacher(&uncache)).TokenSource("hermes")
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	return ts, func() { uncache("hermes") }
}

// staticSource is the base of the ReuseTokenSource baseline; it is never
// called while the cached token is valid.
type staticSource struct{ tok *oauth2.Token }

func (s staticSource) Token() (*oauth2.Token, error) { return s.tok, nil }

// BenchmarkToken compares Source with oauth2.ReuseTokenSource's
// cached Token, the baseline. Run:
//
//	go test -run '^$' -bench Token -benchmem ./oauth/filestore
func BenchmarkToken(b *testing.B) {
	b.Run("hot", func(b *testing.B) {
		ts, _ := benchSource(b, true)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ts.Token(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hot-parallel", func(b *testing.B) {
		ts, _ := benchSource(b, true)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ts.Token(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("cold", func(b *testing.B) {
		ts, uncache := benchSource(b, false)
		b.ReportAllocs()
		for b.Loop() {
			uncache() // a cache miss: read, parse and check the file
			if _, err := ts.Token(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold-unchanged", func(b *testing.B) {
		ts, uncache := benchSource(b, true)
		b.ReportAllocs()
		for b.Loop() {
			uncache() // a cache miss on a settled, unchanged file: stat only
			if _, err := ts.Token(); err != nil {
				b.Fatal(err)
			}
		}
	})
	tok := &oauth2.Token{AccessToken: "hch-at-bench", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	b.Run("reuse-baseline", func(b *testing.B) {
		rs := oauth2.ReuseTokenSource(tok, staticSource{tok})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rs.Token(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reuse-baseline-parallel", func(b *testing.B) {
		rs := oauth2.ReuseTokenSource(tok, staticSource{tok})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := rs.Token(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestHotPathAllocations keeps the hot path allocation-free; benchmarks only
// report, this fails.
func TestHotPathAllocations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant("https://t.example/token", "hch-at-a", "hch-rt-a", time.Now().Add(time.Hour)))
	ts := newTestStore(path).TokenSource("hermes")
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { ts.Token() }); n != 0 {
		t.Fatalf("hot path allocates %v times per call, want 0", n)
	}
}
