package oauthfake

import (
	"context"
	"net"
	"sync"
)

// pipeListener is a [net.Listener] whose connections are in-memory
// [net.Pipe]s, dialled with its dial method. Nothing of it waits on the
// operating system, so a server on it runs inside a [testing/synctest]
// bubble, where a real socket would keep the fake clock from moving.
type pipeListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr is the address the server's URL names: a loopback one, so that
// code which insists on loopback http URLs accepts it. Only the server's
// [Server.Client] reaches it.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the listener, whatever the address.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
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

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "127.0.0.1:1" }
