package oauth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth"
)

// TestRotationStoredWhenCallerGone: the caller's request ends while its
// refresh is at the server; the server rotates. The rotation still
// reaches a store that honours its context (as a database driver does),
// since every call after the spend is given one without the caller's
// cancellation: the store holds the new grant, and the next token comes
// from it without a second spend.
func TestRotationStoredWhenCallerGone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var refreshes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refreshes.Add(1)
		cancel() // the caller goes away while the server rotates
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-new","refresh_token":"rt-new","expires_in":3600,"token_type":"Bearer"}`)
	}))
	defer srv.Close()

	mem := newMemStore()
	gs := oauth.NewGrants(mem, oauth.WithHTTPClient(srv.Client()))
	old := &oauth2.Token{AccessToken: "at-old", RefreshToken: "rt-old", Expiry: time.Now().Add(10 * time.Second)}
	if _, err := gs.Install(t.Context(), "honcho/default", old, oauth.Grant{ClientID: "c", TokenEndpoint: srv.URL, Obtained: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	changed, stop, _ := mem.Watch(t.Context(), "honcho/default")
	defer stop()

	// The answer may beat the cancellation to the caller: either way the
	// store must end up with the rotation.
	if _, err := gs.TokenSource("honcho/default").TokenContext(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("TokenContext = %v; want the token or the caller's cancellation", err)
	}
	for {
		c, err := mem.Credentials(t.Context(), "honcho/default")
		if err != nil {
			t.Fatal(err)
		}
		if c.Grant != nil && c.Grant.RefreshToken == "rt-new" {
			break
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("the rotation never reached the store; it holds %+v", c.Grant)
		}
	}
	tok, err := gs.TokenSource("honcho/default").Token()
	if err != nil || tok.AccessToken != "at-new" || refreshes.Load() != 1 {
		t.Fatalf("next Token = %v, %v after %d refreshes; want at-new after 1", tok, err, refreshes.Load())
	}
}

// TestEngineUsesCapabilities: the engine uses what a store can do beyond
// keeping grants, found once (oauth.CapabilitiesOf): a sign-in's config
// lands with its grant (ConfigMerger), a refresh's commit ends the lock
// (FinalCommitter), a token's use is shared (StateStore), and an API key
// replaces the grant (KeyStore).
func TestEngineUsesCapabilities(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at-new","refresh_token":"rt-new","expires_in":3600,"token_type":"Bearer"}`)
	}))
	defer srv.Close()
	mem := newMemStore()
	mem.used = make(chan struct{}, 10)
	gs := oauth.NewGrants(mem, oauth.WithHTTPClient(srv.Client()))
	const key = "honcho/default"

	tok := (&oauth2.Token{AccessToken: "at-old", RefreshToken: "rt-old", Expiry: time.Now().Add(time.Hour)}).
		WithExtra(map[string]any{"config": map[string]any{"peerName": "ada"}})
	if _, err := gs.Install(t.Context(), key, tok, oauth.Grant{ClientID: "c", TokenEndpoint: srv.URL}, oauth.InstallConfig(map[string]any{"peerName": "ada"})); err != nil {
		t.Fatal(err)
	}
	mem.mu.Lock()
	peer := mem.rows[key].config["peerName"]
	mem.mu.Unlock()
	if peer != "ada" {
		t.Errorf("the sign-in's config was not merged with its grant: peerName %v", peer)
	}

	ts := gs.TokenSource(key)
	if got, err := ts.ForceRefresh(t.Context(), "at-old"); err != nil || got.AccessToken != "at-new" {
		t.Fatalf("ForceRefresh = %v, %v", got, err)
	}
	mem.mu.Lock()
	final := mem.finalCommits
	mem.mu.Unlock()
	if final != 1 { // the refresh's; the sign-in's merged its config instead
		t.Errorf("CommitAndUnlock was used %d times; want once, for the refresh", final)
	}

	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mem.used:
	case <-time.After(10 * time.Second):
		t.Error("the token's use was not recorded in the shared state")
	}

	replaced, err := gs.SetAPIKey(t.Context(), key, "key-123")
	if err != nil || replaced == nil || replaced.RefreshToken != "rt-new" {
		t.Fatalf("SetAPIKey = %+v, %v; want the rotated grant replaced", replaced, err)
	}
	if c, _ := mem.Credentials(t.Context(), key); c.APIKey != "key-123" || c.Grant != nil {
		t.Errorf("after SetAPIKey: %+v", c)
	}
}

// TestRotatedHere: a Grants knows the rotations it made, from the moment
// the answer arrives, and no others: not a sign-in's grant, nor a rotation
// another Grants over the same store made.
func TestRotatedHere(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%[1]d","refresh_token":"rt-%[1]d","expires_in":3600,"token_type":"Bearer"}`, n.Add(1))
	}))
	defer srv.Close()
	mem := newMemStore()
	here := oauth.NewGrants(mem, oauth.WithHTTPClient(srv.Client()))
	other := oauth.NewGrants(mem, oauth.WithHTTPClient(srv.Client()))
	const key = "honcho/default"
	sum := func(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }
	tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
	if _, err := here.Install(t.Context(), key, tok, oauth.Grant{ClientID: "c", TokenEndpoint: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if here.RotatedHere(key, sum("rt-0")) || here.RotatedHere(key, [sha256.Size]byte{}) {
		t.Error("a sign-in's grant, or no grant, counted as a rotation made here")
	}
	for i, tt := range []struct{ maker, other *oauth.Grants }{{here, other}, {other, here}} {
		if _, err := tt.maker.TokenSource(key).ForceRefresh(t.Context(), fmt.Sprintf("at-%d", i)); err != nil {
			t.Fatal(err)
		}
		rt := sum(fmt.Sprintf("rt-%d", i+1))
		if byMaker, byOther := tt.maker.RotatedHere(key, rt), tt.other.RotatedHere(key, rt); !byMaker || byOther {
			t.Errorf("rotation %d: rotated here says %v for its maker, %v for the other; want true, false", i+1, byMaker, byOther)
		}
	}
}

// TestRejectedHere: a Grants knows the grant a refresh of its own found
// rejected, and another Grants over the same store does not.
func TestRejectedHere(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
	}))
	defer srv.Close()
	mem := newMemStore()
	here := oauth.NewGrants(mem, oauth.WithHTTPClient(srv.Client()))
	other := oauth.NewGrants(mem, oauth.WithHTTPClient(srv.Client()))
	const key = "honcho/default"
	tok := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
	if _, err := here.Install(t.Context(), key, tok, oauth.Grant{ClientID: "c", TokenEndpoint: srv.URL}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("rt-0"))
	if here.RejectedHere(key, sum) {
		t.Error("a grant no refresh tried counted as rejected here")
	}
	if _, err := here.TokenSource(key).ForceRefresh(t.Context(), "at-0"); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("ForceRefresh = %v, want ErrReauthRequired", err)
	}
	if !here.RejectedHere(key, sum) || other.RejectedHere(key, sum) || here.RejectedHere(key, sha256.Sum256([]byte("rt-1"))) {
		t.Errorf("rejected here: %v for its maker, %v for the other, %v for another grant; want true, false, false",
			here.RejectedHere(key, sum), other.RejectedHere(key, sum), here.RejectedHere(key, sha256.Sum256([]byte("rt-1"))))
	}
}
