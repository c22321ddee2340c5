package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/observe"
	"github.com/memconnect/memconnect/webhook"
)

// verify checks a request as the Standard Webhooks specification tells a
// receiver to, written from the spec's text rather than with the package:
// the secret is base64 after "whsec_"; the signed content is
// "{webhook-id}.{webhook-timestamp}.{body}"; the signature header is a
// space-separated list of "v1,<base64 HMAC-SHA256>", any of which may
// match (compared in constant time); the timestamp is unix seconds within
// a tolerance of now.
func verify(secret string, h http.Header, body []byte, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		version, b64, ok := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if ok && version == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

type received struct {
	header http.Header
	body   []byte
}

// receiver is the host's endpoint: it answers with the statuses given, in
// turn (then 204), and hands every request to got.
func receiver(t *testing.T, statuses ...int) (url string, got chan received) {
	got = make(chan received, 100)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), b}
		mu.Lock()
		status := http.StatusNoContent
		if len(statuses) > 0 {
			status, statuses = statuses[0], statuses[1:]
		}
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hooks/memconnect", got
}

// counter counts webhook outcomes.
type counter struct {
	observe.Nop
	mu   sync.Mutex
	n    map[string]int
	done chan string // final outcomes (ok, failed), as they happen
}

func (c *counter) Webhook(outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[outcome]++
	if c.done != nil && (outcome == "ok" || outcome == "failed") {
		c.done <- outcome
	}
}

func (c *counter) get(outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[outcome]
}

func newSender(t *testing.T, cfg webhook.Config) *webhook.Sender {
	t.Helper()
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	s, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func next(t *testing.T, got chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request came")
		return received{}
	}
}

var key = connid.ID{Profile: "default", Provider: "honcho"}

func TestDeliveryIsSignedPerSpec(t *testing.T) {
	url, got := receiver(t)
	secret := webhook.NewSecret()
	bus := events.NewBus()
	s := newSender(t, webhook.Config{URL: url, Secret: secret})
	defer s.Attach(bus)()

	bus.Publish(events.Event{Key: key, Kind: events.KindFlow, Flow: &flow.Flow{State: flow.StatePending}})                                    // not sent
	bus.Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: events.Refreshed})                                            // not asked for
	bus.Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: events.Connected, Remote: true})                              // another instance's
	bus.Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: events.RefreshFailed})                                        // sent
	bus.Publish(events.Event{Key: connid.ID{Profile: "work", Provider: "honcho"}, Kind: events.KindConnection, Connection: events.Recovered}) // sent

	for _, want := range []string{"refresh_failed", "recovered"} {
		r := next(t, got)
		if !verify(secret, r.header, r.body, time.Now()) {
			t.Fatalf("the signature does not verify: %v %s", r.header, r.body)
		}
		if verify(webhook.NewSecret(), r.header, r.body, time.Now()) {
			t.Fatal("the signature verifies with another secret")
		}
		var p struct {
			Type      string            `json:"type"`
			Timestamp time.Time         `json:"timestamp"`
			Data      map[string]string `json:"data"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Type != "connection."+want || p.Data["connection"] != want || p.Data["provider"] != "honcho" || len(p.Data) != 3 || p.Timestamp.IsZero() {
			t.Errorf("body = %s, want a connection.%s", r.body, want)
		}
		if r.header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.header.Get("webhook-id"), "msg_") {
			t.Errorf("headers = %v", r.header)
		}
	}
	select {
	case r := <-got:
		t.Errorf("an event was sent that should not be: %s", r.body)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestRetriesThenGivesUp(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		want     int // requests
		outcome  string
	}{
		{"5xx then ok", []int{503, 500}, 3, "ok"},
		{"429 retried", []int{429}, 2, "ok"},
		{"gives up after the bound", []int{502, 502, 502, 502, 502}, 3, "failed"},
		{"4xx not retried", []int{400}, 1, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, got := receiver(t, tt.statuses...)
			obs := &counter{done: make(chan string, 1)}
			s := newSender(t, webhook.Config{URL: url, Secret: webhook.NewSecret(), MaxAttempts: 3, Observer: obs})
			s.Send(events.Event{Key: key, Kind: events.KindConnection, Connection: events.ReauthRequired})
			var ids []string
			for range tt.want {
				ids = append(ids, next(t, got).header.Get("webhook-id"))
			}
			for i := range ids {
				if ids[i] != ids[0] {
					t.Errorf("a retry has another webhook-id: %v", ids)
				}
			}
			if o := <-obs.done; o != tt.outcome {
				t.Errorf("outcome %q, want %q", o, tt.outcome)
			}
			s.Close()
			if n := len(got); n != 0 {
				t.Errorf("%d requests more than %d", n, tt.want)
			}
			if obs.get(tt.outcome) != 1 {
				t.Errorf("outcomes %v, want one %q", obs.n, tt.outcome)
			}
		})
	}
}

// TestNoRedirectFollowed: a receiver that answers with a redirect does
// not get the signed delivery sent on to wherever it points: the sender
// follows no redirect, and the delivery fails.
func TestNoRedirectFollowed(t *testing.T) {
	elsewhere, stolen := receiver(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	obs := &counter{done: make(chan string, 1)}
	s := newSender(t, webhook.Config{URL: srv.URL + "/hooks", Secret: webhook.NewSecret(), MaxAttempts: 2, Observer: obs})
	s.Send(events.Event{Key: key, Kind: events.KindConnection, Connection: events.ReauthRequired})
	if o := <-obs.done; o != "failed" {
		t.Errorf("outcome %q; want failed", o)
	}
	s.Close()
	if n := len(stolen); n != 0 {
		t.Errorf("the redirect's target got %d deliveries; want none", n)
	}
}

func TestQueueFullDrops(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	obs := &counter{}
	s := newSender(t, webhook.Config{URL: srv.URL, Secret: webhook.NewSecret(), QueueSize: 2, Observer: obs})
	ev := events.Event{Key: key, Kind: events.KindConnection, Connection: events.Disconnected}
	queued := 0
	for range 10 {
		if s.Send(ev) {
			queued++
		}
	}
	// One may be in delivery, two queued: the rest dropped.
	if queued > 3 || obs.get("dropped") != 10-queued {
		t.Errorf("queued %d, dropped %d of 10 with a queue of 2", queued, obs.get("dropped"))
	}
}

func TestConfigErrors(t *testing.T) {
	good := webhook.NewSecret()
	for _, tt := range []struct {
		name string
		cfg  webhook.Config
		want string
	}{
		{"no url", webhook.Config{Secret: good}, "not an absolute"},
		{"plain http elsewhere", webhook.Config{URL: "http://example.com/hook", Secret: good}, "must be https"},
		{"no prefix", webhook.Config{URL: "https://example.com/h", Secret: "c2VjcmV0"}, "must start with whsec_"},
		{"not base64", webhook.Config{URL: "https://example.com/h", Secret: "whsec_!!!"}, "not base64"},
		{"short", webhook.Config{URL: "https://example.com/h", Secret: "whsec_c2VjcmV0"}, "24 to 64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(tt.cfg.Secret, "whsec_")) && tt.cfg.Secret != "" {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}

// ParseSecret takes "whsec_" and 24 to 64 bytes in base64, says what is
// wrong with anything else, and never repeats the secret.
func TestParseSecret(t *testing.T) {
	for _, tt := range []struct {
		secret, want string // want: "" for valid, else a part of the error
	}{
		{webhook.NewSecret(), ""},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 24)), ""},
		{"sk_" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "must start with whsec_"},
		{"whsec_not*base64", "not base64"},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 8)), "8 bytes"},
	} {
		key, err := webhook.ParseSecret(tt.secret)
		switch {
		case tt.want == "" && (err != nil || len(key) < 24):
			t.Errorf("ParseSecret(%q) = %d bytes, %v", tt.secret, len(key), err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseSecret(%q): %v, want an error saying %q", tt.secret, err, tt.want)
		case err != nil && strings.Contains(err.Error(), strings.TrimPrefix(tt.secret, "whsec_")):
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}
