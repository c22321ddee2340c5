package memconnect_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/observe"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// sseEvent is one event read from a stream.
type sseEvent struct{ id, kind, data string }

// openStream GETs the events of profile/honcho with the session token and
// lastID (if not ""), and returns the events as they come.
func openStream(t *testing.T, e *fixture.Env, profile, lastID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/"+profile+"/providers/honcho/events", nil)
	if e.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.Token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("events = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if ev.kind != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return out
}

func nextEvent(t *testing.T, c <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return sseEvent{}
}

// heldRefreshes is an observer that holds every refresh's report until
// release is closed, telling entered first.
type heldRefreshes struct {
	observe.Nop
	entered chan struct{}
	release chan struct{}
}

func (h *heldRefreshes) Refresh(observe.Refresh) {
	h.entered <- struct{}{}
	<-h.release
}

// TestOwnRefreshNotSeenAsAnotherProcess: a refresh this server made is
// published once, as its own, even when the watch of the config file sees
// the rotated file (or the grant marked rejected) before the refresh's
// report is published: it is not also published as another process's.
func TestOwnRefreshNotSeenAsAnotherProcess(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		reject  bool
		want    string
		wantErr bool
	}{
		{"rotated", false, `{"connection":"refreshed"}`, false},
		{"rejected", true, `{"connection":"reauth_required"}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			held := &heldRefreshes{entered: make(chan struct{}, 1), release: make(chan struct{})}
			e := fixture.NewEnv(t, fixture.WithObserver(held))
			tok := e.AS.IssueGrant("write")
			writeGrant(t, e, tok, time.Now().Add(time.Minute), time.Now().Add(-time.Hour))
			if tt.reject {
				e.AS.RevokeGrant(tok.RefreshToken)
			}
			stream := openStream(t, e, "work", "")
			ts, err := e.Router.Connector().TokenSource("work", "honcho")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := ts.ForceRefresh(context.Background(), tok.AccessToken)
				done <- err
			}()
			<-held.entered // the store holds the outcome; its report is held
			select {
			case ev := <-stream:
				close(held.release)
				t.Fatalf("before the refresh's report, the stream had %+v: this server's own write seen as another process's", ev)
			case <-time.After(100 * time.Millisecond): // ten times the watch's debounce
			}
			close(held.release)
			if err := <-done; (err != nil) != tt.wantErr {
				t.Fatalf("ForceRefresh: %v, want an error: %v", err, tt.wantErr)
			}
			if ev := nextEvent(t, stream); ev.data != tt.want {
				t.Fatalf("after the refresh: %+v, want %s", ev, tt.want)
			}
			select {
			case ev := <-stream:
				t.Fatalf("a second event for one refresh: %+v", ev)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// The events route streams a connect as it happens: the flow pending, the
// grant stored, the flow connected; a disconnect; a reconnecting client
// resumes after the last id it saw. It is guarded like every route, and no
// event holds a token.
func TestEventStream(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithSessionToken("s3cret"))
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/work/providers/honcho/events", NoAuth: true}); x.Status != 401 {
		t.Fatalf("events without the session token = %d", x.Status)
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/nobody/providers/honcho/events"}); x.Status != 404 || x.JSON(t)["error"] != "profile_not_found" {
		t.Fatalf("events of a missing profile = %d %s", x.Status, x.Body)
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/work/providers/honcho/events", Header: map[string]string{"Last-Event-ID": "x"}}); x.Status != 400 {
		t.Fatalf("a bad Last-Event-ID = %d", x.Status)
	}
	stream := openStream(t, e, "work", "")
	rep := e.Connect("work", "honcho", `{"redirect":"loopback"}`)
	pending := nextEvent(t, stream)
	if pending.kind != "flow" || !strings.Contains(pending.data, `"state":"pending"`) || !strings.Contains(pending.data, `"id":"`+rep.Flow.ID+`"`) ||
		!strings.Contains(pending.data, `"authorize_url":"`+rep.Flow.AuthorizeURL+`"`) {
		t.Fatalf("first event = %+v, want the pending flow", pending)
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(target.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	connected := nextEvent(t, stream)
	if connected.kind != "connection" || connected.data != `{"connection":"connected"}` {
		t.Fatalf("second event = %+v, want connected", connected)
	}
	done := nextEvent(t, stream)
	if done.kind != "flow" || !strings.Contains(done.data, `"state":"connected"`) {
		t.Fatalf("third event = %+v, want the flow connected", done)
	}
	// A client that saw the first event resumes after it.
	resumed := openStream(t, e, "work", pending.id)
	for _, want := range []sseEvent{connected, done} {
		if got := nextEvent(t, resumed); got != want {
			t.Errorf("resumed: %+v, want %+v", got, want)
		}
	}
	if x := e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"}); x.Status != 200 {
		t.Fatalf("disconnect = %d", x.Status)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"disconnected"}` {
		t.Errorf("after disconnect: %+v", ev)
	}
	for _, ev := range []sseEvent{pending, connected, done} {
		if strings.Contains(ev.data, "hch-at-") || strings.Contains(ev.data, "hch-rt-") || strings.Contains(ev.data, "verifier") {
			t.Errorf("an event holds a secret: %+v", ev)
		}
	}
}

// A grant stored, refreshed and removed by another process sharing the
// config file shows up on the stream as it happens.
func TestEventStreamOtherProcess(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t)
	stream := openStream(t, e, "work", "")
	home := filepath.Join(e.Root, "profiles", "work")
	loc, err := honcho.New().GrantLocation(provider.Profile{Name: "work", Home: home, DefaultHome: e.Root})
	if err != nil {
		t.Fatal(err)
	}
	// The other process: its own store over the same file.
	other := oauth.NewGrants(filestore.New(loc.WritePath, loc.Layout), oauth.WithHTTPClient(e.AS.Client()))
	tok := e.AS.IssueGrant("write")
	if _, err := other.Install(t.Context(), loc.Host, tok, oauth.Grant{ClientID: e.AS.ClientID(), TokenEndpoint: e.AS.TokenURL(), TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"connected"}` {
		t.Fatalf("after another process stored a grant: %+v", ev)
	}
	if _, err := other.TokenSource(loc.Host).ForceRefresh(t.Context(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"refreshed"}` {
		t.Fatalf("after another process refreshed: %+v", ev)
	}
	// The server rejects the grant when the other process next refreshes.
	cr, err := filestore.New(loc.WritePath, loc.Layout).Credentials(t.Context(), loc.Host)
	if err != nil || cr.Grant == nil {
		t.Fatal(err)
	}
	e.AS.RevokeGrant(cr.Grant.RefreshToken)
	if _, err := other.TokenSource(loc.Host).ForceRefresh(t.Context(), cr.Grant.AccessToken); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("refresh of a revoked grant: %v", err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"reauth_required"}` {
		t.Fatalf("after the server rejected the grant: %+v", ev)
	}
	// A refresh through this server that fails for a while (the server
	// unavailable): refresh_failed, and the token in hand is kept.
	other2 := oauth.NewGrants(filestore.New(loc.WritePath, loc.Layout), oauth.WithHTTPClient(e.AS.Client()))
	tok2 := e.AS.IssueGrant("write")
	tok2.ExpiresIn = 60 // in the refresh window of a token obtained an hour ago
	if _, err := other2.Install(t.Context(), loc.Host, tok2, oauth.Grant{ClientID: e.AS.ClientID(), TokenEndpoint: e.AS.TokenURL(), TokenType: "Bearer",
		Obtained: time.Now().Add(-59 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"connected"}` {
		t.Fatalf("after another process stored a new grant: %+v", ev)
	}
	e.AS.FailNextTokenRequests(1, http.StatusBadRequest, "temporarily_unavailable")
	ts, err := e.Router.Connector().TokenSource("work", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ts.Token(); err != nil || got.AccessToken != tok2.AccessToken {
		t.Fatalf("Token while the server is unavailable = %v", err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"refresh_failed"}` {
		t.Fatalf("after a failed refresh: %+v", ev)
	}
	if _, err := other.Remove(t.Context(), loc.Host); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"disconnected"}` {
		t.Fatalf("after another process removed the grant: %+v", ev)
	}
}

// Open streams are capped: one too many is a 503 that says why. (That a
// closed stream frees its place is the bus's test.)
func TestEventStreamCap(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithMaxStreams(1))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/work/providers/honcho/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first stream: %v %v", resp, err)
	}
	x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/events"})
	if x.Status != 503 || x.JSON(t)["error"] != "unavailable" || !strings.Contains(string(x.Body), "event streams") {
		t.Fatalf("a stream too many = %d %s", x.Status, x.Body)
	}
	cancel()
	resp.Body.Close()
}

// A client that falls too far behind gets a final "dropped" event and the
// stream ends: here one that resumes after more events than a stream may
// hold.
func TestEventStreamDropsSlowClient(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t)
	key := connid.ID{Profile: "work", Provider: "honcho"}
	for range events.Buffer + 10 {
		e.Router.Events().Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: events.Refreshed})
	}
	stream := openStream(t, e, "work", "1")
	n := 0
	for ev := range stream {
		if ev.kind == "dropped" {
			if n != events.Buffer || !strings.Contains(ev.data, "read the status") {
				t.Errorf("dropped after %d events (%s), want %d", n, ev.data, events.Buffer)
			}
			return
		}
		n++
	}
	t.Fatalf("the stream ended after %d events without saying it dropped the client", n)
}

// An idle stream sends a heartbeat comment, as often as configured.
func TestEventStreamHeartbeat(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithEventHeartbeat(20*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/work/providers/honcho/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("no heartbeat before the stream ended: %v", sc.Err())
}

// TestEventStreamsPerSession: one connect session cannot hold a profile's
// whole allowance of streams: after MaxStreamsPerSession it gets 503, and
// all sessions of the profile together stop at three quarters of it, so
// that the host's own credential still opens one. (That a stream's end
// gives its place back is the handlers' test.)
func TestEventStreamsPerSession(t *testing.T) {
	t.Parallel()
	const token = "host-token-0123456789"
	e := fixture.NewEnv(t, fixture.WithSessionToken(token), fixture.WithSessionKeys(bytes.Repeat([]byte("k"), 32)))
	open := func(bearer string) int {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/work/providers/honcho/events", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			cancel()
			return resp.StatusCode
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return 200
	}
	mint := func() string {
		tok, _, err := e.Router.MintConnectSession("work", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	one := mint()
	for i := range handlers.MaxStreamsPerSession {
		if status := open(one); status != 200 {
			t.Fatalf("stream %d of one session = %d; want 200", i+1, status)
		}
	}
	if status := open(one); status != 503 {
		t.Fatalf("one stream more than a session may hold = %d; want 503", status)
	}
	// The sessions of the profile together: 48 of the 64 a profile has.
	limit := events.DefaultMaxPerProfile
	held := handlers.MaxStreamsPerSession
	for held < limit-limit/4 {
		s := mint()
		for range handlers.MaxStreamsPerSession {
			if held == limit-limit/4 {
				break
			}
			if status := open(s); status != 200 {
				t.Fatalf("stream %d of the profile's sessions = %d; want 200", held+1, status)
			}
			held++
		}
	}
	if status := open(mint()); status != 503 {
		t.Errorf("a stream more than the profile's sessions may hold = %d; want 503", status)
	}
	if status := open(token); status != 200 {
		t.Errorf("the host's own viewer = %d; want room kept for it", status)
	}
}
