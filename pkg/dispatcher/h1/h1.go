package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Pool is a minimal HTTP/1.1 keep-alive client for one plain-http
// server (a dispatcher backend, or the load generator's target). Unlike http.Transport, which hands every request to a per-
// connection write goroutine and every response to a read goroutine, it
// writes the request and reads the response head on the calling goroutine:
// two fewer goroutine hand-offs (thread wake-ups on a busy machine) per
// proxied request, which is most of a proxy's added latency. https
// backends use http.Transport.
type Pool struct {
	host   string // host:port, also the Host header
	dialer *net.Dialer
	// slots holds one token per open connection (in use or idle): at most
	// cap(slots) connections, so an overload queues here, bounded by the
	// request's context, instead of opening thousands of sockets to a
	// backend (and exhausting ephemeral ports in TIME_WAIT).
	slots  chan struct{}
	idle   chan *pconn // FIFO of idle connections, cap == cap(slots)
	closed atomic.Bool
}

// Close stops reuse: idle connections close now, busy ones when released.
func (p *Pool) Close() {
	p.closed.Store(true)
	p.CloseIdle()
}

type pconn struct {
	deadline atomic.Int64 // unix nanos of the socket deadline; 0: none
	c        net.Conn
	cr       *connReader // under br
	cw       wroteWriter // under bw
	br       *bufio.Reader
	bw       *bufio.Writer
}

// NewPool returns a pool for host ("host:port") holding at most maxConns
// connections (in use or idle), dialled with dialer.
func NewPool(host string, dialer *net.Dialer, maxConns int) *Pool {
	return &Pool{host: host, dialer: dialer, slots: make(chan struct{}, maxConns), idle: make(chan *pconn, maxConns)}
}

// get returns an idle connection (reused = true) or dials a new one when
// fewer than maxConns are open; otherwise it waits for either until ctx ends.
func (p *Pool) get(ctx context.Context) (pc *pconn, reused bool, err error) {
	select {
	case pc := <-p.idle:
		return pc, true, nil
	default:
	}
	done := ctx.Done()
	var expired <-chan time.Time
	if done == nil {
		if dl, ok := ctx.Deadline(); ok { // a DeadlineContext
			t := time.NewTimer(time.Until(dl))
			defer t.Stop()
			expired = t.C
		}
	}
	select {
	case pc := <-p.idle:
		return pc, true, nil
	case p.slots <- struct{}{}:
		pc, err := p.dial(ctx)
		if err != nil {
			<-p.slots
			return nil, false, err
		}
		return pc, false, nil
	case <-done:
		return nil, false, fmt.Errorf("waiting for a connection to %s (%d open): %w", p.host, cap(p.slots), ctx.Err())
	case <-expired:
		return nil, false, fmt.Errorf("waiting for a connection to %s (%d open): %w", p.host, cap(p.slots), context.DeadlineExceeded)
	}
}

// DeadlineContext returns a context with deadline dl that nothing cancels
// (Done is nil, Err stays nil): for callers that have no client context to
// follow, only a deadline. RoundTrip bounds the exchange by dl through the
// socket deadline alone, without the timer of context.WithDeadline and the
// AfterFunc registration a cancellable context needs — two allocations
// and a timer per request on a proxy's hot path. Errors past dl wrap
// context.DeadlineExceeded as with a real deadline. Other APIs (e.g.
// http.Transport) would never time out with it: use it with Pool only.
func DeadlineContext(dl time.Time) context.Context { return &Deadline{At: dl} }

// Deadline is DeadlineContext's context as a value a caller can keep and
// reuse (one per connection, say: no allocation per request); &Deadline
// is the context.Context. It must not change while a request uses it.
type Deadline struct{ At time.Time }

var _ context.Context = (*Deadline)(nil)

func (c *Deadline) Deadline() (time.Time, bool) { return c.At, true }
func (*Deadline) Done() <-chan struct{}         { return nil }
func (*Deadline) Err() error                    { return nil }
func (*Deadline) Value(any) any                 { return nil }

// put returns a healthy connection for reuse.
func (p *Pool) put(pc *pconn) {
	// The connection keeps its deadline while idle: the next arm replaces
	// it (one runtime timer update per request instead of two).
	if p.closed.Load() {
		p.discard(pc)
		return
	}
	select {
	case p.idle <- pc:
	default: // cannot happen: idle has a slot per connection
		p.discard(pc)
	}
}

// discard closes a connection and frees its slot.
func (p *Pool) discard(pc *pconn) {
	pc.c.Close()
	<-p.slots
}

// CloseIdle closes idle connections; after Close, connections are also
// closed as they are released.
func (p *Pool) CloseIdle() {
	for {
		select {
		case pc := <-p.idle:
			p.discard(pc)
		default:
			return
		}
	}
}

func (p *Pool) dial(ctx context.Context) (*pconn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", p.host)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	pc := &pconn{c: c, cr: newConnReader(c), cw: wroteWriter{c: c}}
	pc.br = bufio.NewReaderSize(pc.cr, 32<<10)
	pc.bw = bufio.NewWriterSize(&pc.cw, 32<<10)
	return pc, nil
}

// ErrStale marks a failure on a reused connection before any response
// byte: the backend closed it while idle and never saw the request, so
// resending on a fresh connection is safe even for POST.
var ErrStale = errors.New("stale keep-alive connection")

// Request is one request to send.
type Request struct {
	Method    string
	PathQuery string // e.g. "/v2/models/m/infer?x=1"
	// Header is sent as is, except Host, Content-Length, Expect, the
	// hop-by-hop headers (a proxy must not forward them) and names that
	// Extra sets.
	Header http.Header
	// Extra holds more header lines as name, value pairs, e.g.
	// {"X-Forwarded-For", "127.0.0.1"}; names must be canonical.
	Extra []string
	// RawHeader holds more header lines, each ending in CRLF, written
	// verbatim after Header and Extra. The caller guarantees they are
	// well-formed and free of the headers this client sets or drops (the
	// dispatcher's fast server path filters them while parsing).
	RawHeader []byte
	Body      []byte // nil: no body (and no Content-Length unless POST/PUT)
	// DropResponseHeaders names (lower case) response headers that
	// RoundTripRaw leaves out of RawResponse.Header.
	DropResponseHeaders []string
}

// RoundTrip sends one request and returns the response, whose body must be
// closed. ctx bounds the whole exchange including reading the body. A
// reused connection that turns out stale (ErrStale) is discarded and the
// request resent on the next one, fresh once the idle ones are used up: a
// backend that dropped its idle connections (nginx closes up to 32 at a
// time when it runs short) can leave many stale ones in the pool.
func (p *Pool) RoundTrip(ctx context.Context, req Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		pc, reused, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := p.exchange(ctx, pc, reused, &req)
		if errors.Is(err, ErrStale) && attempt <= cap(p.slots) {
			continue
		}
		return resp, err
	}
}

func (p *Pool) exchange(ctx context.Context, pc *pconn, reused bool, req *Request) (*http.Response, error) {
	stop := p.arm(ctx, pc)
	if err := pc.send(p.host, req); err != nil {
		return p.fail(ctx, pc, stop, reused, err)
	}
	resp, err := http.ReadResponse(pc.br, &http.Request{Method: req.Method})
	if err != nil {
		return p.fail(ctx, pc, stop, false, err)
	}
	resp.Body = &pooledBody{rc: resp.Body, pc: pc, pool: p, stop: stop, reuse: !resp.Close}
	return resp, nil
}

// arm bounds the exchange on pc by ctx: its deadline becomes the socket's,
// and cancellation (the client went away) unblocks reads and writes by
// moving the deadline into the past. The returned stop disarms it.
func (p *Pool) arm(ctx context.Context, pc *pconn) (stop func() bool) {
	dl, _ := ctx.Deadline() // zero: none
	pc.setDeadline(dl)
	if ctx.Done() == nil {
		return notArmed // nothing can cancel it before the deadline
	}
	return context.AfterFunc(ctx, func() { pc.setDeadline(time.Unix(1, 0)) })
}

// deadlineSlack: a connection's deadline is only moved when the new one
// differs by more: consecutive requests with the same timeout then skip
// the runtime timer update (a few percent of a proxy's CPU). A request may
// so time out up to this much early or late.
const deadlineSlack = 2 * time.Millisecond

// setDeadline sets the socket deadline (zero: none) unless it is already
// within deadlineSlack of dl. Safe for concurrent use (the AfterFunc of a
// canceled context calls it).
func (pc *pconn) setDeadline(dl time.Time) {
	var n int64
	if !dl.IsZero() {
		n = dl.UnixNano()
	}
	old := pc.deadline.Load()
	if n == old || n != 0 && old != 0 && max(n-old, old-n) < int64(deadlineSlack) {
		return
	}
	pc.deadline.Store(n)
	_ = pc.c.SetDeadline(dl)
}

func notArmed() bool { return true }

// fail discards pc after an error and classifies it: the context's error
// if it ended, ErrStale when stale (a reused connection failed before any
// response byte), else err.
func (p *Pool) fail(ctx context.Context, pc *pconn, stop func() bool, stale bool, err error) (*http.Response, error) {
	stop()
	p.discard(pc)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("%w (%v)", ctxErr, err)
	}
	// The socket deadline (set from ctx's) may fire a moment before
	// ctx's own timer: report it as the context's deadline all the same.
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return nil, fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	if stale {
		return nil, fmt.Errorf("%w: %v", ErrStale, err)
	}
	return nil, err
}

// writeRequest writes an HTTP/1.1 request head and body. Header values come
// from net/http's server, which rejects CR/LF in them, so they can be
// copied verbatim.
func writeRequest(bw *bufio.Writer, host string, req *Request) {
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.PathQuery)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		if skipHeader(k) || inPairs(req.Extra, k) {
			continue
		}
		for _, v := range vs {
			writeHeader(bw, k, v)
		}
	}
	for i := 0; i+1 < len(req.Extra); i += 2 {
		writeHeader(bw, req.Extra[i], req.Extra[i+1])
	}
	bw.Write(req.RawHeader)
	if req.Body != nil || req.Method == http.MethodPost || req.Method == http.MethodPut {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(req.Body)))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(req.Body)
}

func writeHeader(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// skipHeader: headers this client sets itself, and hop-by-hop headers
// (RFC 9110 §7.6.1), which describe the client's connection, not ours.
func skipHeader(k string) bool {
	switch k {
	case "Host", "Content-Length", "Expect", "Connection", "Proxy-Connection", "Keep-Alive",
		"Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func inPairs(pairs []string, k string) bool {
	for i := 0; i < len(pairs); i += 2 {
		if pairs[i] == k {
			return true
		}
	}
	return false
}

// pooledBody returns the connection to the pool once the body was read to
// the end, and closes it otherwise.
type pooledBody struct {
	rc    io.ReadCloser
	pc    *pconn
	pool  *Pool
	stop  func() bool
	reuse bool
	eof   bool
	done  bool
}

func (b *pooledBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *pooledBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// Drain a little so a short unread tail does not cost the connection.
		_, err := io.CopyN(io.Discard, b.rc, 4<<10)
		b.eof = err == io.EOF
	}
	err := b.rc.Close()
	stopped := b.stop() // false: the context fired and poisoned the deadline
	if b.reuse && b.eof && stopped && err == nil {
		b.pool.put(b.pc)
	} else {
		b.pool.discard(b.pc)
	}
	return err
}
