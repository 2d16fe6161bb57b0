//go:build linux

package modelserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infadapter/infadapter/pkg/dispatcher/evloop"
	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

// EventServer is the serving path of a one-worker server (serve-model
// --event-loop, "auto" turns it on for --threads 1 without dynamic
// batching): one epoll event loop (pkg/dispatcher/evloop) accepts the connections,
// reads and parses OIP v2 inference requests for this model (JSON and
// binary tensor extension, Content-Length bodies) and runs the inference
// inline on the loop's goroutine — no netpoller park/wake of a
// connection goroutine per request. Everything else (health, metadata,
// /metrics, TF Serving REST, chunked bodies, Expect: 100-continue, other
// models, not-ready, oversized bodies, malformed heads) is handed with
// its buffered bytes to the ordinary fast server (NewHTTPServer), which
// keeps the connection from then on.
//
// Why: behind the goroutine server each request woke a connection
// goroutine through the netpoller, and the cgo call of the inference
// handed the goroutine's P to another thread, which then ran the next
// connection's read on the same core, in the middle of the inference:
// ~2.3 context switches per request against ~0.5 here, and 24–50 µs of
// server CPU per request on cnn-m and cnn-m-tta2 (docs/benchmarks.md,
// "Model server", runs K and L).
//
// It is for one worker only: the loop runs one inference at a time, so
// with more workers it would throw their parallelism away (ServeConfig
// refuses --event-loop on with --threads > 1 or dynamic batching). A
// request handed to the fallback server for this model (TF Serving
// :predict, a chunked body) takes the same single worker; while it holds
// it the loop's next inference waits for it, as it would wait behind
// any other request in a one-worker server.
//
// Timeouts as the fast server's: IdleTimeout between requests,
// ReadHeaderTimeout from a head's first byte, ReadTimeout for its body
// from the head's end. Shutdown stops accepting, closes idle
// connections, lets requests being received or answered finish (their
// answers say Connection: close) and waits for them until its context
// ends.
type EventServer struct {
	s  *Server
	l  *evloop.Loop
	fb *httpfast.Server
	hl *httpfast.HandoffListener

	headerTimeout, idleTimeout, readTimeout time.Duration
	log                                     *slog.Logger
	// maxBuffered bounds a connection's read buffer (a head's limit plus
	// the body's); a variable for tests.
	maxBuffered int

	// Owned by the loop.
	conns map[*evConn]struct{}
	lnfd  int
	ln    net.Listener // closed with lnfd (the socket lives until both are closed)
	now   time.Time
	// draining: Shutdown has begun; no new requests after the ones
	// being received or answered.
	draining bool

	// inline counts the requests answered on the loop, handed the
	// connections handed to the fallback (tests check which path ran).
	inline, handed atomic.Int64

	mu         sync.Mutex
	started    bool
	stopped    bool
	finishOnce sync.Once
	done       chan struct{}
}

// NewEventServer returns the event-loop server for s (not yet serving).
func (s *Server) NewEventServer(o httpfast.Options) (*EventServer, error) {
	l, err := evloop.New()
	if err != nil {
		return nil, err
	}
	o = o.WithDefaults()
	e := &EventServer{s: s, l: l, fb: s.NewHTTPServer(o), hl: httpfast.NewHandoffListener(), log: o.Log,
		headerTimeout: o.ReadHeaderTimeout, idleTimeout: o.IdleTimeout, readTimeout: o.ReadTimeout,
		maxBuffered: evMaxHeadSize + int(s.maxBody()),
		conns:       map[*evConn]struct{}{}, lnfd: -1, done: make(chan struct{}), now: time.Now()}
	l.Tick, l.TickEvery = e.tick, time.Second
	return e, nil
}

// Serve serves ln until Shutdown or Close (then it returns
// http.ErrServerClosed), which close ln. ln itself is never Accept'ed:
// the loop accepts from a duplicate of its socket. Call it once.
func (e *EventServer) Serve(ln net.Listener) error {
	fd, err := evloop.ListenerFd(ln)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started || e.stopped {
		e.mu.Unlock()
		unix.Close(fd)
		return http.ErrServerClosed
	}
	e.started = true
	e.hl.SetAddr(ln.Addr())
	e.ln = ln
	go func() { _ = e.fb.Serve(e.hl) }()
	// The loop keeps its P while it sleeps in epoll_wait (see evloop):
	// one more P, so the rest of the program (handed-over connections,
	// the GC) is not starved.
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	go e.l.Run()
	e.mu.Unlock()
	errc := make(chan error, 1)
	e.l.Post(func() {
		e.lnfd = fd
		errc <- e.l.AddListener(fd, &evListener{e: e})
	})
	select {
	case err := <-errc:
		if err != nil {
			_ = e.Close()
			return err
		}
	case <-e.l.Done():
	}
	<-e.done
	return http.ErrServerClosed
}

// Shutdown stops accepting, closes idle connections, and waits until
// the requests being received or answered have been answered (each then
// closes its connection) or ctx ends; then it closes what is left and
// shuts the fallback server down with ctx. It returns ctx's error when
// ctx ended first.
func (e *EventServer) Shutdown(ctx context.Context) error {
	var err error
	if e.markStopped() {
		err = e.drain(ctx)
	}
	e.finish()
	if ferr := e.fb.Shutdown(ctx); err == nil {
		err = ferr
	}
	_ = e.hl.Close()
	return err
}

// Close closes everything at once.
func (e *EventServer) Close() error {
	e.markStopped()
	e.finish()
	err := e.fb.Close()
	_ = e.hl.Close()
	return err
}

// markStopped makes later Serve calls fail; true when the loop was
// serving and this is the first stop.
func (e *EventServer) markStopped() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	first := !e.stopped
	e.stopped = true
	return first && e.started
}

// drain begins the graceful part of Shutdown on the loop and polls it
// until no connection is left, ctx ends, or Close stopped the loop.
func (e *EventServer) drain(ctx context.Context) error {
	e.l.Post(func() {
		e.closeListener()
		e.draining = true
		for c := range e.conns {
			switch {
			case len(c.in) == 0 && len(c.out) == 0:
				c.close()
			case len(c.out) > 0:
				// An answer is being written: close after it (a
				// pipelined request behind it is not served, as in
				// net/http's Shutdown).
				c.closeAfter = true
			}
			// Else a request is being received: serve answers it
			// with Connection: close.
		}
	})
	// net/http polls its connections the same way (from 1 ms up to
	// 500 ms); a drain is over in one inference, so 5 ms steps.
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	left := make(chan int, 1)
	for {
		e.l.Post(func() { left <- len(e.conns) })
		select {
		case n := <-left:
			if n == 0 {
				return nil
			}
		case <-e.l.Done():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-t.C:
		case <-e.l.Done():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finish closes the listener and every connection still on the loop,
// stops it and gives back its P; once.
func (e *EventServer) finish() {
	e.finishOnce.Do(func() {
		e.mu.Lock()
		started := e.started
		e.mu.Unlock()
		if started {
			e.l.Post(func() {
				e.closeListener()
				for c := range e.conns {
					c.close()
				}
			})
			e.l.Close()
			<-e.l.Done()
			runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) - 1)
		} else {
			e.l.Close()
			go e.l.Run() // frees the epoll and eventfd descriptors
		}
		close(e.done)
	})
}

// closeListener stops accepting; on the loop. Both descriptors of the
// listening socket close, so new connections are refused rather than
// left in its backlog.
func (e *EventServer) closeListener() {
	if e.lnfd >= 0 {
		e.l.CloseFd(e.lnfd)
		e.lnfd = -1
	}
	if e.ln != nil {
		_ = e.ln.Close()
		e.ln = nil
	}
}

// tick enforces the timeouts, on the loop: a head must arrive within
// headerTimeout of its first byte, its body within readTimeout of the
// head's end, the next request within idleTimeout of the last read.
func (e *EventServer) tick(now time.Time) {
	e.now = now
	e.l.ResumeListeners() // closeListener forgets a paused listener
	for c := range e.conns {
		switch {
		case c.bodyWait && now.Sub(c.bodySince) > e.readTimeout:
			c.close()
		case !c.bodyWait && len(c.in) > 0 && now.Sub(c.inSince) > e.headerTimeout:
			c.close()
		case len(c.in) == 0 && len(c.out) == 0 && now.Sub(c.last) > e.idleTimeout:
			c.close()
		}
	}
}

type evListener struct{ e *EventServer }

func (h *evListener) Event(uint32) {
	e := h.e
	for range 64 {
		fd, _, err := evloop.Accept(e.lnfd)
		if err != nil {
			if evloop.AcceptExhausted(err) {
				// Paused until the next tick, instead of spinning on
				// the still readable listener.
				e.log.Warn("accept error; pausing accepts for a second", "err", err)
				e.l.PauseListener(e.lnfd)
			}
			return
		}
		c := &evConn{e: e, fd: fd, last: e.now}
		if err := e.l.Add(fd, c); err != nil {
			unix.Close(fd)
			continue
		}
		e.conns[c] = struct{}{}
	}
}

const (
	evReadChunk   = 16 << 10
	evMaxHeadSize = 1 << 20 // net/http's default MaxHeaderBytes
	evKeepBuf     = 64 << 10
)

// evConn is a client connection on the loop.
type evConn struct {
	e          *EventServer
	fd         int
	in, out    []byte
	head       httpfast.Head
	w          evWriter
	eof, dead  bool
	closeAfter bool
	// paused: read stopped with bytes maybe left in the socket (edge
	// triggered: no new event will report them), so serve reads again.
	paused  bool
	last    time.Time // last read
	inSince time.Time // first byte of the pending request
	// bodyWait: the pending request's head is here, its body is not
	// yet whole (since bodySince; ReadTimeout rather than the head's).
	bodyWait  bool
	bodySince time.Time
}

func (c *evConn) Event(ev uint32) {
	if c.dead {
		return
	}
	if ev&(evloop.In|evloop.Hup) != 0 {
		c.read(ev&evloop.Hup != 0)
	}
	if !c.dead && ev&evloop.Out != 0 && len(c.out) > 0 {
		c.flush()
	}
	if !c.dead {
		c.serve()
	}
}

// read reads what the socket has (until EAGAIN, a short read or EOF);
// hup: the event said the peer shut down its side, so a short read does
// not end it (the end of stream came with the same edge and must be read).
func (c *evConn) read(hup bool) {
	c.last = c.e.now
	if len(c.in) == 0 {
		c.inSince = c.e.now
	}
	for {
		var st evloop.ReadStatus
		c.in, st, _ = evloop.ReadMore(c.fd, c.in, evReadChunk)
		switch st {
		case evloop.ReadAgain:
			return
		case evloop.ReadFailed:
			c.close()
			return
		case evloop.ReadEOF:
			c.eof = true
			return
		}
		if st == evloop.ReadShort && !hup {
			return
		}
		if len(c.in) > c.e.maxBuffered {
			// A client pipelining far ahead: serve answers what is
			// buffered, then reads on (paused), so the buffer is bounded.
			c.paused = true
			return
		}
	}
}

// flush writes out; a short write waits for the next Out event.
func (c *evConn) flush() {
	var e syscall.Errno
	if c.out, e = evloop.WriteOut(c.fd, c.out, evKeepBuf); e != 0 {
		c.close()
		return
	}
	if len(c.out) == 0 && c.closeAfter {
		c.close()
	}
}

func (c *evConn) close() {
	if c.dead {
		return
	}
	c.dead = true
	c.e.l.CloseFd(c.fd)
	delete(c.e.conns, c)
}

// serve answers the buffered requests one at a time while the previous
// answer has been written whole.
func (c *evConn) serve() {
	s := c.e.s
	for !c.dead && !c.closeAfter && len(c.out) == 0 {
		if c.paused && len(c.in) <= c.e.maxBuffered/2 {
			c.paused = false
			c.read(false)
			if c.dead {
				return
			}
		}
		b := c.in
		if len(b) == 0 {
			if c.eof || c.e.draining {
				c.close()
			}
			return
		}
		end := httpfast.FindHeadEnd(b)
		if end < 0 {
			if len(b) > evMaxHeadSize || c.eof {
				c.handOff()
			}
			return
		}
		h := &c.head
		if !httpfast.ParseHead(b[:end], h) || !c.e.fast(h) || h.Expect100 || h.ContentLength < 0 ||
			h.ContentLength > s.maxBody() || !s.Ready() {
			c.handOff()
			return
		}
		total := end + int(h.ContentLength)
		if len(b) < total {
			if c.eof {
				c.close()
				return
			}
			if !c.bodyWait {
				c.bodyWait, c.bodySince = true, c.e.now
			}
			if cap(c.in) < total {
				nb := make([]byte, len(c.in), total)
				copy(nb, c.in)
				c.in = nb
				c.read(false)
				if c.dead || len(c.in) < total {
					return
				}
				continue
			}
			return
		}
		// Draining: this is the connection's last answer, and it says so.
		h.Close = h.Close || c.e.draining
		c.answer(h, c.in[end:total])
		c.consume(total)
		if h.Close {
			c.closeAfter = true
		}
		c.flush()
	}
}

// fast: this model's OIP v2 inference path (TF Serving's :predict goes to
// the fallback in this prototype).
func (e *EventServer) fast(h *httpfast.Head) bool {
	route, err := oip.ParsePath(h.Path)
	return err == nil && route.Kind == oip.KindInfer && route.Model == e.s.cfg.Name
}

// answer runs the request inline and appends the answer to c.out, framed
// as httpfast's ResponseWriter frames it.
func (c *evConn) answer(h *httpfast.Head, body []byte) {
	start := time.Now()
	var binHdr []string
	if h.BinLen >= 0 {
		binHdr = []string{strconv.FormatInt(h.BinLen, 10)}
	}
	w := &c.w
	w.reset()
	c.e.s.inferBody(context.Background(), w, oip.KindInfer, body, binHdr, start)
	c.e.inline.Add(1)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	b := httpfast.AppendStatusLine(c.out, w.status)
	b, hasDate := httpfast.AppendHeaderLines(b, w.hdr)
	b = httpfast.AppendEndHead(b, int64(len(w.buf)), hasDate, h.Close)
	c.out = append(b, w.buf...)
}

func (c *evConn) consume(n int) {
	c.inSince, c.bodyWait = c.e.now, false
	c.in = c.in[:copy(c.in, c.in[n:])]
	if len(c.in) == 0 && cap(c.in) > evKeepBuf {
		c.in = nil
	}
}

// handOff gives the connection with its unread bytes to the fallback
// server (the goroutine-per-connection fast server), where it stays.
func (c *evConn) handOff() {
	e := c.e
	e.handed.Add(1)
	e.l.Remove(c.fd)
	c.dead = true
	delete(e.conns, c)
	e.hl.HandFd(c.fd, c.out, c.in)
}

// evWriter collects one answer of inferBody.
type evWriter struct {
	hdr    http.Header
	status int
	buf    []byte
}

var _ http.ResponseWriter = (*evWriter)(nil)

func (w *evWriter) reset() {
	if w.hdr == nil {
		w.hdr = http.Header{}
	}
	clear(w.hdr)
	w.status = 0
	if cap(w.buf) > evKeepBuf {
		w.buf = nil
	}
	w.buf = w.buf[:0]
}

func (w *evWriter) Header() http.Header { return w.hdr }

func (w *evWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 && code <= 999 {
		w.status = code
	}
}

func (w *evWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}
