package httpfast

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/httptok"
)

// Handler serves the requests a Server takes on its fast path.
type Handler interface {
	// Fast reports whether the request with head h (accepted by ParseHead)
	// is served by ServeFast; if not, the connection, this request
	// included, is handed to the fallback net/http server. It must not
	// keep h.
	Fast(h *Head) bool
	// ServeFast serves one request: it reads the body with c.ReadBody (or
	// skips it with c.SkipBody) and writes the answer to w, which buffers
	// it; the Server sends it with a Content-Length once ServeFast
	// returns. An answer whose length is known can instead be streamed
	// (w.WriteRawHead). It returns false when the connection must close
	// after the answer (also when the body was not read).
	ServeFast(c *Conn, h *Head, w *ResponseWriter) (keep bool)
}

// Options configure a Server; zero values take the defaults noted.
type Options struct {
	// Fallback serves every request the fast path does not take (required).
	Fallback http.Handler
	// Timeouts as http.Server's: IdleTimeout between requests (default
	// 2 min), ReadHeaderTimeout for a request head (default 10 s),
	// ReadTimeout for a body (default 1 min).
	IdleTimeout, ReadHeaderTimeout, ReadTimeout time.Duration
	// Log receives panics of ServeFast and accept errors (default: discard).
	Log *slog.Logger
}

// Buffer sizes of a connection. A request head must fit the read buffer
// (a larger one goes to net/http, whose limit is 1 MB).
const (
	readBufSize  = 8 << 10
	writeBufSize = 8 << 10
	// keepBuf: a ResponseWriter keeps its body buffer between requests up
	// to this size (larger ones are left to the GC).
	keepBuf = 64 << 10
)

// Server serves HTTP/1.1 on a listener with a fast path for the requests
// its Handler takes and net/http (Options.Fallback) for the rest, on the
// same port (see the package comment). A connection starts on the fast
// path; on the first request the fast path does not take, it is handed,
// with the bytes already buffered, to an http.Server and stays there.
type Server struct {
	h   Handler
	std *http.Server
	hl  *HandoffListener
	log *slog.Logger

	idleTimeout, headerTimeout, readTimeout time.Duration

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*Conn]struct{}
	stdOnce  sync.Once
	shutdown atomic.Bool
}

// WithDefaults returns o with its zero fields set to the defaults noted
// on Options (servers that keep their own timeouts take them from here).
func (o Options) WithDefaults() Options {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// NewServer returns a Server for h (not yet serving; call Serve).
func NewServer(h Handler, o Options) *Server {
	o = o.WithDefaults()
	s := &Server{h: h, log: o.Log, idleTimeout: o.IdleTimeout, headerTimeout: o.ReadHeaderTimeout, readTimeout: o.ReadTimeout,
		lns: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{}, hl: NewHandoffListener()}
	s.std = &http.Server{Handler: o.Fallback, ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout,
		IdleTimeout: o.IdleTimeout}
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
				s.log.Warn("accept error; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		fc := &Conn{c: c, s: s}
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
	for !s.closeIdle() {
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
	for ln := range s.lns {
		ln.Close()
	}
	s.hl.Close()
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

func (s *Server) forget(fc *Conn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
}

const (
	stateIdle   = iota // waiting for (the rest of) a request head
	stateActive        // serving a request
	stateClosed        // closed by Shutdown/Close
)

// Conn is one client connection on the fast path.
type Conn struct {
	c     net.Conn
	s     *Server
	state atomic.Int32
	br    *bufio.Reader
	bw    *bufio.Writer
	rdl   time.Time // the read deadline set
	head  Head
	w     ResponseWriter
	value any // the Handler's (SetValue)
	// unread: the current request's body has not been read (ReadBody or
	// SkipBody clear it); closing then lingers (see lingerClose).
	unread bool
}

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// Value returns what the Handler stored with SetValue on this connection
// (nil at first).
func (c *Conn) Value() any { return c.value }

// SetValue stores per-connection state of the Handler (buffers reused
// between the connection's requests, say); the connection drops it when
// it ends.
func (c *Conn) SetValue(v any) { c.value = v }

func (c *Conn) serve() {
	handedOff := false
	defer func() {
		if err := recover(); err != nil {
			c.s.log.Error("panic serving a connection", "remote", c.c.RemoteAddr(), "panic", err)
		}
		c.s.forget(c)
		if !handedOff {
			if c.unread && c.state.Load() != stateClosed {
				c.lingerClose()
			}
			c.c.Close()
		}
	}()
	c.br = bufio.NewReaderSize(c.c, readBufSize)
	c.bw = bufio.NewWriterSize(c.c, writeBufSize)
	c.w.hdr = http.Header{}
	c.w.bw = c.bw
	h := &c.head
	for {
		n, err := c.readHead()
		if err != nil {
			if errors.Is(err, errHandOff) {
				handedOff = c.handOff()
			}
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by Shutdown
		}
		buf, _ := c.br.Peek(n)
		if !ParseHead(buf, h) || !c.s.h.Fast(h) {
			handedOff = c.handOff()
			return
		}
		_, _ = c.br.Discard(n)
		c.unread = h.ContentLength > 0
		c.w.reset(h.Close)
		keep := c.s.h.ServeFast(c, h, &c.w) && !h.Close && !c.w.close
		c.w.close = !keep
		c.w.finish()
		keep = keep && !c.w.close
		if c.br.Buffered() == 0 || !keep {
			// Pipelined requests already buffered are answered before
			// flushing, in one write.
			if c.bw.Flush() != nil {
				return
			}
		}
		if !keep || c.s.shutdown.Load() {
			return
		}
		// The next read on a keep-alive connection nearly always fails
		// with EAGAIN first (the client sends its next request only after
		// reading this answer), a wasted read(2) per request. It cannot be
		// skipped through syscall.RawConn (a callback that declines the
		// first try to wait for readiness): RawConn.Read resets the
		// descriptor's readiness before calling it, so a request that
		// arrived in between would never wake the wait (tried: tests hung
		// until the idle timeout).
		c.state.Store(stateIdle)
	}
}

var errHandOff = errors.New("hand off to net/http")

// setReadDeadline moves the read deadline to dl unless it is already
// within readDeadlineSlack after dl: between back-to-back requests the
// idle deadline then moves once every readDeadlineSlack, not per request
// (a runtime timer update each). A timeout may so fire up to that much
// late, never early.
func (c *Conn) setReadDeadline(dl time.Time) {
	if !c.rdl.Before(dl) && c.rdl.Sub(dl) < readDeadlineSlack {
		return
	}
	c.rdl = dl.Add(readDeadlineSlack / 2)
	_ = c.c.SetReadDeadline(c.rdl)
}

const readDeadlineSlack = time.Second

// readHead waits until the read buffer holds a complete request head and
// returns its length. errHandOff: it does not fit the buffer, or it broke
// off (net/http then answers or closes as it would).
func (c *Conn) readHead() (int, error) {
	var headDL time.Time
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if n := FindHeadEnd(buf); n >= 0 {
			return n, nil
		}
		if len(buf) == c.br.Size() {
			return 0, errHandOff
		}
		// Idle until the first byte, then ReadHeaderTimeout from that
		// byte on, however slowly the rest arrives (as in net/http): a
		// client trickling a byte at a time must not hold the connection.
		if len(buf) == 0 {
			c.setReadDeadline(time.Now().Add(c.s.idleTimeout))
		} else {
			if headDL.IsZero() {
				headDL = time.Now().Add(c.s.headerTimeout)
			}
			c.setReadDeadline(headDL)
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && !errors.Is(err, io.EOF) {
				return 0, errHandOff
			}
			return 0, err
		}
	}
}

// handOff gives the connection, with its unread buffered bytes, to the
// net/http server; false if that server is gone.
func (c *Conn) handOff() bool {
	if c.bw.Flush() != nil {
		return false
	}
	_ = c.c.SetReadDeadline(time.Time{})
	c.rdl = time.Time{}
	return c.s.hl.Hand(c.c, c.br)
}

// ReadBody reads the request body, h.ContentLength bytes, into dst
// (len(dst) must be h.ContentLength), answering Expect: 100-continue
// first when the body is not already here. After an error the connection
// must close.
func (c *Conn) ReadBody(h *Head, dst []byte) error {
	if int64(len(dst)) != h.ContentLength {
		return errors.New("httpfast: ReadBody buffer does not match Content-Length")
	}
	if int64(c.br.Buffered()) < h.ContentLength {
		if h.Expect100 {
			_, _ = c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := c.bw.Flush(); err != nil {
				return err
			}
		}
		c.setReadDeadline(time.Now().Add(c.s.readTimeout))
	}
	_, err := io.ReadFull(c.br, dst)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	c.unread = err != nil
	return err
}

// Bounds of lingerClose.
const (
	lingerTime  = time.Second
	lingerBytes = 16 << 20
)

// lingerClose runs before closing a connection whose last request's body
// was not read (a 413, a 503 before the body): it sends FIN, then reads
// and drops what the client still sends, for up to lingerTime or
// lingerBytes. Closing with unread data makes the kernel send RST, and a
// client still writing its body then gets "connection reset" instead of
// the answer (net/http waits after its FIN for the same reason).
func (c *Conn) lingerClose() {
	cw, ok := c.c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.br, lingerBytes)
}

// SkipBody discards the request body when it is already buffered or
// small (256 kB); false when the connection must close instead.
func (c *Conn) SkipBody(h *Head) bool {
	if h.Close || h.Expect100 && int64(c.br.Buffered()) < h.ContentLength || h.ContentLength > 256<<10 {
		return false
	}
	c.setReadDeadline(time.Now().Add(c.s.readTimeout))
	_, err := c.br.Discard(int(h.ContentLength))
	c.unread = err != nil
	return err == nil
}

// ResponseWriter is the http.ResponseWriter of a fast-path request. It
// buffers the body and sends it with a Content-Length; it writes HTTP/1.1
// with keep-alive unless the connection closes afterwards. An answer
// whose length is known up front can be streamed instead (WriteRawHead):
// a proxy relays a backend's answer as it comes.
type ResponseWriter struct {
	hdr         http.Header
	status      int
	wroteHeader bool
	buf         []byte
	close       bool

	bw                *bufio.Writer // the connection's
	stream            bool          // WriteRawHead was called
	declared, written int64         // stream: Content-Length sent, body bytes written
}

var (
	_ http.ResponseWriter = (*ResponseWriter)(nil)
	_ io.ReaderFrom       = (*ResponseWriter)(nil)
)

// errBodyTooLong: a streamed body longer than its Content-Length.
var errBodyTooLong = errors.New("httpfast: response body longer than its Content-Length")

func (w *ResponseWriter) reset(closing bool) {
	clear(w.hdr)
	w.status, w.wroteHeader, w.close = 0, false, closing
	w.stream, w.declared, w.written = false, 0, 0
	if cap(w.buf) > keepBuf {
		w.buf = nil
	}
	w.buf = w.buf[:0]
}

// Header is the response header; Content-Length, Connection,
// Transfer-Encoding, Keep-Alive, Trailer and Upgrade in it are ignored.
func (w *ResponseWriter) Header() http.Header { return w.hdr }

// WriteHeader sets the status (the first call wins; 1xx are ignored).
func (w *ResponseWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 || code > 999 {
		return
	}
	w.wroteHeader, w.status = true, code
}

// Write appends p to the body (streamed: writes it to the connection's
// buffer; more than the declared length is an error).
func (w *ResponseWriter) Write(p []byte) (int, error) {
	if w.stream {
		if w.written+int64(len(p)) > w.declared {
			w.close = true
			return 0, errBodyTooLong
		}
		w.written += int64(len(p))
		return w.bw.Write(p)
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// ReadFrom writes what r yields until EOF as Write would (so io.Copy into
// a streamed answer reads straight into the connection's buffer). A
// streamed answer must not get more than its declared length from r: the
// excess is already buffered when it is noticed, so the connection then
// closes after it.
func (w *ResponseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.stream {
		n, err := w.bw.ReadFrom(r)
		w.written += n
		if w.written > w.declared {
			w.close = true
			if err == nil {
				err = errBodyTooLong
			}
		}
		return n, err
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	buf := bytes.NewBuffer(w.buf)
	n, err := buf.ReadFrom(r)
	w.buf = buf.Bytes()
	return n, err
}

// CloseAfter makes the connection close after this answer (sent with
// Connection: close unless the head was already written).
func (w *ResponseWriter) CloseAfter() { w.close = true }

// WriteRawHead starts a streamed answer of exactly clen body bytes: it
// writes the head to the connection's buffer now — the status line, the
// given header lines verbatim (each ending in CRLF; the caller leaves out
// Content-Length, Connection, Transfer-Encoding and the other framing
// and hop-by-hop fields), Header()'s fields, a Date unless hasDate,
// Content-Length and Connection: close when closing — and the body
// written afterwards (Write, ReadFrom) goes straight after it. If fewer
// than clen bytes follow, the connection closes after them, the only way
// left to tell the client the body broke off. Pipelined answers are still
// sent in one write. It does nothing after the first Write, WriteRawHead
// or a status set with WriteHeader.
func (w *ResponseWriter) WriteRawHead(status int, hasDate bool, clen int64, lines ...[]byte) {
	if w.wroteHeader || w.stream || status < 200 || status > 999 || clen < 0 {
		return
	}
	w.wroteHeader, w.status, w.stream, w.declared = true, status, true, clen
	WriteStatusLine(w.bw, status)
	for _, l := range lines {
		w.bw.Write(l)
	}
	if len(w.hdr) > 0 && WriteHeaderLines(w.bw, w.hdr) {
		hasDate = true
	}
	EndHead(w.bw, clen, hasDate, w.close)
}

// finish completes the answer in the connection's buffer (not flushed):
// a buffered one is written whole; a streamed one that is short makes
// the connection close.
func (w *ResponseWriter) finish() {
	if w.stream {
		if w.written != w.declared {
			w.close = true
		}
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	WriteStatusLine(w.bw, w.status)
	hasDate := WriteHeaderLines(w.bw, w.hdr)
	EndHead(w.bw, int64(len(w.buf)), hasDate, w.close)
	w.bw.Write(w.buf)
}

// WriteStatusLine writes "HTTP/1.1 <code> <reason>" and CRLF to bw.
func WriteStatusLine(bw *bufio.Writer, code int) {
	bw.Write(AppendStatusLine(bw.AvailableBuffer(), code))
}

// AppendStatusLine appends "HTTP/1.1 <code> <reason>" and CRLF to b.
func AppendStatusLine(b []byte, code int) []byte {
	if code == http.StatusOK {
		return append(b, "HTTP/1.1 200 OK\r\n"...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if t := http.StatusText(code); t != "" {
		b = append(b, t...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// WriteHeaderLines writes hdr's fields to bw, leaving out the ones the
// server sets itself (Content-Length, Connection, Transfer-Encoding,
// Keep-Alive, Trailer, Upgrade) and names that are not tokens, and with CR
// and LF in values replaced by spaces, as net/http does. It reports
// whether hdr has a Date.
func WriteHeaderLines(bw *bufio.Writer, hdr http.Header) (hasDate bool) {
	b, hasDate := AppendHeaderLines(bw.AvailableBuffer(), hdr)
	bw.Write(b)
	return hasDate
}

// AppendHeaderLines appends what WriteHeaderLines writes to b.
func AppendHeaderLines(b []byte, hdr http.Header) (_ []byte, hasDate bool) {
	for k, vs := range hdr {
		switch k {
		case "Content-Length", "Connection", "Transfer-Encoding", "Keep-Alive", "Trailer", "Upgrade":
			continue
		case "Date":
			hasDate = true
		}
		if !validHeaderName(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := 0; i < len(v); i++ {
				if c := v[i]; c == '\r' || c == '\n' {
					b = append(b, ' ')
				} else {
					b = append(b, c)
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	return b, hasDate
}

// EndHead ends a response head: Date (unless the header had one),
// Content-Length clen, Connection: close when closing, the empty line.
func EndHead(bw *bufio.Writer, clen int64, hasDate, closing bool) {
	bw.Write(AppendEndHead(bw.AvailableBuffer(), clen, hasDate, closing))
}

// AppendEndHead appends what EndHead writes to b.
func AppendEndHead(b []byte, clen int64, hasDate, closing bool) []byte {
	if !hasDate {
		b = append(b, "Date: "...)
		b = append(b, Date()...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, clen, 10)
	b = append(b, "\r\n"...)
	if closing {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// validHeaderName: a non-empty token (net/http drops other names too).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !httptok.IsTokenChar(k[i]) {
			return false
		}
	}
	return true
}
