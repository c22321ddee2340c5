package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth/flow"
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
// reconnect. No event holds a token. Changes made by other processes
// sharing the config files are streamed too ([provider.Connector.Follow]).
// When as many streams are open as the server allows, in all or for the
// profile (see [events.PerProfile]), it answers 503 unavailable.
func (h *Handlers) Events(w http.ResponseWriter, r *http.Request) {
	// The same answer as status for a profile or provider that is not.
	rep, ok := h.status(w, r, pathParams, ActionEvents)
	if !ok {
		return
	}
	bus := h.conn.Events
	if bus == nil {
		RenderError(w, r, Errorf(CodeNotFound, "This server does not stream events."))
		return
	}
	var after uint64
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		var err error
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			RenderError(w, r, Errorf(CodeInvalidRequest, "The Last-Event-ID header must be the id of an event of this stream."))
			return
		}
	}
	sub, err := bus.Subscribe(flow.Key{Profile: rep.Profile, Provider: rep.Provider}, after)
	if errors.Is(err, events.ErrTooManySubscribers) {
		RenderError(w, r, Wrap(CodeUnavailable, err, "As many event streams are open as this server allows for this profile. Close one, or read the status instead."))
		return
	}
	if err != nil {
		RenderError(w, r, err)
		return
	}
	if o := h.conn.Observer; o != nil {
		o.Streams(bus.Len())
		defer func() { o.Streams(bus.Len()) }()
	}
	defer sub.Close()
	// Changes other processes make show up too, for as long as a stream
	// of this profile and provider is open.
	if stop, err := h.conn.Follow(rep.Profile, rep.Provider); err != nil {
		hlog.FromRequest(r).Warn().Str("error", err.Error()).Msg("events: changes made by other processes will not be streamed")
	} else {
		defer stop()
	}

	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A stream outlives the server's write timeout: each write gets its own.
	send := func(text string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(max(h.heartbeat, 5*time.Second)))
		if _, err := fmt.Fprint(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": memconnect events\n\n") {
		return
	}
	heartbeat := time.NewTicker(h.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
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
			if !send(formatEvent(ev)) {
				return
			}
		}
	}
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
