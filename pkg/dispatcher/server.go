package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/infadapter/infadapter/pkg/dispatcher/h1"
	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

// Server serves a Dispatcher on a listener with a fast path for inference
// requests. A profile of the dispatcher behind net/http's server showed
// most of its CPU in net/http's per-request machinery (request and header
// parsing into maps, a context and a background read goroutine per
// request, response header handling), which is why it reached well under
// half of nginx's throughput as a proxy. The fast path reads each request
// head straight from the connection's buffer, forwards the header lines
// verbatim through h1 and writes the backend's response directly.
//
// It takes only requests that httpfast.ParseHead accepts — "POST <path>
// HTTP/1.1" with a Content-Length body to /v2/models/{m}/infer or
// /v1/models/{m}:predict — and on the first other request hands the
// connection, with the bytes it has buffered, to an http.Server whose
// handler is the Dispatcher itself (health, metadata, chunked bodies,
// HTTP/1.0, malformed requests: net/http serves or rejects them). A
// connection stays with net/http once handed over. Both paths share one
// port and give the same answers (the dispatcher tests run against this
// server).
type Server struct {
	d   *Dispatcher
	std *http.Server
	hl  *httpfast.HandoffListener

	// Timeouts as http.Server's: IdleTimeout between requests,
	// ReadHeaderTimeout for a request head, ReadTimeout for its body.
	idleTimeout, headerTimeout, readTimeout time.Duration

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*fconn]struct{}
	stdOnce  sync.Once
	shutdown atomic.Bool
	done     chan struct{} // closed by Shutdown/Close
}

// ServerOptions are the timeouts of a Server; zero values take the
// defaults noted.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration // default 10 s
	ReadTimeout       time.Duration // default the request timeout
	IdleTimeout       time.Duration // default 2 min
}

// NewServer returns a Server for d (not yet serving; call Serve).
func (d *Dispatcher) NewServer(o ServerOptions) *Server {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = d.timeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	s := &Server{d: d, idleTimeout: o.IdleTimeout, headerTimeout: o.ReadHeaderTimeout, readTimeout: o.ReadTimeout,
		lns: map[net.Listener]struct{}{}, conns: map[*fconn]struct{}{}, done: make(chan struct{})}
	s.std = &http.Server{Handler: d, ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout,
		IdleTimeout: o.IdleTimeout, ErrorLog: nil}
	s.hl = httpfast.NewHandoffListener()
	return s
}

// Serve accepts connections on ln until Shutdown or Close (then it returns
// http.ErrServerClosed) or an accept error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	s.stdOnce.Do(func() {
		s.hl.SetAddr(ln.Addr())
		go func() { _ = s.std.Serve(s.hl) }()
	})
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.d.log.Warn("accept error; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		fc := &fconn{c: c, s: s}
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			c.Close()
			return http.ErrServerClosed
		}
		s.conns[fc] = struct{}{}
		s.mu.Unlock()
		go fc.serve()
	}
}

// Shutdown stops accepting, closes idle connections and waits for busy
// ones to finish their request (both paths), or until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.close()
	stdErr := make(chan error, 1)
	go func() { stdErr <- s.std.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			break
		}
		select {
		case <-ctx.Done():
			s.closeAll()
			return ctx.Err()
		case <-tick.C:
		}
	}
	return <-stdErr
}

// Close closes the listeners and every connection now.
func (s *Server) Close() error {
	s.close()
	s.closeAll()
	return s.std.Close()
}

func (s *Server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Swap(true) {
		return
	}
	close(s.done)
	for ln := range s.lns {
		ln.Close()
	}
}

// closeIdle closes the fast-path connections waiting for a request and
// reports whether none are left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.conns {
		if fc.state.CompareAndSwap(stateIdle, stateClosed) {
			fc.c.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.conns {
		fc.state.Store(stateClosed)
		fc.c.Close()
	}
}

func (s *Server) forget(fc *fconn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
}

const (
	stateIdle   = iota // waiting for (the rest of) a request head
	stateActive        // serving a request
	stateClosed        // closed by Shutdown/Close
)

// Buffer sizes of a fast-path connection. A request head must fit the
// read buffer (a larger one goes to net/http, whose limit is 1 MB).
const (
	fastReadBuf  = 8 << 10
	fastWriteBuf = 8 << 10
	// keepBodyBuf: a connection keeps its request and response buffers
	// between requests up to this size (larger ones are left to the GC).
	keepBodyBuf = 64 << 10
)

// fconn is one client connection on the fast path.
type fconn struct {
	c     net.Conn
	s     *Server
	state atomic.Int32
	br    *bufio.Reader
	bw    *bufio.Writer
	ip    string    // client IP, for X-Forwarded-For
	rdl   time.Time // the read deadline set
	head  httpfast.Head
	body  []byte // request body buffer, reused between requests
	w     fastWriter
	req   proxyReq
}

func (fc *fconn) serve() {
	handedOff := false
	defer func() {
		if err := recover(); err != nil {
			fc.s.d.log.Error("panic serving a connection", "remote", fc.c.RemoteAddr(), "panic", err)
		}
		fc.s.forget(fc)
		if !handedOff {
			fc.c.Close()
		}
	}()
	fc.br = bufio.NewReaderSize(fc.c, fastReadBuf)
	fc.bw = bufio.NewWriterSize(fc.c, fastWriteBuf)
	fc.ip = remoteIP(fc.c.RemoteAddr().String())
	fc.w.bw = fc.bw
	fc.w.hdr = http.Header{}
	for {
		n, err := fc.readHead()
		if err != nil {
			if errors.Is(err, errHandOff) {
				handedOff = fc.handOff()
			}
			return
		}
		if !fc.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by Shutdown
		}
		keep, handOff := fc.serveOne(n)
		if handOff {
			handedOff = fc.handOff()
			return
		}
		keep = keep && !fc.w.close // finish may have found a broken response
		if fc.br.Buffered() == 0 || !keep {
			// Pipelined requests already buffered are answered before
			// flushing, in one write.
			if fc.bw.Flush() != nil {
				return
			}
		}
		if !keep || fc.s.shutdown.Load() {
			return
		}
		fc.state.Store(stateIdle)
	}
}

var errHandOff = errors.New("hand off to net/http")

// setReadDeadline moves the read deadline to dl unless it is already
// within readDeadlineSlack after dl: between back-to-back requests the
// idle deadline then moves once every readDeadlineSlack, not per request
// (a runtime timer update each). A timeout may so fire up to that much
// late, never early.
func (fc *fconn) setReadDeadline(dl time.Time) {
	if !fc.rdl.Before(dl) && fc.rdl.Sub(dl) < readDeadlineSlack {
		return
	}
	fc.rdl = dl.Add(readDeadlineSlack / 2)
	_ = fc.c.SetReadDeadline(fc.rdl)
}

const readDeadlineSlack = time.Second

// readHead waits until the read buffer holds a complete request head and
// returns its length. errHandOff: it does not fit the buffer.
func (fc *fconn) readHead() (int, error) {
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		if n := httpfast.FindHeadEnd(buf); n >= 0 {
			return n, nil
		}
		if len(buf) == fc.br.Size() {
			return 0, errHandOff
		}
		tmo := fc.s.headerTimeout
		if len(buf) == 0 {
			tmo = fc.s.idleTimeout
		}
		fc.setReadDeadline(time.Now().Add(tmo))
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && !errors.Is(err, io.EOF) {
				// Partial head then a timeout or error: as net/http would.
				return 0, errHandOff
			}
			return 0, err
		}
	}
}

// handOff gives the connection, with its unread buffered bytes, to the
// net/http server; false if that server is gone.
func (fc *fconn) handOff() bool {
	if fc.bw.Flush() != nil {
		return false
	}
	_ = fc.c.SetReadDeadline(time.Time{})
	fc.rdl = time.Time{}
	return fc.s.hl.Hand(fc.c, fc.br)
}

// serveOne serves the request whose head is the first n buffered bytes.
// keep: the connection may serve another request. handOff: the request is
// not for the fast path and nothing of it was consumed.
func (fc *fconn) serveOne(n int) (keep, handOff bool) {
	d := fc.s.d
	h := &fc.head
	buf, _ := fc.br.Peek(n)
	if !httpfast.ParseHead(buf, h) {
		return false, true
	}
	route, err := oip.ParsePath(h.Path)
	if err != nil || !route.Kind.IsInference() {
		return false, true
	}
	_, _ = fc.br.Discard(n)
	w := &fc.w
	w.reset(h.Close)
	defer w.finish()

	m := d.model(route.Model)
	if m == nil {
		// As ServeHTTP, which answers before reading the body; the body is
		// skipped if it is here or small, else the connection closes.
		oip.WriteError(w, http.StatusNotFound, fmt.Sprintf("unknown model %q (serving %v)", route.Model, d.Models()))
		return fc.skipBody(h), false
	}
	if h.ContentLength > d.cfg.MaxBodyBytes {
		m.rejected.Inc()
		w.close = true
		oip.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d", h.ContentLength, d.cfg.MaxBodyBytes))
		return false, false
	}
	if h.Expect100 && int64(fc.br.Buffered()) < h.ContentLength {
		_, _ = fc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if fc.bw.Flush() != nil {
			return false, false
		}
	}
	if int64(cap(fc.body)) < h.ContentLength {
		fc.body = make([]byte, h.ContentLength)
	}
	body := fc.body[:h.ContentLength]
	if int64(fc.br.Buffered()) < h.ContentLength {
		fc.setReadDeadline(time.Now().Add(fc.s.readTimeout))
	}
	if _, err := io.ReadFull(fc.br, body); err != nil {
		m.rejected.Inc()
		w.close = true
		oip.WriteError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return false, false
	}
	if d.cfg.ValidateJSON {
		if err := validateInferBody(body, h.BinLen); err != nil {
			m.rejected.Inc()
			oip.WriteError(w, http.StatusBadRequest, err.Error())
			return !h.Close, false
		}
	}
	m.arrivals.add(d.clock.Now())
	r := &fc.req
	*r = proxyReq{method: http.MethodPost, rawQuery: h.RawQuery, rawHeader: h.Fwd, xff: fc.ip}
	if len(h.XFF) > 0 && fc.ip != "" {
		r.xff = string(h.XFF) + ", " + fc.ip
	}
	d.forward(w, r, m, route, body)
	if r.bodyEscaped || cap(fc.body) > keepBodyBuf {
		// An https backend's http.Transport may still be reading it.
		fc.body = nil
	}
	return !h.Close && !w.close, false
}

// skipBody discards the request body when it is already buffered or
// small; false when the connection must close instead.
func (fc *fconn) skipBody(h *httpfast.Head) bool {
	if h.Close || h.Expect100 && int64(fc.br.Buffered()) < h.ContentLength || h.ContentLength > 256<<10 {
		fc.w.close = true
		return false
	}
	fc.setReadDeadline(time.Now().Add(fc.s.readTimeout))
	if _, err := fc.br.Discard(int(h.ContentLength)); err != nil {
		fc.w.close = true
		return false
	}
	return true
}

// fastWriter is the http.ResponseWriter of a fast-path request, so that
// forward and oip.WriteError serve both paths. A response whose header
// declares a Content-Length (a backend's, normally) streams; others are
// buffered to compute it. It writes HTTP/1.1 with keep-alive unless close.
type fastWriter struct {
	bw          *bufio.Writer
	hdr         http.Header
	status      int
	wroteHeader bool
	stream      bool
	declared    int64 // stream: Content-Length sent
	written     int64
	buf         []byte
	close       bool // send Connection: close and close afterwards
	raw         h1.RawResponse
}

var _ http.ResponseWriter = (*fastWriter)(nil)

func (w *fastWriter) reset(close bool) {
	clear(w.hdr)
	w.status, w.wroteHeader, w.stream, w.declared, w.written = 0, false, false, 0, 0
	w.buf = w.buf[:0]
	w.close = close
}

func (w *fastWriter) Header() http.Header { return w.hdr }

func (w *fastWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.hdr["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.stream, w.declared = true, n
			w.writeHead(n)
		}
	}
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.stream {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if w.written+int64(len(p)) > w.declared {
		w.close = true
		return 0, errors.New("response body longer than its Content-Length")
	}
	w.written += int64(len(p))
	return w.bw.Write(p)
}

// finish completes the response in the write buffer (not flushed).
func (w *fastWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.stream {
		w.writeHead(int64(len(w.buf)))
		_, _ = w.bw.Write(w.buf)
		if cap(w.buf) > keepBodyBuf {
			w.buf = nil
		}
		return
	}
	if w.written != w.declared {
		// The backend's body broke off: the client can only tell from the
		// connection closing.
		w.close = true
	}
}

func (w *fastWriter) writeHead(clen int64) {
	httpfast.WriteStatusLine(w.bw, w.status)
	hasDate := httpfast.WriteHeaderLines(w.bw, w.hdr)
	httpfast.EndHead(w.bw, clen, hasDate, w.close)
}

// relayRaw writes a backend's raw response (head lines as received, plus
// X-Infadapter-Variant) as this request's answer; it returns an error
// while reading the body. A body of unknown length (chunked, or until the
// backend closes) is read whole first, to send it with a Content-Length;
// if that fails the client gets a 502 instead.
func (w *fastWriter) relayRaw(rr *h1.RawResponse, variant string) error {
	w.wroteHeader, w.stream, w.status = true, true, rr.StatusCode
	if rr.ContentLength < 0 {
		buf := bytes.NewBuffer(w.buf[:0])
		_, err := buf.ReadFrom(rr.Body)
		w.buf = buf.Bytes()
		if err != nil {
			w.wroteHeader, w.stream, w.buf = false, false, w.buf[:0]
			oip.WriteError(w, http.StatusBadGateway, fmt.Sprintf("%s: reading the response body: %v", variant, err))
			return err
		}
		w.declared, w.written = int64(len(w.buf)), int64(len(w.buf))
		w.writeRawHead(rr, variant)
		_, _ = w.bw.Write(w.buf)
		return nil
	}
	w.declared = rr.ContentLength
	w.writeRawHead(rr, variant)
	n, err := io.Copy(w.bw, rr.Body)
	w.written = n
	if err == nil && n != rr.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return err // finish closes the connection when written != declared
}

func (w *fastWriter) writeRawHead(rr *h1.RawResponse, variant string) {
	httpfast.WriteStatusLine(w.bw, w.status)
	w.bw.Write(rr.Header)
	w.bw.WriteString(oip.VariantHeader)
	w.bw.WriteString(": ")
	w.bw.WriteString(variant)
	w.bw.WriteString("\r\n")
	httpfast.EndHead(w.bw, w.declared, rr.HasDate, w.close)
}
