package httpfast

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// HandoffListener is a net.Listener for an http.Server that serves the
// connections a fast path hands over (Hand) instead of accepting its own,
// so both share one port. A connection stays with net/http once handed
// over.
type HandoffListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr atomic.Pointer[net.Addr]
}

var _ net.Listener = (*HandoffListener)(nil)

// NewHandoffListener returns an open HandoffListener.
func NewHandoffListener() *HandoffListener {
	return &HandoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// SetAddr sets the address Addr reports (the real listener's).
func (l *HandoffListener) SetAddr(a net.Addr) { l.addr.Store(&a) }

// Hand gives c to the http.Server, which reads br's buffered bytes first,
// then c. It blocks until the server accepts it and returns false if the
// listener was closed first (the caller then still owns c).
func (l *HandoffListener) Hand(c net.Conn, br *bufio.Reader) bool {
	select {
	case l.ch <- &handedConn{Conn: c, r: br}:
		return true
	case <-l.done:
		return false
	}
}

// HandFd hands over a connection an event loop owned as the raw
// descriptor fd (already removed from the loop; HandFd takes it over):
// in a new goroutine it writes pending (answers the loop had not yet
// sent), then hands the connection to the server with buffered (request
// bytes the loop had read but not served) to be read first. On any
// failure the connection is closed.
func (l *HandoffListener) HandFd(fd int, pending, buffered []byte) {
	f := os.NewFile(uintptr(fd), "client")
	go func() {
		nc, err := net.FileConn(f) // dups the descriptor
		f.Close()
		if err != nil {
			return
		}
		if len(pending) > 0 {
			if _, err := nc.Write(pending); err != nil {
				nc.Close()
				return
			}
		}
		br := bufio.NewReader(io.MultiReader(bytes.NewReader(buffered), nc))
		if !l.Hand(nc, br) {
			nc.Close()
		}
	}()
}

// Accept returns the next handed-over connection.
func (l *HandoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and Hand fail from now on.
func (l *HandoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the address set by SetAddr, else an empty TCP address.
func (l *HandoffListener) Addr() net.Addr {
	if a := l.addr.Load(); a != nil {
		return *a
	}
	return &net.TCPAddr{}
}

// handedConn is a connection handed to net/http: reads drain the fast
// path's buffer first.
type handedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *handedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
