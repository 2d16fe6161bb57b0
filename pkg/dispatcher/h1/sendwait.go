package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// connReader is the io.Reader under a pooled connection's bufio.Reader.
// It reads as net.Conn does, except for the first read of a response.
//
// net.Conn.Read always tries read(2) first and waits for the netpoller
// only when that returns EAGAIN. Right after a request was written, the
// answer cannot be there yet, so that first read(2) is wasted: about one
// EAGAIN read per proxied request in a syscall count of the dispatcher
// under load (nginx, edge-triggered, reads once per answer). After
// sendFirst, the next Read instead writes the request from inside
// syscall.RawConn.Read's callback and lets RawConn.Read wait for
// readability before its first read(2).
//
// Why the request is written inside the callback: RawConn.Read first
// resets the descriptor's readiness (internal/poll's prepareRead), so
// readiness reported before that reset would be lost and the wait could
// outlast the answer. Data written after the reset can only be answered
// after it, so the answer's readiness is always seen. The one thing that
// could arrive before the request is unsolicited: a backend closing an
// idle connection. Our write then draws an RST (an error event, which
// ends the wait) — unless the backend only half-closed and keeps the
// socket open without answering, which ends at the request's deadline
// instead of a retry on another connection.
type connReader struct {
	c  net.Conn
	rc syscall.RawConn // nil: plain reads only

	// One sendFirst read in progress: its buffer, the writer to flush
	// before waiting, and its outcome.
	p          []byte
	send       *bufio.Writer
	sent       bool
	n          int
	err        error
	readFn     func(fd uintptr) bool // r.readRaw, bound once (no allocation per read)
	emptyReads int                   // read(2) calls that found no data (EAGAIN), for tests
}

func newConnReader(c net.Conn) *connReader {
	r := &connReader{c: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	r.readFn = r.readRaw
	return r
}

// canSendFirst reports whether sendFirst is available (c is a socket).
func (r *connReader) canSendFirst() bool { return r.rc != nil }

// sendFirst makes the next Read flush bw first and wait for readability
// before reading. The caller must make sure that Read happens (e.g. Peek
// on an empty bufio.Reader over r), else the request is never sent, and
// that nothing of the request was written before: its answer could
// arrive before the wait starts, and its readiness would be lost.
func (r *connReader) sendFirst(bw *bufio.Writer) { r.send = bw }

func (r *connReader) Read(p []byte) (int, error) {
	if r.send == nil {
		return r.c.Read(p)
	}
	r.p, r.sent, r.n, r.err = p, false, 0, nil
	err := r.rc.Read(r.readFn)
	n, rerr := r.n, r.err
	r.p, r.send, r.err = nil, nil, nil
	if err != nil {
		// A deadline or a closed connection, as net.Conn.Read reports
		// them (RawConn.Read names its operation "raw-read").
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "raw-read" {
			oe.Op = "read"
		}
		return 0, err
	}
	return n, rerr
}

// readRaw is RawConn.Read's callback: true when done, false to wait for
// readability and be called again.
func (r *connReader) readRaw(fd uintptr) bool {
	if !r.sent {
		r.sent = true
		if err := r.send.Flush(); err != nil {
			r.err = err
			return true
		}
		return false // the answer cannot be here yet: wait first
	}
	for {
		n, err := syscall.Read(int(fd), r.p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			r.emptyReads++
			return false
		case err != nil:
			r.err = &net.OpError{Op: "read", Net: r.c.LocalAddr().Network(), Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("read", err)}
		case n == 0:
			r.err = io.EOF
		default:
			r.n = n
		}
		return true
	}
}

// send writes req to pc and waits until the first bytes of the answer
// are buffered in pc.br. An error from either step comes before any
// response byte (ErrStale material on a reused connection).
func (pc *pconn) send(host string, req *Request) error {
	pc.cw.wrote = false
	writeRequest(pc.bw, host, req)
	// Only a request still wholly in pc.bw can be sent from inside the
	// wait: one larger than the buffer went out partly during
	// writeRequest, and its answer may already be here. Bytes left over
	// from an earlier answer (a misbehaving server) are read as this
	// answer's start, as before.
	if !pc.cw.wrote && pc.br.Buffered() == 0 && pc.cr.canSendFirst() {
		pc.cr.sendFirst(pc.bw) // the Peek below sends it
	} else if err := pc.bw.Flush(); err != nil {
		return err
	}
	_, err := pc.br.Peek(1)
	return err
}

// wroteWriter is the io.Writer under a pooled connection's bufio.Writer:
// it notes whether anything went to the connection.
type wroteWriter struct {
	c     net.Conn
	wrote bool
}

func (w *wroteWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.c.Write(p)
}
