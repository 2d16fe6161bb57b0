//go:build linux

package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infadapter/infadapter/pkg/dispatcher/evloop"
	"github.com/infadapter/infadapter/pkg/dispatcher/h1"
	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

// EventServer serves a Dispatcher like Server, but its fast path runs on
// a few epoll event loops (package evloop) instead of a goroutine per
// connection: each loop accepts client connections, reads their
// inference requests, sends them on keep-alive backend connections of
// its own and relays the answers, all without blocking. Requests the fast
// path does not take (as Server's: anything but "POST <inference path>
// HTTP/1.1" with a Content-Length body; also Expect: 100-continue) hand
// their connection, with the bytes already read, to net/http with the
// Dispatcher as handler.
type EventServer struct {
	d     *Dispatcher
	opts  ServerOptions
	std   *http.Server
	hl    *httpfast.HandoffListener
	loops []*evLoop

	startOnce   sync.Once
	mu          sync.Mutex
	lnfds       []int
	shutdown    atomic.Bool
	done        chan struct{}
	conns       atomic.Int64  // open fast-path client connections
	next        atomic.Uint32 // round-robin of accepted connections
	addedProcs  int           // Ps Serve added to GOMAXPROCS for the loops (addProcs)
	maxResponse int           // maxEvResponse when created
}

// evLoop is one loop's state, touched only on its thread.
type evLoop struct {
	s     *EventServer
	l     *evloop.Loop
	pools map[*backend]*bpool
	conns map[*cconn]struct{}
	now   time.Time // coarse: updated every tick
}

// NewEventServer returns an EventServer for d with n loops (n < 1:
// DefaultEventLoops()).
func (d *Dispatcher) NewEventServer(o ServerOptions, n int) (*EventServer, error) {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = d.timeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if n < 1 {
		n = DefaultEventLoops()
	}
	n = min(n, maxEventLoops)
	// Timeouts are checked on the loops' ticks: an eighth of the request
	// timeout (1-100 ms) keeps a request's timeout within 12.5 % late.
	tick := min(max(d.timeout/8, time.Millisecond), 100*time.Millisecond)
	s := &EventServer{d: d, opts: o, hl: httpfast.NewHandoffListener(), done: make(chan struct{}), maxResponse: maxEvResponse}
	s.std = &http.Server{Handler: d, ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout, IdleTimeout: o.IdleTimeout}
	for range n {
		l, err := evloop.New()
		if err != nil {
			for _, lp := range s.loops {
				lp.l.Close()
			}
			return nil, err
		}
		lp := &evLoop{s: s, l: l, pools: map[*backend]*bpool{}, conns: map[*cconn]struct{}{}, now: time.Now()}
		l.Tick, l.TickEvery = lp.tick, tick
		s.loops = append(s.loops, lp)
	}
	return s, nil
}

// Serve serves ln until Shutdown or Close (then it returns
// http.ErrServerClosed). ln is never Accept'ed: the loops accept from a
// duplicate of its socket.
func (s *EventServer) Serve(ln net.Listener) error {
	if s.shutdown.Load() {
		return http.ErrServerClosed
	}
	fd, err := evloop.ListenerFd(ln)
	if err != nil {
		return err
	}
	s.startOnce.Do(func() {
		s.hl.SetAddr(ln.Addr())
		go func() { _ = s.std.Serve(s.hl) }()
		// Each loop keeps its P while it waits in epoll_wait (see
		// evloop): give the rest of the program (health checks, the
		// admin API, handed-over connections, the GC) as many Ps as it
		// had. Setting GOMAXPROCS also ends the runtime's own updates of
		// it from the container's CPU limit: the value at Serve stays.
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-s.done: // closed meanwhile: start nothing to stop again
			return
		default:
		}
		addProcs(len(s.loops))
		s.addedProcs = len(s.loops)
		for _, lp := range s.loops {
			go lp.l.Run()
		}
	})
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		unix.Close(fd)
		return http.ErrServerClosed
	default:
	}
	s.lnfds = append(s.lnfds, fd) // closed by Shutdown or stopLoops
	s.mu.Unlock()
	for _, lp := range s.loops {
		errc := make(chan error, 1)
		lp.l.Post(func() { errc <- lp.l.AddListener(fd, &lnHandler{lp: lp, fd: fd}) })
		select { // a loop closed meanwhile never runs what was posted
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-s.done:
			return http.ErrServerClosed
		}
	}
	<-s.done
	return http.ErrServerClosed
}

// Shutdown stops accepting, closes idle connections, waits for busy ones
// to finish their request (or ctx to end), then stops the loops and
// shuts down the net/http server of handed-over connections.
func (s *EventServer) Shutdown(ctx context.Context) error {
	if s.shutdown.Swap(true) {
		return nil
	}
	s.mu.Lock()
	fds := s.lnfds
	s.lnfds = nil
	s.mu.Unlock()
	for _, lp := range s.loops {
		lp.l.Post(func() {
			for _, fd := range fds {
				lp.l.Remove(fd)
			}
			lp.closeIdle()
		})
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	var err error
	t := time.NewTicker(10 * time.Millisecond)
	for s.conns.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
			for _, lp := range s.loops {
				lp.l.Post(lp.closeIdle)
			}
		}
	}
	t.Stop()
	s.stopLoops()
	if e := s.std.Shutdown(ctx); err == nil {
		err = e
	}
	return err
}

// Close stops everything at once.
func (s *EventServer) Close() error {
	s.shutdown.Store(true)
	s.stopLoops()
	return s.std.Close()
}

func (s *EventServer) stopLoops() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	for _, fd := range s.lnfds { // Close without Shutdown
		unix.Close(fd)
	}
	s.lnfds = nil
	for _, lp := range s.loops {
		lp.l.Post(func() {
			for c := range lp.conns {
				c.lingering = false
				c.close()
			}
			for _, p := range lp.pools {
				p.closeIdle()
			}
		})
		lp.l.Close()
	}
	s.hl.Close()
	close(s.done)
	if s.addedProcs > 0 {
		addProcs(-s.addedProcs)
	}
}

// procs counts the Ps that running EventServers hold for their loops,
// above the program's own GOMAXPROCS (base), so that servers started and
// stopped in any order — tests run many in one process — leave the
// program with base + the loops still running, never fewer.
var procs struct {
	sync.Mutex
	base, extra int
}

func addProcs(n int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.extra == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.extra += n
	runtime.GOMAXPROCS(procs.base + procs.extra)
}

// ---- the loop ----

func (lp *evLoop) tick(now time.Time) {
	lp.now = now
	if !lp.s.shutdown.Load() {
		lp.l.ResumeListeners()
	}
	for c := range lp.conns {
		c.checkTimeout(now)
	}
	for b, p := range lp.pools {
		if b.removed.Load() {
			p.closeIdle()
			delete(lp.pools, b)
		}
	}
}

func (lp *evLoop) closeIdle() {
	for c := range lp.conns {
		if !c.busy && len(c.in) == 0 {
			c.close()
		}
	}
}

type lnHandler struct {
	lp *evLoop
	fd int
}

// Event accepts the pending connections and deals them round-robin to
// the loops: a burst of connects (a load generator starting 64 at once)
// would otherwise all land on the loop that happened to wake first.
func (h *lnHandler) Event(uint32) {
	s := h.lp.s
	for range 64 {
		fd, sa, err := evloop.Accept(h.fd)
		if err != nil {
			if evloop.AcceptExhausted(err) {
				// Paused on this loop until its next tick, instead of
				// spinning on the still readable listener.
				s.d.log.Warn("accept error; pausing accepts on one loop", "err", err)
				h.lp.l.PauseListener(h.fd)
			}
			return
		}
		if s.shutdown.Load() {
			unix.Close(fd)
			continue
		}
		ip := sockaddrIP(sa)
		s.conns.Add(1)
		lp := s.loops[int(s.next.Add(1))%len(s.loops)]
		if lp == h.lp {
			lp.adopt(fd, ip)
		} else {
			lp.l.Post(func() { lp.adopt(fd, ip) })
		}
	}
}

// adopt serves an accepted connection on lp.
func (lp *evLoop) adopt(fd int, ip string) {
	c := &cconn{lp: lp, fd: fd, ip: ip, last: lp.now}
	if err := lp.l.Add(fd, c); err != nil {
		unix.Close(fd)
		lp.s.conns.Add(-1)
		return
	}
	lp.conns[c] = struct{}{}
}

func sockaddrIP(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(a.Addr[:]).String()
	case *unix.SockaddrInet6:
		return net.IP(a.Addr[:]).String()
	}
	return ""
}

// ---- client connections ----

const (
	evReadChunk   = 16 << 10
	evMaxHeadSize = 1 << 20 // net/http's default MaxHeaderBytes
)

// cconn is a client connection on a loop.
type cconn struct {
	lp   *evLoop
	fd   int
	ip   string
	in   []byte // read, not yet consumed
	out  []byte // answers not yet written
	head httpfast.Head
	eof  bool
	dead bool
	// closeAfter: close once out is written (Connection: close, 413, …).
	closeAfter bool
	busy       bool // a request is at a backend
	paused     bool // read stopped with bytes maybe left in the socket
	sent100    bool // "100 Continue" went out for the current request
	// lingering: the answer is written and the write side shut down;
	// what the client still sends is read and dropped until it closes
	// or lingerUntil (see httpfast's lingerClose: closing with unread
	// bytes would send RST, and the client might lose the answer).
	lingering   bool
	lingerUntil time.Time
	drained     int
	last        time.Time // last read: the idle timeout counts from it
	// inSince is when the first byte of the request in `in` arrived:
	// ReadHeaderTimeout and ReadTimeout count from it, not from the last
	// read, so a client trickling a byte at a time cannot hold the
	// connection (net/http's ReadTimeout also covers the whole request).
	inSince  time.Time
	bodyWait bool // the head is complete, the body still arriving
	req      evReq
	xffBuf   []byte
}

// evReq is the request a client connection has at a backend.
type evReq struct {
	m        *model
	route    oip.Route
	b        *backend
	be       *bconn
	body     []byte
	total    int // bytes of c.in the request occupies
	xff      []byte
	start    time.Time // arrival, on d's clock
	sent     time.Time
	deadline time.Time // real time
	attempt  int
	stale    int // resends after stale keep-alive connections
	queued   bool
	waiting  bool   // in a bpool's waiters
	seq      uint64 // tells this request's waiters entry from older ones
}

func (c *cconn) Event(ev uint32) {
	if c.dead {
		return
	}
	if !c.lingerUntil.IsZero() {
		c.drain()
		return
	}
	if ev&(evloop.In|evloop.Hup) != 0 {
		c.read(ev&evloop.Hup != 0)
	}
	if c.dead {
		return
	}
	if ev&evloop.Out != 0 && len(c.out) > 0 {
		c.flush()
	}
	if !c.busy && !c.dead {
		c.serve()
	}
}

// read reads what the socket has (until EAGAIN, a short read or EOF).
// hup: the event that woke the loop said the peer shut down its side;
// then a short read does not end it, since the end of stream has to be
// read too — it came with the same edge, and no other event will report it.
func (c *cconn) read(hup bool) {
	c.last = c.lp.now
	if len(c.in) == 0 {
		c.inSince = c.lp.now
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
		if c.busy && len(c.in) > evMaxHeadSize {
			// A client pipelining far ahead: stop reading until the
			// answer (end reads again: no edge will come for what is
			// already in the socket).
			c.paused = true
			return
		}
	}
}

// flush writes out; a short write waits for the next Out event.
func (c *cconn) flush() {
	var e syscall.Errno
	c.out, e = evloop.WriteOut(c.fd, c.out, keepBodyBuf)
	switch {
	case e != 0:
		c.close()
	case len(c.out) == 0 && c.closeAfter:
		c.close()
	}
}

func (c *cconn) close() {
	if c.dead {
		return
	}
	if c.lingering && c.lingerUntil.IsZero() && unix.Shutdown(c.fd, unix.SHUT_WR) == nil {
		c.lingerUntil = time.Now().Add(lingerTime)
		c.in = c.in[:0]
		c.drain()
		return
	}
	c.dead = true
	c.lp.l.CloseFd(c.fd)
	delete(c.lp.conns, c)
	c.lp.s.conns.Add(-1)
}

// drain reads and drops input of a lingering connection; it closes at
// end of stream, on an error, or after lingerBytes.
func (c *cconn) drain() {
	var buf [16 << 10]byte
	for {
		n, e := evloop.Read(c.fd, buf[:])
		switch {
		case e == unix.EAGAIN:
			return
		case e == unix.EINTR:
			continue
		case e != 0 || n == 0:
			c.lingering = false
			c.close()
			return
		}
		if c.drained += n; c.drained > lingerBytes {
			c.lingering = false
			c.close()
			return
		}
	}
}

// checkTimeout enforces the request timeout, the read timeouts and the
// idle timeout.
func (c *cconn) checkTimeout(now time.Time) {
	o := c.lp.s.opts
	switch {
	case !c.lingerUntil.IsZero():
		if now.After(c.lingerUntil) {
			c.lingering = false
			c.close()
		}
	case c.busy:
		if now.After(c.req.deadline) {
			c.timeout()
		}
	case len(c.in) > 0:
		limit := o.ReadTimeout
		if !c.bodyWait {
			limit = min(limit, o.ReadHeaderTimeout)
		}
		if now.Sub(c.inSince) > limit {
			c.close()
		}
	case len(c.out) == 0:
		if now.Sub(c.last) > o.IdleTimeout || c.lp.s.shutdown.Load() {
			c.close()
		}
	}
}

// serve handles the buffered requests, one at a time.
func (c *cconn) serve() {
	d := c.lp.s.d
	for !c.busy && !c.dead && !c.closeAfter {
		b := c.in
		if len(b) == 0 {
			if c.eof {
				c.closeWhenWritten()
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
		if !httpfast.ParseHead(b[:end], h) {
			c.handOff()
			return
		}
		route, ok := d.inferRoute(h.Path)
		if !ok {
			c.handOff()
			return
		}
		m := d.model(route.Model)
		total := int64(end) + h.ContentLength
		if m == nil {
			closing := int64(len(b)) < total || h.Close
			if closing {
				c.closeLingering()
			}
			c.answerError(http.StatusNotFound, fmt.Sprintf("unknown model %q (serving %v)", route.Model, d.Models()), nil)
			if closing {
				return
			}
			c.consume(int(total))
			continue
		}
		if !m.tab.Load().allH1 {
			// An https backend (or the std-transport test switch): only
			// the goroutine path's http.Transport speaks TLS.
			c.handOff()
			return
		}
		if h.ContentLength > d.cfg.MaxBodyBytes {
			m.rejected.Inc()
			c.closeLingering()
			c.answerError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d", h.ContentLength, d.cfg.MaxBodyBytes), nil)
			return
		}
		if int64(len(b)) < total {
			if c.eof {
				c.close()
				return
			}
			c.bodyWait = true
			if h.Expect100 && !c.sent100 {
				c.sent100 = true
				c.out = append(c.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
				c.flush()
				if c.dead {
					return
				}
			}
			if int64(cap(c.in)) < total {
				nb := make([]byte, len(c.in), total)
				copy(nb, c.in)
				c.in = nb
				c.read(false)
				if int64(len(c.in)) >= total {
					continue
				}
			}
			return
		}
		body := b[end:total]
		if d.cfg.ValidateJSON {
			if err := validateInferBody(body, h.BinLen); err != nil {
				m.rejected.Inc()
				c.answerError(http.StatusBadRequest, err.Error(), nil)
				c.consume(int(total))
				if h.Close {
					c.closeWhenWritten()
				}
				continue
			}
		}
		c.start(m, route, body, int(total))
	}
}

// consume drops the first n bytes of in (a served request).
func (c *cconn) consume(n int) {
	c.sent100 = false
	c.bodyWait = false
	c.inSince = c.lp.now // a pipelined request's bytes count from now
	c.in = c.in[:copy(c.in, c.in[n:])]
	if len(c.in) == 0 && cap(c.in) > keepBodyBuf {
		c.in = nil
	}
}

func (c *cconn) closeWhenWritten() {
	c.closeAfter = true
	if len(c.out) == 0 {
		c.close()
	}
}

// closeLingering marks the connection to close, lingering first, once
// the next answer is written, because the request's body was not read.
// Call it before writing that answer, so that the answer says
// "Connection: close": a client that reuses the connection otherwise
// sends its next request into a closing socket and reads EOF.
func (c *cconn) closeLingering() {
	c.lingering, c.closeAfter = true, true
}

// Bounds of lingering, as httpfast's.
const (
	lingerTime  = time.Second
	lingerBytes = 16 << 20
)

// handOff gives the connection with its unread bytes to net/http.
func (c *cconn) handOff() {
	lp := c.lp
	lp.l.Remove(c.fd)
	c.dead = true
	delete(lp.conns, c)
	lp.s.conns.Add(-1)
	lp.s.hl.HandFd(c.fd, c.out, c.in)
}

// answerError appends an error answer ({"error": msg}) to out.
func (c *cconn) answerError(status int, msg string, hdr []byte) {
	w := evErrWriter{}
	oip.WriteError(&w, status, msg)
	c.out = httpfast.AppendStatusLine(c.out, status)
	c.out = append(c.out, "Content-Type: application/json\r\n"...)
	c.out = append(c.out, hdr...)
	c.out = httpfast.AppendEndHead(c.out, int64(len(w.body)), false, c.closeAfter || c.head.Close)
	c.out = append(c.out, w.body...)
	c.flush()
}

// evErrWriter captures oip.WriteError's body.
type evErrWriter struct {
	hdr  http.Header
	body []byte
}

func (w *evErrWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = http.Header{}
	}
	return w.hdr
}
func (w *evErrWriter) WriteHeader(int)             {}
func (w *evErrWriter) Write(p []byte) (int, error) { w.body = append(w.body, p...); return len(p), nil }

// start begins forwarding a validated request (forward's first half).
func (c *cconn) start(m *model, route oip.Route, body []byte, total int) {
	d := c.lp.s.d
	h := &c.head
	start := d.clock.Now()
	m.arrivals.add(start)
	m.inFlight.Inc()
	now := start
	if !d.realClock {
		now = time.Now()
	}
	r := &c.req
	*r = evReq{m: m, route: route, body: body, total: total, start: start, sent: start, deadline: now.Add(d.timeout), xff: c.xffBuf[:0], seq: r.seq + 1}
	if c.ip != "" {
		if len(h.XFF) > 0 {
			r.xff = append(append(r.xff, h.XFF...), ", "...)
		}
		r.xff = append(r.xff, c.ip...)
	}
	c.xffBuf = r.xff
	if h.Close {
		c.closeAfter = true
	}
	b, ref := d.admit(m, start)
	if b == nil {
		var hdr []byte
		if ref.retryAfter > 0 {
			hdr = []byte("Retry-After: " + strconv.Itoa(ref.retryAfter) + "\r\n")
		}
		c.finishError(http.StatusServiceUnavailable, ref.msg, hdr)
		return
	}
	c.busy = true
	c.send(b)
}

// send sends the request to b on a pooled or new connection.
func (c *cconn) send(b *backend) {
	r := &c.req
	r.b = b
	r.queued = b.inFlight.Load()-1 >= b.concurrency()
	p := c.lp.pool(b)
	be, err := p.get()
	if err != nil {
		c.backendFailed(err)
		return
	}
	if be == nil {
		// Every connection the loop may open to b is busy: wait for one
		// (bounded by the request's timeout, like h1.Pool's waiters).
		r.waiting = true
		p.waiters = append(p.waiters, waiter{c, r.seq})
		return
	}
	c.sendOn(be)
}

// sendOn writes the current request to be.
func (c *cconn) sendOn(be *bconn) {
	r := &c.req
	r.be = be
	be.cur = c
	be.out = appendRequest(be.out[:0], be.p.host, r.b.path(r.route), c.head.RawQuery, c.head.Fwd, r.xff, r.body)
	if !be.connecting {
		be.flush()
	}
}

func appendRequest(b []byte, host, path, query string, fwd, xff, body []byte) []byte {
	b = append(b, "POST "...)
	b = append(b, path...)
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if len(xff) > 0 {
		b = append(b, "X-Forwarded-For: "...)
		b = append(b, xff...)
		b = append(b, "\r\n"...)
	}
	b = append(b, fwd...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// finishError answers the current request with an error and ends it
// (it was counted in flight, but holds no backend).
func (c *cconn) finishError(status int, msg string, hdr []byte) {
	c.req.m.inFlight.Dec()
	c.answerError(status, msg, hdr)
	c.end()
}

// end finishes the current request and serves the next buffered one.
func (c *cconn) end() {
	c.busy = false
	c.req.be = nil
	c.consume(c.req.total)
	c.req.body = nil
	if c.dead {
		return
	}
	if c.closeAfter {
		c.closeWhenWritten()
		return
	}
	if c.paused {
		c.paused = false
		c.read(false)
	}
	if !c.dead {
		c.serve()
	}
}

// backendFailed handles a failed exchange with the current backend
// before an answer: one retry on another variant, else 502 (forward's).
func (c *cconn) backendFailed(err error) {
	d := c.lp.s.d
	r := &c.req
	b, m := r.b, r.m
	if b.fail(d.clock.Now(), d.cfg) {
		d.metrics.ejections.WithLabelValues(m.name, b.spec.Variant).Inc()
		d.log.Warn("backend ejected", "model", m.name, "variant", b.spec.Variant, "url", b.spec.URL, "err", err)
	}
	var nb *backend
	if r.attempt == 0 && !c.dead && time.Now().Before(r.deadline) {
		nb = d.acquire(m, d.clock.Now().UnixNano(), b)
	}
	if nb == nil {
		b.requests[OutcomeConnError].Inc()
		b.release()
		r.m.inFlight.Dec()
		c.answerError(http.StatusBadGateway, fmt.Sprintf("%s at %s: %v", b.spec.Variant, b.spec.URL, err), nil)
		c.end()
		return
	}
	b.release()
	m.retries.Inc()
	r.attempt++
	r.stale = 0
	r.sent = d.clock.Now()
	c.send(nb)
}

// brokenAnswer ends a request whose backend sent a head (status) and
// then failed (err) before the body was complete: 502 to the client.
func (c *cconn) brokenAnswer(status int, err error) {
	d := c.lp.s.d
	r := &c.req
	d.account(r.m, r.b, status, err, r.start, r.sent, r.queued)
	r.b.release()
	r.m.inFlight.Dec()
	c.answerError(http.StatusBadGateway, fmt.Sprintf("%s: reading the response body: %v", r.b.spec.Variant, err), nil)
	c.end()
}

// timeout answers 504 for a request past its deadline.
func (c *cconn) timeout() {
	d := c.lp.s.d
	r := &c.req
	r.waiting = false
	if r.be != nil {
		r.be.cur = nil
		r.be.close()
	}
	r.b.requests[OutcomeTimeout].Inc()
	r.b.release()
	r.m.inFlight.Dec()
	c.answerError(http.StatusGatewayTimeout, fmt.Sprintf("%s: no answer within %v: %v", r.b.spec.Variant, d.timeout, context.DeadlineExceeded), nil)
	c.end()
}

// answered relays a complete backend answer (status, raw header lines,
// body) and ends the request.
func (c *cconn) answered(rr *h1.RawResponse, body []byte) {
	d := c.lp.s.d
	r := &c.req
	if !c.dead {
		c.out = httpfast.AppendStatusLine(c.out, rr.StatusCode)
		c.out = append(c.out, rr.Header...)
		c.out = append(c.out, r.b.variantLine...)
		c.out = httpfast.AppendEndHead(c.out, int64(len(body)), rr.HasDate, c.closeAfter)
		c.out = append(c.out, body...)
		c.flush()
	}
	d.account(r.m, r.b, rr.StatusCode, nil, r.start, r.sent, r.queued)
	r.b.release()
	r.m.inFlight.Dec()
	c.end()
}

// ---- backend connections ----

// bpool is a loop's keep-alive connections to one backend.
type bpool struct {
	lp      *evLoop
	b       *backend
	host    string
	addr    *net.TCPAddr
	err     error
	idle    []*bconn
	open    int // connections, idle or not
	max     int // this loop's share of MaxConnsPerBackend
	waiters []waiter
}

// waiter is a request waiting for a connection of a full pool.
type waiter struct {
	c   *cconn
	seq uint64
}

func (w waiter) valid(b *backend) bool {
	r := &w.c.req
	return !w.c.dead && w.c.busy && r.waiting && r.seq == w.seq && r.b == b
}

func (lp *evLoop) pool(b *backend) *bpool {
	if p := lp.pools[b]; p != nil {
		return p
	}
	host := b.base[len("http://"):]
	n := len(lp.s.loops)
	p := &bpool{lp: lp, b: b, host: host, max: max(1, (lp.s.d.cfg.MaxConnsPerBackend+n-1)/n)}
	// Resolved once per loop (a blocking lookup for a name; backends are
	// normally IP addresses or cluster names resolved in microseconds).
	p.addr, p.err = net.ResolveTCPAddr("tcp", host)
	lp.pools[b] = p
	return p
}

// get returns an idle connection, a new one, or nil when the pool is full.
func (p *bpool) get() (*bconn, error) {
	if n := len(p.idle); n > 0 {
		be := p.idle[n-1]
		p.idle = p.idle[:n-1]
		be.reused = true
		return be, nil
	}
	if p.open >= p.max {
		return nil, nil
	}
	return p.dial()
}

func (p *bpool) dial() (*bconn, error) {
	if p.err != nil {
		return nil, p.err
	}
	fd, err := evloop.Dial(p.addr)
	if err != nil {
		return nil, err
	}
	be := &bconn{p: p, fd: fd, connecting: true}
	if err := p.lp.l.Add(fd, be); err != nil {
		unix.Close(fd)
		return nil, err
	}
	p.open++
	return be, nil
}

// put takes back a connection after a complete exchange: to the first
// waiting request, else to the idle list. be's last response (in, body)
// stays readable until its next read.
func (p *bpool) put(be *bconn) {
	be.cur = nil
	be.in = be.in[:0]
	be.body = be.body[:0]
	be.chunkPos = 0
	if p.b.removed.Load() {
		be.close()
		return
	}
	if w, ok := p.nextWaiter(); ok {
		be.reused = true
		w.c.req.waiting = false
		w.c.sendOn(be)
		return
	}
	p.idle = append(p.idle, be)
}

func (p *bpool) nextWaiter() (waiter, bool) {
	for len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters[0] = waiter{}
		p.waiters = p.waiters[1:]
		if w.valid(p.b) {
			return w, true
		}
	}
	p.waiters = nil
	return waiter{}, false
}

// closed notes that one of p's connections closed: a waiting request may
// open a new one.
func (p *bpool) closed() {
	p.open--
	if p.open >= p.max {
		return
	}
	w, ok := p.nextWaiter()
	if !ok {
		return
	}
	w.c.req.waiting = false
	be, err := p.dial()
	if err != nil {
		w.c.backendFailed(err)
		return
	}
	w.c.sendOn(be)
}

func (p *bpool) closeIdle() {
	idle := p.idle
	p.idle = nil
	for _, be := range idle {
		be.close()
	}
}

// maxEvResponse bounds a backend response on the event loop, which holds
// each answer whole in memory before relaying it (Server streams it).
// A variable for tests.
var maxEvResponse = 64 << 20

type errResponseTooLarge struct{ limit int }

func (e errResponseTooLarge) Error() string {
	return fmt.Sprintf("response larger than the event-loop server's limit of %d bytes", e.limit)
}

// bconn is a connection to a backend.
type bconn struct {
	p          *bpool
	fd         int
	connecting bool
	reused     bool // had an exchange before the current one
	dead       bool
	cur        *cconn // the client whose request is on it
	out        []byte
	in         []byte
	resp       h1.RawResponse
	headLen    int // 0: head not parsed yet
	reuse      bool
	chunked    bool
	body       []byte // a chunked body, decoded
	chunkPos   int    // bytes of in after the head that are decoded into body
}

func (be *bconn) Event(ev uint32) {
	if be.dead {
		return
	}
	if be.connecting {
		if ev&(evloop.Out|evloop.Hup) == 0 {
			return
		}
		if err := evloop.ConnectError(be.fd); err != nil {
			be.failed(err)
			return
		}
		be.connecting = false
		be.flush()
		if be.dead {
			return
		}
	} else if ev&evloop.Out != 0 && len(be.out) > 0 {
		be.flush()
		if be.dead {
			return
		}
	}
	if ev&(evloop.In|evloop.Hup) != 0 {
		be.read(ev&evloop.Hup != 0)
	}
}

func (be *bconn) flush() {
	var e syscall.Errno
	if be.out, e = evloop.WriteOut(be.fd, be.out, keepBodyBuf); e != 0 {
		be.failed(e)
	}
}

// read reads and parses what the socket has; hup as in cconn.read.
func (be *bconn) read(hup bool) {
	for {
		var st evloop.ReadStatus
		var e syscall.Errno
		be.in, st, e = evloop.ReadMore(be.fd, be.in, evReadChunk)
		switch st {
		case evloop.ReadAgain:
			return
		case evloop.ReadFailed:
			be.failed(e)
			return
		case evloop.ReadEOF:
			be.eof()
			return
		}
		if be.cur == nil {
			be.close() // an idle connection got bytes: not HTTP we can use
			return
		}
		if be.parse() || be.dead {
			return
		}
		if st == evloop.ReadShort && !hup {
			return
		}
	}
}

// parse handles the response read so far; true when it is complete (and
// relayed) or failed.
func (be *bconn) parse() bool {
	for be.headLen == 0 {
		n, reuse, chunked, err := h1.ParseRawHead(be.in, http.MethodPost, dropVariantHeader, &be.resp)
		if errors.Is(err, h1.ErrIncomplete) {
			return false
		}
		if err != nil {
			be.failed(err)
			return true
		}
		if code := be.resp.StatusCode; code < 200 {
			// An interim answer (100 Continue, 103 Early Hints): the
			// final one follows. 101 would switch protocols: not here.
			if code == http.StatusSwitchingProtocols {
				be.failed(errors.New("backend switched protocols (101)"))
				return true
			}
			be.in = be.in[:copy(be.in, be.in[n:])]
			continue
		}
		be.headLen, be.reuse, be.chunked = n, reuse, chunked
		if be.resp.ContentLength > int64(be.p.lp.s.maxResponse) {
			be.failed(errResponseTooLarge{be.p.lp.s.maxResponse})
			return true
		}
	}
	if lim := be.p.lp.s.maxResponse; len(be.in)-be.headLen > lim || len(be.body) > lim {
		be.failed(errResponseTooLarge{be.p.lp.s.maxResponse})
		return true
	}
	if be.chunked {
		// Decoded as it comes and relayed with a Content-Length, as
		// Server does.
		out, n, done, err := h1.DecodeChunked(be.body, be.in[be.headLen+be.chunkPos:])
		be.body, be.chunkPos = out, be.chunkPos+n
		if err != nil {
			be.failed(err)
			return true
		}
		if !done {
			return false
		}
		extra := len(be.in) > be.headLen+be.chunkPos
		be.complete(be.body, be.reuse && !extra)
		return true
	}
	cl := be.resp.ContentLength
	if cl < 0 {
		return false // until EOF
	}
	end := int64(be.headLen) + cl
	if int64(len(be.in)) < end {
		if int64(cap(be.in)) < end {
			nb := make([]byte, len(be.in), end)
			copy(nb, be.in)
			be.in = nb
		}
		return false
	}
	extra := int64(len(be.in)) > end
	be.complete(be.in[be.headLen:end], be.reuse && !extra)
	return true
}

func (be *bconn) complete(body []byte, reuse bool) {
	c := be.cur
	be.headLen = 0
	if len(be.out) > 0 {
		// The backend answered before it had the whole request (an early
		// error): the rest of it is unsent, the connection unusable.
		reuse = false
	}
	c.req.be = nil
	be.cur = nil
	// Back to the pool first, so that the client's next request (answered
	// serves it) can use it; body and be.resp stay intact until answered
	// has copied them (nothing reads into be.in before the next event).
	if reuse {
		be.p.put(be)
	} else {
		be.close()
	}
	c.answered(&be.resp, body)
}

func (be *bconn) eof() {
	if be.cur != nil && be.headLen > 0 && be.resp.ContentLength < 0 {
		be.complete(be.in[be.headLen:], false)
		return
	}
	be.failed(io.ErrUnexpectedEOF)
}

// failed handles a broken connection: a stale keep-alive connection
// (reused, nothing received) resends on a new one; else the exchange
// failed (backendFailed).
func (be *bconn) failed(err error) {
	c := be.cur
	stale := be.reused && len(be.in) == 0
	gotHead, status := be.headLen > 0, be.resp.StatusCode
	be.close()
	if c == nil {
		return
	}
	r := &c.req
	r.be = nil
	if stale && r.stale < 8 {
		r.stale++
		c.send(r.b)
		return
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = &net.OpError{Op: "proxy", Net: "tcp", Addr: be.p.addr, Err: os.NewSyscallError("io", errno)}
	}
	if gotHead {
		// The backend answered and broke off in the body: no retry (it
		// has done the work), a connection error on its count.
		c.brokenAnswer(status, err)
		return
	}
	c.backendFailed(err)
}

func (be *bconn) close() {
	if be.dead {
		return
	}
	be.dead = true
	be.headLen = 0
	if be.cur == nil {
		// An idle connection the backend closed (nginx drops idle ones
		// after its keepalive_timeout): out of the idle list, or a later
		// request would write to a closed — or by then reused — fd.
		p := be.p
		if i := slices.Index(p.idle, be); i >= 0 {
			p.idle = slices.Delete(p.idle, i, i+1)
		}
	}
	be.p.lp.l.CloseFd(be.fd)
	be.p.closed()
}
