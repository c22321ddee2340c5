package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/provider"
)

// HeartbeatInterval is how often an idle event stream sends a comment, so
// that proxies and clients see it alive, unless [WithHeartbeat] says
// otherwise.
const HeartbeatInterval = 15 * time.Second

// WithHeartbeat sets how often an event stream sends a heartbeat comment;
// zero or less means [HeartbeatInterval]. A proxy that closes idle
// connections sooner than 15 s needs a shorter one.
func WithHeartbeat(d time.Duration) Option {
	return func(h *Handlers) {
		if d > 0 {
			h.heartbeat = d
		}
	}
}

// Events serves GET /profiles/{profile}/providers/{provider}/events as
// Server-Sent Events (text/event-stream): "flow" events with the flow as
// the status body's "flow" shows it, "connection" events with
// {"connection": "connected" | "refreshed" | "refresh_failed" |
// "recovered" | "reauth_required" | "disconnected"}, and a
// heartbeat comment every [HeartbeatInterval] (see [WithHeartbeat]). Each event has an id; a
// client that reconnects with Last-Event-ID gets the events it missed that
// the server still holds. A client that falls too far behind gets a final
// "dropped" event and the stream ends: read the status again, then
// reconnect. No event holds a token. Over HTTP/1 the stream takes the
// connection from the server once it has started (so that an open stream
// costs little): a client that leaves is then noticed at the next
// heartbeat, and [Handlers.Close] (the router's Close), not the server's
// Shutdown, ends it. Changes made by other processes
// sharing the config files are streamed too ([provider.Connector.Follow]).
// When as many streams are open as the server allows, in all or for the
// profile (see [events.PerProfile]), it answers 503 unavailable; so it does
// when a connect session holds [MaxStreamsPerSession], or the connect
// sessions of the profile together three quarters of the profile's
// allowance: the rest is kept for the host's own credential.
func (h *Handlers) Events(w http.ResponseWriter, r *http.Request) {
	// The same answer as status for a profile or provider that is not.
	rep, ok := h.status(w, r, pathParams, ActionEvents)
	if !ok {
		return
	}
	bus := h.conn.Events
	if bus == nil {
		renderError(w, r, apierr.Errorf(apierr.CodeNotFound, "This server does not stream events."))
		return
	}
	var after uint64
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		var err error
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			renderError(w, r, apierr.Errorf(apierr.CodeInvalidRequest, "The Last-Event-ID header must be the id of an event of this stream."))
			return
		}
	}
	released := func() {}
	if underSession(r) {
		var err error
		if released, err = h.streams.acquire(sessionToken(r), rep.Profile, bus); err != nil {
			renderError(w, r, apierr.Wrap(apierr.CodeUnavailable, err, "This connect session holds as many event streams as it may. Close one, or read the status instead."))
			return
		}
	}
	sub, err := bus.Subscribe(connid.ID{Profile: rep.Profile, Provider: rep.Provider}, after)
	if err != nil {
		released()
	}
	if errors.Is(err, events.ErrTooManySubscribers) {
		renderError(w, r, apierr.Wrap(apierr.CodeUnavailable, err, "As many event streams are open as this server allows, in all or for this profile. Close one, or read the status instead."))
		return
	}
	if err != nil {
		renderError(w, r, err)
		return
	}
	// What the stream holds, released when it ends (here, or on the
	// detached stream's goroutine).
	observed, stopFollow := released, func() {}
	if o := h.conn.Observer; o != nil {
		o.Streams(bus.Len())
		observed = func() { released(); o.Streams(bus.Len()) }
	}
	// Changes other processes make show up too, for as long as a stream
	// of this profile and provider is open.
	if stop, err := h.conn.Follow(r.Context(), rep.Profile, rep.Provider); err != nil {
		hlog.FromRequest(r).Warn().Str("error", err.Error()).Msg("events: changes made by other processes will not be streamed")
	} else {
		stopFollow = stop
	}
	defer func() {
		if sub != nil {
			sub.Close()
			stopFollow()
			observed()
		}
	}()

	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A stream outlives the server's write timeout: each write gets its own.
	send := func(text string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.writeTimeout()))
		if _, err := io.WriteString(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": memconnect events\n\n") {
		return
	}
	if h.detach(rc, r.ProtoAtLeast(1, 1), sub, stopFollow, observed) {
		sub, stopFollow, observed = nil, nil, nil // the detached stream owns them now
		return
	}
	h.pump(r.Context().Done(), sub, send)
}

// writeTimeout bounds each write of a stream.
func (h *Handlers) writeTimeout() time.Duration { return max(h.heartbeat, 5*time.Second) }

// detach takes an HTTP/1 stream's connection from the server (a hijack)
// and serves the stream on a goroutine of its own, so that the server's
// buffers and goroutines for the connection are freed: what an open
// stream holds is then its connection, its subscription and one small
// goroutine. A client that goes away is noticed at the next write (a
// heartbeat at the latest). It reports false, changing nothing, where
// the connection cannot be taken (HTTP/2, a wrapper without Hijack).
func (h *Handlers) detach(rc *http.ResponseController, chunked bool, sub *events.Subscription, stopFollow, observed func()) bool {
	conn, brw, err := rc.Hijack()
	if err != nil {
		return false
	}
	if err := brw.Flush(); err != nil { // nothing is buffered after Flush; to be sure
		conn.Close()
		sub.Close()
		stopFollow()
		observed()
		return true
	}
	// The server began the body in HTTP/1.1's chunked encoding (HTTP/1.0:
	// until the connection closes); the stream goes on in it.
	// A write deadline is renewed when half of it has passed, not at each
	// write: setting one costs about a fifth of a small write.
	var deadline time.Time
	send := func(text string) bool {
		if now := time.Now(); deadline.Sub(now) < h.writeTimeout()/2 {
			deadline = now.Add(h.writeTimeout())
			_ = conn.SetWriteDeadline(deadline)
		}
		var err error
		if chunked {
			_, err = fmt.Fprintf(conn, "%x\r\n%s\r\n", len(text), text)
		} else {
			_, err = io.WriteString(conn, text)
		}
		return err == nil
	}
	go func() {
		defer conn.Close()
		if chunked {
			defer send("") // the last chunk: "0\r\n\r\n"
		}
		defer observed()
		defer stopFollow()
		defer sub.Close()
		h.pump(h.done, sub, send)
	}()
	return true
}

// pump sends sub's events and heartbeats with send until done, a failed
// send, or the subscription's end (a client that fell behind gets a final
// "dropped" event).
func (h *Handlers) pump(done <-chan struct{}, sub *events.Subscription, send func(string) bool) {
	heartbeat := time.NewTicker(h.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-done:
			return
		case <-heartbeat.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case ev, ok := <-sub.Events():
			if !ok {
				send("event: dropped\ndata: {\"reason\":\"the client fell behind; read the status, then reconnect\"}\n\n")
				return
			}
			if !send(h.format(ev)) {
				return
			}
		}
	}
}

// formatted is the last event formatted: every stream of a key formats the
// same event in turn.
type formatted struct {
	id   uint64
	text string
}

// format is formatEvent, once per event for all the streams that send it.
func (h *Handlers) format(ev events.Event) string {
	if f := h.lastFormatted.Load(); f != nil && f.id == ev.ID {
		return f.text
	}
	text := formatEvent(ev)
	h.lastFormatted.Store(&formatted{ev.ID, text})
	return text
}

// formatEvent is ev as a Server-Sent Event.
func formatEvent(ev events.Event) string {
	var b []byte
	if ev.Kind == events.KindFlow {
		b, _ = provider.MarshalFlow(ev.Flow) // strings and a time always encode
	} else {
		b, _ = json.Marshal(map[string]string{"connection": ev.Connection})
	}
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Kind, b)
}
