// Package memnet is a network in memory for tests: listeners whose
// connections are [net.Pipe]s, reached by address through the network's
// dialer. Nothing of it waits on the operating system, so servers on it
// run inside a [testing/synctest] bubble, where a real socket would keep
// the fake clock from moving.
package memnet

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"syscall"
)

// Network is a set of listeners, each at its own loopback address.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*Listener
}

// New returns an empty Network.
func New() *Network { return &Network{listeners: make(map[string]*Listener)} }

// Listen returns a new listener of n, at the next free port of 127.0.0.1
// (a loopback address, so that code which insists on loopback http URLs
// accepts it).
func (n *Network) Listen() *Listener {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := &Listener{
		addr:   addr("127.0.0.1:" + strconv.Itoa(len(n.listeners)+1)),
		conns:  make(chan net.Conn),
		closed: make(chan struct{}),
	}
	n.listeners[string(l.addr)] = l
	return l
}

// Serve moves the unstarted ts from its socket onto a new listener of n;
// start it after.
func (n *Network) Serve(ts *httptest.Server) {
	ts.Listener.Close()
	ts.Listener = n.Listen()
}

// Dial connects to the listener at address: an [http.Transport]'s
// DialContext. An address no listener has is refused.
func (n *Network) Dial(ctx context.Context, _, address string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[address]
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: syscall.ECONNREFUSED}
	}
	return l.dial(ctx)
}

// Client is an HTTP client whose connections are made on n.
func (n *Network) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: n.Dial}}
}

// Listener is a [net.Listener] of a [Network].
type Listener struct {
	addr      addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept implements [net.Listener].
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements [net.Listener].
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr implements [net.Listener].
func (l *Listener) Addr() net.Addr { return l.addr }

func (l *Listener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: net.ErrClosed}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type addr string

func (addr) Network() string  { return "pipe" }
func (a addr) String() string { return string(a) }
