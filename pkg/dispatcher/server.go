package dispatcher

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/infadapter/infadapter/pkg/dispatcher/h1"
	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

// Server serves a Dispatcher on a listener with a fast path for inference
// requests: an httpfast.Server (shared with the model server) whose
// Handler is the dispatcher's fastHandler. A profile of the dispatcher
// behind net/http's server showed most of its CPU in net/http's
// per-request machinery (request and header parsing into maps, a context
// and a background read goroutine per request, response header
// handling), which is why it reached well under half of nginx's
// throughput as a proxy. The fast path reads each request head straight
// from the connection's buffer, forwards the header lines verbatim
// through h1 and streams the backend's response head and body into the
// connection's write buffer (httpfast.ResponseWriter.WriteRawHead).
//
// It takes only requests that httpfast.ParseHead accepts — "POST <path>
// HTTP/1.1" with a Content-Length body — to /v2/models/{m}/infer or
// /v1/models/{m}:predict, and on the first other request hands the
// connection, with the bytes it has buffered, to net/http with the
// Dispatcher itself as handler (health, metadata, chunked bodies,
// HTTP/1.0, malformed requests: net/http serves or rejects them). Both
// paths share one port and give the same answers (the dispatcher tests
// run against this server). Serve, Shutdown and Close are
// httpfast.Server's.
type Server struct {
	*httpfast.Server
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
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = d.timeout
	}
	return &Server{httpfast.NewServer(fastHandler{d}, httpfast.Options{Fallback: d,
		IdleTimeout: o.IdleTimeout, ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout, Log: d.log})}
}

// fastHandler is the dispatcher's httpfast.Handler.
type fastHandler struct{ d *Dispatcher }

var _ httpfast.Handler = fastHandler{}

// keepBodyBuf: a connection keeps its request and response buffers
// between requests up to this size (larger ones are left to the GC).
const keepBodyBuf = 64 << 10

// connState is a fast-path connection's state, kept between its requests
// (httpfast.Conn.SetValue).
type connState struct {
	ip   string // the client's IP, for X-Forwarded-For
	body []byte // request body buffer
	buf  []byte // a backend's chunked answer, read whole
	req  proxyReq
	raw  h1.RawResponse
	// extra: the header pairs h1 adds (X-Forwarded-For), here so that
	// their slice is not an allocation per request.
	extra    [2]string
	deadline h1.Deadline // the request's context (forward)
}

// Fast takes inference requests.
func (f fastHandler) Fast(h *httpfast.Head) bool {
	_, ok := f.d.inferRoute(h.Path)
	return ok
}

// routeCache is a path and its route.
type routeCache struct {
	path  string
	route oip.Route
}

// inferRoute returns the route of an inference path (false: not one).
// oip.ParsePath allocates (~1 % of a proxied request's CPU), and Fast and
// ServeFast both need the route of what is nearly always the same path,
// so the last one parsed is kept.
func (d *Dispatcher) inferRoute(path string) (oip.Route, bool) {
	if c := d.lastRoute.Load(); c != nil && c.path == path {
		return c.route, true
	}
	route, err := oip.ParsePath(path)
	if err != nil || !route.Kind.IsInference() {
		return oip.Route{}, false
	}
	d.lastRoute.Store(&routeCache{path: path, route: route})
	return route, true
}

// ServeFast serves one inference request: as ServeHTTP, from the raw head.
func (f fastHandler) ServeFast(c *httpfast.Conn, h *httpfast.Head, w *httpfast.ResponseWriter) (keep bool) {
	d := f.d
	cs, _ := c.Value().(*connState)
	if cs == nil {
		cs = &connState{ip: remoteIP(c.RemoteAddr().String())}
		c.SetValue(cs)
	}
	route, _ := d.inferRoute(h.Path) // Fast accepted it
	m := d.model(route.Model)
	if m == nil {
		// As ServeHTTP, which answers before reading the body; the body is
		// skipped if it is here or small, else the connection closes.
		oip.WriteError(w, http.StatusNotFound, fmt.Sprintf("unknown model %q (serving %v)", route.Model, d.Models()))
		return c.SkipBody(h)
	}
	if h.ContentLength > d.cfg.MaxBodyBytes {
		m.rejected.Inc()
		oip.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d", h.ContentLength, d.cfg.MaxBodyBytes))
		return false
	}
	if int64(cap(cs.body)) < h.ContentLength {
		cs.body = make([]byte, h.ContentLength)
	}
	body := cs.body[:h.ContentLength]
	if err := c.ReadBody(h, body); err != nil {
		m.rejected.Inc()
		oip.WriteError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return false
	}
	if d.cfg.ValidateJSON {
		if err := validateInferBody(body, h.BinLen); err != nil {
			m.rejected.Inc()
			oip.WriteError(w, http.StatusBadRequest, err.Error())
			return true
		}
	}
	start := d.clock.Now()
	m.arrivals.add(start)
	r := &cs.req
	*r = proxyReq{method: http.MethodPost, rawQuery: h.RawQuery, rawHeader: h.Fwd, xff: cs.ip, fast: cs}
	if len(h.XFF) > 0 && cs.ip != "" {
		r.xff = string(h.XFF) + ", " + cs.ip
	}
	d.forward(w, r, m, route, body, start)
	if r.bodyEscaped || cap(cs.body) > keepBodyBuf {
		// An https backend's http.Transport may still be reading it.
		cs.body = nil
	}
	return true
}

// relayRaw writes a backend's raw response (head lines as received, plus
// X-Infadapter-Variant) as this request's answer, streaming the body; it
// returns an error while reading the body (httpfast then closes the
// connection after the short body). A body of unknown length (chunked,
// or until the backend closes) is read whole first, to send it with a
// Content-Length; if that fails the client gets a 502 instead.
func (cs *connState) relayRaw(w *httpfast.ResponseWriter, rr *h1.RawResponse, b *backend) error {
	if rr.ContentLength < 0 {
		buf := bytes.NewBuffer(cs.buf[:0])
		_, err := buf.ReadFrom(rr.Body)
		cs.buf = buf.Bytes()
		if err != nil {
			oip.WriteError(w, http.StatusBadGateway, fmt.Sprintf("%s: reading the response body: %v", b.spec.Variant, err))
			return err
		}
		w.WriteRawHead(rr.StatusCode, rr.HasDate, int64(len(cs.buf)), rr.Header, b.variantLine)
		_, _ = w.Write(cs.buf)
		if cap(cs.buf) > keepBodyBuf {
			cs.buf = nil
		}
		return nil
	}
	w.WriteRawHead(rr.StatusCode, rr.HasDate, rr.ContentLength, rr.Header, b.variantLine)
	n, err := io.Copy(w, rr.Body)
	if err == nil && n != rr.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return err
}
