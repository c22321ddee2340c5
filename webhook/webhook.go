// Package webhook sends the connection events of a memconnect router to a
// URL of the host's as signed HTTP POSTs, following the Standard Webhooks
// specification (https://www.standardwebhooks.com): each request carries
// the headers webhook-id, webhook-timestamp and webhook-signature
// ("v1," and the base64 HMAC-SHA256, keyed with the whsec_ secret, of
// "id.timestamp.body"), and a JSON body
//
//	{"type": "connection.refresh_failed", "timestamp": "2026-12-05T10:42:00Z",
//	 "data": {"profile": "default", "provider": "honcho", "connection": "refresh_failed"}}
//
// The types are connection.connected, connection.refreshed (only with
// Config.Refreshed), connection.refresh_failed, connection.recovered,
// connection.reauth_required and connection.disconnected. A body never
// holds a token.
//
// Delivery is at least once, in order, from a bounded queue: a failed
// delivery (no answer, 408, 429 or 5xx) is retried with exponential
// backoff up to Config.MaxAttempts; an event that finds the queue full is
// dropped, logged and counted. Only the changes this process made are
// sent, not those it saw another process or instance make
// ([events.Event.Remote]), so that instances sharing a PostgreSQL store,
// each with a sender, send every change once.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/observe"
)

// SecretPrefix starts a webhook secret: whsec_ and the base64 of the key.
const SecretPrefix = "whsec_"

// Defaults of a [Config].
const (
	DefaultQueueSize   = 1000
	DefaultMaxAttempts = 8
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 10 * time.Second
)

// Config configures a [Sender]. URL and Secret are required.
type Config struct {
	// URL receives the POSTs: an absolute https URL, or http on a
	// loopback host.
	URL string
	// Secret is the signing secret, "whsec_" and the base64 of 24 to 64
	// random bytes ([NewSecret] makes one).
	Secret string
	// Refreshed sends connection.refreshed too: one a refresh, usually
	// an hour apart per connection. Off by default.
	Refreshed bool
	// HTTPClient sends the requests; nil means http.DefaultClient. It
	// follows no redirect (applied to a copy).
	HTTPClient *http.Client
	// QueueSize bounds the events waiting; zero means
	// [DefaultQueueSize].
	QueueSize int
	// MaxAttempts bounds the deliveries of one event; zero means
	// [DefaultMaxAttempts].
	MaxAttempts int
	// Backoff is the wait before attempt n+1 after n failed (n >= 1);
	// nil means 1s, 2s, 4s ... capped at 5 min.
	Backoff func(n int) time.Duration
	// Logger receives a line per event given up on or dropped. The zero
	// value discards.
	Logger zerolog.Logger
	// Observer, when not nil, hears of each delivery: "ok", "retry",
	// "failed" (given up), "dropped" (queue full).
	Observer observe.Observer
	// Clock is the clock of the timestamps; nil means the system clock.
	Clock clock.Clock
}

// Sender delivers events to one URL. Make one with [New], feed it with
// [Sender.Attach] or [Sender.Send], and end it with [Sender.Close].
type Sender struct {
	cfg    Config
	key    []byte
	client *http.Client
	queue  chan message
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// message is one event to deliver.
type message struct {
	id   string
	at   time.Time
	body []byte
}

// New checks cfg and starts the sender's delivery goroutine.
func New(cfg Config) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("webhook: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if !outbound.Secure(u) {
		return nil, fmt.Errorf("webhook: URL %q must be https (http only on a loopback host)", cfg.URL)
	}
	key, err := ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(n int) time.Duration { return min(time.Second<<min(n-1, 16), 5*time.Minute) }
	}
	cfg.Clock = clock.Or(cfg.Clock)
	cfg.Observer = observe.Or(cfg.Observer)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{cfg: cfg, key: key, client: outbound.Secret(cfg.HTTPClient), queue: make(chan message, cfg.QueueSize),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go s.run()
	return s, nil
}

// ParseSecret returns the key of a whsec_ secret, or an error that says
// what is wrong with it (never the secret itself).
func ParseSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook: the secret must start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("webhook: the secret after " + SecretPrefix + " is not base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("webhook: the secret's key is %d bytes; it must be 24 to 64", len(key))
	}
	return key, nil
}

// NewSecret returns a fresh secret of 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Attach sends the connection events bus publishes until detach is called.
func (s *Sender) Attach(bus *events.Bus) (detach func()) {
	return bus.Tap(func(ev events.Event) { s.Send(ev) })
}

// Send queues ev when it is a connection event this process made that the
// sender sends, and reports whether it was queued. It never blocks: when
// the queue is full the event is dropped.
func (s *Sender) Send(ev events.Event) bool {
	if ev.Kind != events.KindConnection || ev.Remote || (ev.Connection == events.Refreshed && !s.cfg.Refreshed) {
		return false
	}
	at := s.cfg.Clock.Now().UTC().Truncate(time.Second)
	body, _ := json.Marshal(payload{ // strings and a time always encode
		Type:      "connection." + ev.Connection,
		Timestamp: at,
		Data:      data{Profile: ev.Key.Profile, Provider: ev.Key.Provider, Connection: ev.Connection},
	})
	m := message{id: "msg_" + rand.Text(), at: at, body: body}
	select {
	case <-s.ctx.Done():
		return false
	default:
	}
	select {
	case s.queue <- m:
		return true
	default:
		s.cfg.Observer.Webhook("dropped")
		s.cfg.Logger.Warn().Str("type", "connection."+ev.Connection).Str("profile", ev.Key.Profile).
			Msg("webhook: the queue is full; event dropped")
		return false
	}
}

type payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      data      `json:"data"`
}

type data struct {
	Profile    string `json:"profile"`
	Provider   string `json:"provider"`
	Connection string `json:"connection"`
}

// Close stops the sender: the delivery under way ends, and the events
// still queued are not sent. It is idempotent.
func (s *Sender) Close() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}

func (s *Sender) run() {
	defer close(s.done)
	for {
		select {
		case <-s.ctx.Done():
			return
		case m := <-s.queue:
			s.deliver(m)
		}
	}
}

// deliver sends m until it is taken, refused for good, or out of
// attempts.
func (s *Sender) deliver(m message) {
	for n := 1; ; n++ {
		retry, err := s.attempt(m)
		if err == nil {
			s.cfg.Observer.Webhook("ok")
			return
		}
		if !retry || n >= s.cfg.MaxAttempts {
			s.cfg.Observer.Webhook("failed")
			s.cfg.Logger.Warn().Str("webhook_id", m.id).Int("attempts", n).Str("error", err.Error()).
				Msg("webhook: event not delivered; given up")
			return
		}
		s.cfg.Observer.Webhook("retry")
		t := time.NewTimer(s.cfg.Backoff(n))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// attempt makes one delivery of m and reports whether a failure may be
// retried.
func (s *Sender) attempt(m message) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, DefaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(m.body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(m.at.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", m.id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+Sign(s.key, m.id, ts, m.body))
	resp, err := s.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook: %s did not answer: %w", s.cfg.URL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch sc := resp.StatusCode; {
	case sc >= 200 && sc < 300:
		return false, nil
	case sc == http.StatusRequestTimeout || sc == http.StatusTooManyRequests || sc >= 500:
		return true, fmt.Errorf("webhook: %s answered %d", s.cfg.URL, sc)
	default:
		return false, fmt.Errorf("webhook: %s answered %d", s.cfg.URL, sc)
	}
}

// Sign returns the base64 HMAC-SHA256 of "id.timestamp.body" keyed with
// key: a signature of the webhook-signature header, without its "v1,".
func Sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
