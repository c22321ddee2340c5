// Package storetest checks an [oauth.GrantStore] against the contract
// package oauth documents: what every store does ([oauth.GrantStore],
// [oauth.LockedGrant]) and what each optional capability promises
// ([oauth.Capabilities], and the lock's [oauth.SpendAbandoner],
// [oauth.FinalCommitter] and [oauth.ConfigMerger]). A capability the store
// does not implement is skipped.
//
// The file store, the PostgreSQL store and the in-memory store of package
// oauth's tests all run this suite, so a new store is checked by the same
// tests as they are.
package storetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/memconnect/memconnect/oauth"
)

// The keys the suite uses: connections ("<provider>/<profile>"), as every
// store keys them in this module.
const (
	keyA = "honcho/default"
	keyB = "mcp/default"
	keyC = "honcho/work"
)

// Run runs the contract tests, each on a fresh, empty store from open. The
// store's access tokens need no prefix: open should lay out a store that
// expects none.
func Run(t *testing.T, open func(t *testing.T) oauth.GrantStore) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, s oauth.GrantStore)
	}{
		{"Empty", testEmpty},
		{"CommitAndRead", testCommitAndRead},
		{"CompareAndSwap", testCompareAndSwap},
		{"LockExcludes", testLockExcludes},
		{"Reject", testReject},
		{"RecordedAnswerKept", testRecordedAnswerKept},
		{"PrepareAfterCancel", testPrepareAfterCancel},
		{"FinalCommitter", testFinalCommitter},
		{"ConfigMerger", testConfigMerger},
		{"SpendAbandoner", testSpendAbandoner},
		{"KeyStore", testKeyStore},
		{"StateStore", testStateStore},
		{"DueClaimer", testDueClaimer},
		{"GrantLister", testGrantLister},
		{"ConnectionPager", testConnectionPager},
		{"GrantWatcher", testGrantWatcher},
		{"ClientStore", testClientStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// grant is the n-th grant of a key: its tokens numbered n.
func grant(n int) *oauth.Grant {
	return &oauth.Grant{
		AccessToken:   "at-" + strconv.Itoa(n),
		RefreshToken:  "rt-" + strconv.Itoa(n),
		Expiry:        time.Unix(1767229200+int64(n)*3600, 0),
		ClientID:      "client-1",
		TokenEndpoint: "https://as.example/token",
		Scope:         "write",
		TokenType:     "Bearer",
		Obtained:      time.Unix(1767225600+int64(n)*3600, 0),
	}
}

// locked runs fn under key's lock, failing the test when the lock cannot
// be had in 10 s.
func locked(t *testing.T, s oauth.GrantStore, key string, fn func(lg oauth.LockedGrant)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	lg, err := s.Lock(ctx, key)
	if err != nil {
		t.Fatalf("Lock(%s): %v", key, err)
	}
	defer lg.Unlock()
	fn(lg)
}

// put commits g as key's grant, whatever the key held.
func put(t *testing.T, s oauth.GrantStore, key string, g *oauth.Grant) {
	t.Helper()
	locked(t, s, key, func(lg oauth.LockedGrant) {
		c, err := lg.Credentials(t.Context())
		if err != nil {
			t.Fatalf("Credentials(%s) under the lock: %v", key, err)
		}
		if err := lg.Commit(t.Context(), c.Grant, g); err != nil {
			t.Fatalf("Commit(%s): %v", key, err)
		}
	})
}

// putAll commits a grant for each of the suite's keys, out of order.
func putAll(t *testing.T, s oauth.GrantStore) {
	t.Helper()
	for i, k := range []string{keyC, keyA, keyB} {
		put(t, s, k, grant(i+1))
	}
}

// read is the unlocked read of key.
func read(t *testing.T, s oauth.GrantStore, key string) oauth.Credentials {
	t.Helper()
	c, err := s.Credentials(t.Context(), key)
	if err != nil {
		t.Fatalf("Credentials(%s): %v", key, err)
	}
	return c
}

// same reports whether got is want as a store keeps it.
func same(got, want *oauth.Grant) bool {
	if got == nil || want == nil {
		return got == want
	}
	return got.AccessToken == want.AccessToken && got.RefreshToken == want.RefreshToken &&
		got.Expiry.Equal(want.Expiry) && got.ClientID == want.ClientID &&
		got.TokenEndpoint == want.TokenEndpoint && got.Scope == want.Scope &&
		got.TokenType == want.TokenType && got.Resource == want.Resource
}

func testEmpty(t *testing.T, s oauth.GrantStore) {
	if c := read(t, s, keyA); c.Grant != nil || c.APIKey != "" || c.Rejected != "" {
		t.Fatalf("an empty store's Credentials = %+v; want none", c)
	}
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		if c, err := lg.Credentials(t.Context()); err != nil || c.Grant != nil {
			t.Fatalf("locked Credentials of an empty store = %+v, %v; want none", c, err)
		}
	})
	if s.Describe(keyA) == "" {
		t.Errorf("Describe(%s) is empty", keyA)
	}
}

func testCommitAndRead(t *testing.T, s oauth.GrantStore) {
	g := grant(1)
	g.Resource = "https://memory.example/mcp"
	put(t, s, keyA, g)
	if c := read(t, s, keyA); !same(c.Grant, g) {
		t.Fatalf("read back %+v; want %+v", c.Grant, g)
	}
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		if c, err := lg.Credentials(t.Context()); err != nil || !same(c.Grant, g) {
			t.Fatalf("locked read back %+v, %v; want %+v", c.Grant, err, g)
		}
	})
	if c := read(t, s, keyB); c.Grant != nil {
		t.Errorf("another key reads %+v; want none", c.Grant)
	}
}

func testCompareAndSwap(t *testing.T, s oauth.GrantStore) {
	g1, g2, g3 := grant(1), grant(2), grant(3)
	put(t, s, keyA, g1)
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		if err := lg.Commit(t.Context(), g3, g2); !errors.Is(err, oauth.ErrStaleGrant) {
			t.Fatalf("Commit from a grant the store does not hold: %v; want ErrStaleGrant", err)
		}
		if c, _ := lg.Credentials(t.Context()); !same(c.Grant, g1) {
			t.Fatalf("a refused Commit changed the grant to %+v", c.Grant)
		}
		if err := lg.Commit(t.Context(), g1, g2); err != nil {
			t.Fatalf("Commit from the grant held: %v", err)
		}
	})
	if c := read(t, s, keyA); !same(c.Grant, g2) {
		t.Fatalf("after the swap: %+v; want %+v", c.Grant, g2)
	}
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		if err := lg.Commit(t.Context(), g2, nil); err != nil {
			t.Fatalf("Commit of nil (remove): %v", err)
		}
	})
	if c := read(t, s, keyA); c.Grant != nil {
		t.Fatalf("a removed grant reads %+v", c.Grant)
	}
}

func testLockExcludes(t *testing.T, s oauth.GrantStore) {
	lg, err := s.Lock(t.Context(), keyA)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if second, err := s.Lock(ctx, keyA); err == nil {
		second.Unlock()
		lg.Unlock()
		t.Fatal("a second Lock of a held key succeeded")
	}
	lg.Unlock()
	locked(t, s, keyA, func(oauth.LockedGrant) {})
}

func testReject(t *testing.T, s oauth.GrantStore) {
	g1, g2 := grant(1), grant(2)
	put(t, s, keyA, g1)
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		if err := lg.Reject(t.Context(), g1, "invalid_grant"); err != nil {
			t.Fatalf("Reject: %v", err)
		}
	})
	if c := read(t, s, keyA); c.Rejected != "invalid_grant" || !same(c.Grant, g1) {
		t.Fatalf("after Reject: %+v; want the grant, rejected with invalid_grant", c)
	}
	put(t, s, keyA, g2)
	if c := read(t, s, keyA); c.Rejected != "" {
		t.Fatalf("a new grant still reads rejected (%q)", c.Rejected)
	}
}

// A holder that recorded the server's answer and went away without a
// commit leaves the rotation to the next holder: never the spent grant.
func testRecordedAnswerKept(t *testing.T, s oauth.GrantStore) {
	g1 := grant(1)
	put(t, s, keyA, g1)
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		record, err := lg.Prepare(t.Context(), g1)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		body := []byte(`{"access_token":"at-answer","refresh_token":"rt-answer","expires_in":3600,"token_type":"Bearer"}`)
		if err := record(body, "application/json"); err != nil {
			t.Fatalf("record: %v", err)
		}
	})
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		c, err := lg.Credentials(t.Context())
		if err != nil || c.Grant == nil || c.Grant.RefreshToken != "rt-answer" || c.Grant.AccessToken != "at-answer" {
			t.Fatalf("the next holder reads %+v, %v; want the recorded rotation", c.Grant, err)
		}
		if c.Grant.ClientID != g1.ClientID || c.Grant.TokenEndpoint != g1.TokenEndpoint {
			t.Errorf("the recorded rotation lost the client or endpoint: %+v", c.Grant)
		}
	})
}

// A Prepare with a done context fails, so that nothing is spent.
func testPrepareAfterCancel(t *testing.T, s oauth.GrantStore) {
	g1 := grant(1)
	put(t, s, keyA, g1)
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := lg.Prepare(ctx, g1); err == nil {
			t.Fatal("Prepare with a cancelled context succeeded")
		}
		// A commit given a context without the cancellation still lands.
		if err := lg.Commit(context.WithoutCancel(ctx), g1, grant(2)); err != nil {
			t.Fatalf("Commit with the cancellation removed: %v", err)
		}
	})
	if c := read(t, s, keyA); !same(c.Grant, grant(2)) {
		t.Fatalf("after the commit: %+v", c.Grant)
	}
}

func testFinalCommitter(t *testing.T, s oauth.GrantStore) {
	g1 := grant(1)
	lg, err := s.Lock(t.Context(), keyA)
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := lg.(oauth.FinalCommitter)
	if !ok {
		lg.Unlock()
		t.Skip("the store's lock is not a FinalCommitter")
	}
	if err := fc.CommitAndUnlock(t.Context(), nil, g1); err != nil {
		lg.Unlock()
		t.Fatalf("CommitAndUnlock: %v", err)
	}
	lg.Unlock() // does nothing now
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	next, err := s.Lock(ctx, keyA)
	if err != nil {
		t.Fatalf("the lock is still held after CommitAndUnlock: %v", err)
	}
	defer next.Unlock()
	if c, _ := next.Credentials(t.Context()); !same(c.Grant, g1) {
		t.Fatalf("after CommitAndUnlock: %+v", c.Grant)
	}
}

func testConfigMerger(t *testing.T, s oauth.GrantStore) {
	g1 := grant(1)
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		cm, ok := lg.(oauth.ConfigMerger)
		if !ok {
			t.Skip("the store's lock is not a ConfigMerger")
		}
		if err := cm.CommitWithConfig(t.Context(), nil, g1, map[string]any{"peerName": "ada"}); err != nil {
			t.Fatalf("CommitWithConfig: %v", err)
		}
		if err := cm.CommitWithConfig(t.Context(), grant(3), grant(2), map[string]any{"peerName": "bob"}); !errors.Is(err, oauth.ErrStaleGrant) {
			t.Fatalf("CommitWithConfig from a grant the store does not hold: %v; want ErrStaleGrant", err)
		}
	})
	if c := read(t, s, keyA); !same(c.Grant, g1) {
		t.Fatalf("after CommitWithConfig: %+v", c.Grant)
	}
}

// A spend withdrawn by Abandon does not hold up the next holder's.
func testSpendAbandoner(t *testing.T, s oauth.GrantStore) {
	g1 := grant(1)
	put(t, s, keyA, g1)
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		sa, ok := lg.(oauth.SpendAbandoner)
		if !ok {
			t.Skip("the store's lock is not a SpendAbandoner")
		}
		if _, err := lg.Prepare(t.Context(), g1); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if err := sa.Abandon(t.Context(), g1); err != nil {
			t.Fatalf("Abandon: %v", err)
		}
	})
	locked(t, s, keyA, func(lg oauth.LockedGrant) {
		if _, err := lg.Prepare(t.Context(), g1); err != nil {
			t.Fatalf("the next holder's Prepare after Abandon: %v", err)
		}
	})
}

func testKeyStore(t *testing.T, s oauth.GrantStore) {
	ks := oauth.CapabilitiesOf(s).Keys
	if ks == nil {
		t.Skip("the store is not a KeyStore")
	}
	g1 := grant(1)
	put(t, s, keyA, g1)
	replaced, err := ks.SetAPIKey(t.Context(), keyA, "key-123")
	if err != nil || !same(replaced, g1) {
		t.Fatalf("SetAPIKey = %+v, %v; want the grant it replaced", replaced, err)
	}
	if c := read(t, s, keyA); c.Grant != nil || c.APIKey != "key-123" {
		t.Fatalf("after SetAPIKey: grant %+v, key set %v; want the key alone", c.Grant, c.APIKey != "")
	}
	if removed, err := ks.RemoveAPIKey(t.Context(), keyA); err != nil || !removed {
		t.Fatalf("RemoveAPIKey = %v, %v; want true", removed, err)
	}
	if c := read(t, s, keyA); c.APIKey != "" {
		t.Fatal("the key is still there after RemoveAPIKey")
	}
	if removed, err := ks.RemoveAPIKey(t.Context(), keyA); err != nil || removed {
		t.Fatalf("a second RemoveAPIKey = %v, %v; want false", removed, err)
	}
}

func testStateStore(t *testing.T, s oauth.GrantStore) {
	ss := oauth.CapabilitiesOf(s).State
	if ss == nil {
		t.Skip("the store is not a StateStore")
	}
	put(t, s, keyA, grant(1))
	at := time.Now().Truncate(time.Minute)
	h := oauth.Health{LastError: &oauth.RefreshError{At: at, Message: "the server did not answer"}, FailingSince: at}
	if err := ss.RecordHealth(t.Context(), keyA, h); err != nil {
		t.Fatalf("RecordHealth: %v", err)
	}
	if err := ss.RecordNeeds(t.Context(), keyA, []string{"read", "write"}); err != nil {
		t.Fatalf("RecordNeeds: %v", err)
	}
	if err := ss.RecordUse(t.Context(), keyA, at); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	sh := read(t, s, keyA).Shared
	if sh == nil {
		t.Fatal("Credentials.Shared is nil")
	}
	if sh.Health.LastError == nil || sh.Health.LastError.Message != h.LastError.Message || sh.Health.FailingSince.IsZero() {
		t.Errorf("shared health = %+v; want the failure recorded", sh.Health)
	}
	if !slices.Equal(sh.NeedsScopes, []string{"read", "write"}) {
		t.Errorf("shared needed scopes = %v; want [read write]", sh.NeedsScopes)
	}
	if sh.LastUsed.IsZero() || sh.LastUsed.Sub(at).Abs() > time.Minute {
		t.Errorf("shared last use = %v; want about %v", sh.LastUsed, at)
	}
	if ul := oauth.CapabilitiesOf(s).Uses; ul != nil {
		keys, err := ul.UsedSince(t.Context(), at.Add(-time.Minute))
		if err != nil || !slices.Contains(keys, keyA) {
			t.Errorf("UsedSince = %v, %v; want %s among them", keys, err, keyA)
		}
	}
}

func testDueClaimer(t *testing.T, s oauth.GrantStore) {
	dc := oauth.CapabilitiesOf(s).Due
	if dc == nil {
		t.Skip("the store is not a DueClaimer")
	}
	put(t, s, keyA, grant(1))
	future := grant(2)
	future.Obtained = time.Now().Add(time.Hour)
	put(t, s, keyB, future)
	now := time.Now()
	got, err := dc.ClaimDue(t.Context(), "a", now, time.Time{}, time.Minute, 10)
	if err != nil || !slices.Equal(got, []string{keyA}) {
		t.Fatalf("ClaimDue(a) = %v, %v; want [%s] (obtained long ago; %s only now)", got, err, keyA, keyB)
	}
	if got, err := dc.ClaimDue(t.Context(), "b", now, time.Time{}, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("ClaimDue(b) during a's claim = %v, %v; want none", got, err)
	}
}

func testGrantLister(t *testing.T, s oauth.GrantStore) {
	gl := oauth.CapabilitiesOf(s).List
	if gl == nil {
		t.Skip("the store is not a GrantLister")
	}
	putAll(t, s)
	all, err := gl.GrantKeys(t.Context(), "", 10)
	want := []string{keyA, keyC, keyB}
	slices.Sort(want)
	if err != nil || !slices.Equal(all, want) {
		t.Fatalf("GrantKeys = %v, %v; want %v", all, err, want)
	}
	if rest, err := gl.GrantKeys(t.Context(), want[0], 10); err != nil || !slices.Equal(rest, want[1:]) {
		t.Fatalf("GrantKeys after %s = %v, %v; want %v", want[0], rest, err, want[1:])
	}
	if first, err := gl.GrantKeys(t.Context(), "", 1); err != nil || !slices.Equal(first, want[:1]) {
		t.Fatalf("GrantKeys, limit 1 = %v, %v; want %v", first, err, want[:1])
	}
}

func testConnectionPager(t *testing.T, s oauth.GrantStore) {
	cp := oauth.CapabilitiesOf(s).Pages
	if cp == nil {
		t.Skip("the store is not a ConnectionPager")
	}
	putAll(t, s)
	page := func(profile, provider, after string, limit int) []string {
		t.Helper()
		var keys []string
		err := cp.ConnectionPage(t.Context(), profile, provider, after, limit, func(key string, c oauth.Credentials) {
			if c.Grant == nil {
				t.Errorf("ConnectionPage gave %s without its grant", key)
			}
			keys = append(keys, key)
		})
		if err != nil {
			t.Fatalf("ConnectionPage: %v", err)
		}
		return keys
	}
	// By profile, then provider: default/honcho, default/mcp, work/honcho.
	if got, want := page("", "", "", 10), []string{keyA, keyB, keyC}; !slices.Equal(got, want) {
		t.Errorf("all = %v; want %v", got, want)
	}
	if got, want := page("", "", "default/mcp", 10), []string{keyC}; !slices.Equal(got, want) {
		t.Errorf("after default/mcp = %v; want %v", got, want)
	}
	if got, want := page("work", "", "", 10), []string{keyC}; !slices.Equal(got, want) {
		t.Errorf("profile work = %v; want %v", got, want)
	}
	if got, want := page("", "honcho", "", 1), []string{keyA}; !slices.Equal(got, want) {
		t.Errorf("provider honcho, limit 1 = %v; want %v", got, want)
	}
}

func testGrantWatcher(t *testing.T, s oauth.GrantStore) {
	gw := oauth.CapabilitiesOf(s).Watch
	if gw == nil {
		t.Skip("the store is not a GrantWatcher")
	}
	changed, stop, err := gw.Watch(t.Context(), keyA)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer stop()
	put(t, s, keyA, grant(1))
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("a commit was not told to the watch in 10 s")
	}
}

func testClientStore(t *testing.T, s oauth.GrantStore) {
	cs := oauth.CapabilitiesOf(s).Clients
	if cs == nil {
		t.Skip("the store is not a ClientStore")
	}
	ctx := t.Context()
	const issuer, uris = "https://as.example", "https://app.example/callback"
	if reg, err := cs.Client(ctx, issuer, uris); err != nil || reg != nil {
		t.Fatalf("Client before any = %s, %v; want none", reg, err)
	}
	reg := []byte(`{"client_id":"c-1","redirect_uris":["https://app.example/callback"]}`)
	if err := cs.SaveClient(ctx, issuer, uris, reg); err != nil {
		t.Fatalf("SaveClient: %v", err)
	}
	if got, err := cs.Client(ctx, issuer, uris); err != nil || string(got) == "" {
		t.Fatalf("Client after SaveClient = %s, %v; want the registration", got, err)
	}
	if got, err := cs.Client(ctx, issuer, "http://127.0.0.1/cb"); err != nil || got != nil {
		t.Fatalf("Client for other redirect URIs = %s, %v; want none", got, err)
	}
	if err := cs.ForgetClient(ctx, issuer, "c-1"); err != nil {
		t.Fatalf("ForgetClient: %v", err)
	}
	if got, err := cs.Client(ctx, issuer, uris); err != nil || got != nil {
		t.Fatalf("Client after ForgetClient = %s, %v; want none", got, err)
	}
	if refused, err := cs.DocumentRefused(ctx, issuer); err != nil || refused {
		t.Fatalf("DocumentRefused before any = %v, %v; want false", refused, err)
	}
	if err := cs.RefuseDocument(ctx, issuer); err != nil {
		t.Fatalf("RefuseDocument: %v", err)
	}
	if refused, err := cs.DocumentRefused(ctx, issuer); err != nil || !refused {
		t.Fatalf("DocumentRefused after RefuseDocument = %v, %v; want true", refused, err)
	}
}
