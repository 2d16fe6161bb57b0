package modelserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

// The fast HTTP/1.1 path (pkg/internal/httpfast, shared with the
// dispatcher): inference requests — POST with a Content-Length to this
// model's /v2/models/{m}/infer or /v1/models/{m}:predict — are read straight
// from the connection's buffer and answered without net/http's
// per-request machinery; everything else (health, metadata, /metrics,
// other models' paths, chunked bodies, HTTP/1.0, malformed heads) goes to
// ServeHTTP through net/http on the same port. Both paths end in
// inferBody, so they give the same answers (TestFastMatchesStd).
//
// One difference: net/http's per-request context ends when the client
// disconnects, so a request queued for a busy worker is dropped (499);
// on the fast path a disconnect is noticed only when the answer is
// written. The fast path has no per-request background read, which is
// part of what it saves.

var _ httpfast.Handler = (*Server)(nil)

// NewHTTPServer returns the server to serve s on a listener: the fast
// path for inference requests, s.ServeHTTP through net/http for the rest.
func (s *Server) NewHTTPServer(o httpfast.Options) *httpfast.Server {
	o.Fallback = s
	return httpfast.NewServer(s, o)
}

// Fast takes this model's inference paths.
func (s *Server) Fast(h *httpfast.Head) bool {
	route, err := oip.ParsePath(h.Path)
	return err == nil && route.Kind.IsInference() && route.Model == s.cfg.Name
}

// ServeFast serves one inference request on the fast path.
func (s *Server) ServeFast(c *httpfast.Conn, h *httpfast.Head, w *httpfast.ResponseWriter) bool {
	start := time.Now()
	kind := oip.KindInfer
	if route, _ := oip.ParsePath(h.Path); route.Kind == oip.KindTFPredict {
		kind = oip.KindTFPredict
	}
	if !s.Ready() {
		s.fail(w, kind, start, s.notReady())
		return c.SkipBody(h)
	}
	if max := s.maxBody(); h.ContentLength > max {
		s.fail(w, kind, start, &oip.RequestError{Status: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("request body larger than the limit of %d bytes", max)})
		return false
	}
	body := getBytes(int(h.ContentLength))
	defer putBytes(body)
	if err := c.ReadBody(h, body.b); err != nil {
		s.fail(w, kind, start, &oip.RequestError{Status: http.StatusBadRequest, Msg: "reading body: " + err.Error()})
		return false
	}
	var binHdr []string
	if h.BinLen >= 0 {
		binHdr = []string{strconv.FormatInt(h.BinLen, 10)}
	}
	s.inferBody(context.Background(), w, kind, body.b, binHdr, start)
	return true
}

func (s *Server) maxBody() int64 {
	if s.cfg.MaxBodyBytes > 0 {
		return s.cfg.MaxBodyBytes
	}
	return oip.DefaultMaxBodyBytes
}
