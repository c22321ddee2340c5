package flow

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"
)

// loopbackServer is the one-shot redirect listener of a browser flow
// (RFC 8252 section 7.3).
type loopbackServer struct {
	ln          net.Listener
	srv         *http.Server
	redirectURI string // http://<bound IP literal>:<bound port>/callback
}

// CheckLoopbackAddr reports an address a loopback listener cannot bind
// (RFC 8252 section 8.3): anything but a loopback IP literal and a port,
// such as "localhost:8765", which may resolve elsewhere. The error wraps
// [ErrInvalidRequest].
func CheckLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: loopback address %q is not a loopback IP literal and port", ErrInvalidRequest, addr)
	}
	return nil
}

// Reservation is a loopback listener bound ahead of its flow
// ([Manager.ReserveLoopback]), so that a client can be registered for the
// exact redirect URI it listens on, port included, before the flow starts
// with it ([Request.Loopback]). Release frees a reservation no flow took;
// after Start it is the flow's.
type Reservation struct {
	ln          net.Listener
	redirectURI string
	// Moved is the address that was asked for when it was taken and
	// another port was bound instead; "" when it was not.
	Moved string
}

// RedirectURI is "http://<IP literal>:<bound port>/callback".
func (r *Reservation) RedirectURI() string { return r.redirectURI }

// Release closes a listener no flow took; it does nothing after Start.
func (r *Reservation) Release() {
	if r != nil && r.ln != nil {
		_ = r.ln.Close()
	}
}

// ReserveLoopback binds a loopback listener for a browser flow to come: at
// addr ("" for the manager's loopback address), or at an OS-assigned port
// of the same IP when that one is taken (Moved says so). The redirect URI
// names the IP literal and port actually bound, never "localhost" (RFC
// 8252 section 8.3).
func (m *Manager) ReserveLoopback(addr string) (*Reservation, error) {
	addr = cmp.Or(addr, m.loopbackAddr)
	if err := CheckLoopbackAddr(addr); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	r := &Reservation{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return nil, fmt.Errorf("flow: loopback listener: %w", err)
		}
		r.Moved = addr
	}
	r.ln = ln
	r.redirectURI = "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + "/callback"
	return r, nil
}

// listenLoopbackLocked serves f's callback on its reserved listener, or
// on one it binds now ([Manager.ReserveLoopback]), until the flow ends.
func (m *Manager) listenLoopbackLocked(f *flowRecord, res *Reservation) (*loopbackServer, error) {
	if res == nil || res.ln == nil {
		var err error
		if res, err = m.ReserveLoopback(f.loopbackAt); err != nil {
			return nil, err
		}
	}
	if res.Moved != "" {
		m.log.Info().Str("flow_id", f.id).Str("wanted", res.Moved).
			Str("bound", res.ln.Addr().String()).Msg("flow: loopback port taken, using an OS-assigned one")
	}
	ln := res.ln
	res.ln = nil // the flow's now
	lb := &loopbackServer{
		ln:          ln,
		redirectURI: res.redirectURI,
		srv: &http.Server{
			Handler:           m.loopbackHandler(f),
			ReadHeaderTimeout: 10 * time.Second,
			// The server's own messages could quote a request; keep them out of every log.
			ErrorLog: log.New(io.Discard, "", 0),
		},
	}
	// One-shot: no connection outlives its request, so nothing reaches a
	// handler once the flow has ended and the listener is closed.
	lb.srv.SetKeepAlivesEnabled(false)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		_ = lb.srv.Serve(ln)
	}()
	return lb, nil
}

// loopbackHandler serves GET /callback for f, through the same completion
// code as [Manager.Callback]; every other path is 404. It logs nothing
// (the query holds the code and state).
func (m *Manager) loopbackHandler(f *flowRecord) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		// Only the browser's GET completes the flow: a HEAD (a link
		// prefetcher, a probe) must not spend the state and the code.
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		flow, err := m.completeCallback(r.Context(), f.key, f, r.URL.Query(), "")
		m.page(w, flow, err, f.name)
	})
}

// closeLoopbackLocked closes lb's listener now, so its port is free when
// the caller returns, and shuts the server down in the background, letting
// a page being written finish.
func (m *Manager) closeLoopbackLocked(lb *loopbackServer) {
	_ = lb.ln.Close()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if lb.srv.Shutdown(ctx) != nil {
			_ = lb.srv.Close()
		}
	}()
}
