package dispatcher

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/oip"
)

// TestPoolStaleConnection: the backend closes its idle keep-alive
// connections between requests; the next request is resent on a fresh
// connection without an error or a failure counted against the backend.
func TestPoolStaleConnection(t *testing.T) {
	a := newFakeBackend(t, "a")
	cfg := noHealth()
	cfg.EjectAfter = 1
	d, srv := newTestDispatcher(t, cfg)
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if code, _ := infer(t, srv.Client(), srv.URL, "m"); code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
		a.srv.CloseClientConnections()
		time.Sleep(10 * time.Millisecond) // let the FIN arrive
	}
	if st, _ := d.Status("m"); st.Backends[0].Ejected {
		t.Error("stale keep-alive connections got the backend ejected")
	}
}

// TestPoolResponses covers response framings the pool must handle:
// Connection: close, chunked bodies, HEAD and an empty 204.
func TestPoolResponses(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch {
		case strings.HasSuffix(r.URL.Path, "/ready"):
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Query().Get("mode") == "close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, `{"closed":true}`)
		case r.URL.Query().Get("mode") == "chunked":
			w.(http.Flusher).Flush() // forces chunked encoding
			for range 3 {
				_, _ = io.WriteString(w, strings.Repeat("x", 1000))
				w.(http.Flusher).Flush()
			}
		default:
			w.Header().Set("X-Echo-Query", r.URL.RawQuery)
			_, _ = io.WriteString(w, `{"ok":true}`)
		}
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: be.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	for range 3 {
		if resp, b := do("POST", "/v2/models/m/infer?mode=close", inferBody); resp.StatusCode != 200 || b != `{"closed":true}` {
			t.Fatalf("close: %d %q", resp.StatusCode, b)
		}
	}
	if resp, b := do("POST", "/v2/models/m/infer?mode=chunked", inferBody); resp.StatusCode != 200 || len(b) != 3000 {
		t.Fatalf("chunked: %d, %d bytes", resp.StatusCode, len(b))
	}
	before := conns.Load()
	for range 5 {
		resp, b := do("POST", "/v2/models/m/infer?q=1", inferBody)
		if resp.StatusCode != 200 || b != `{"ok":true}` || resp.Header.Get("X-Echo-Query") != "q=1" {
			t.Fatalf("plain: %d %q %v", resp.StatusCode, b, resp.Header)
		}
	}
	if n := conns.Load() - before; n > 1 {
		t.Errorf("5 sequential requests opened %d connections; keep-alive not reused", n)
	}
	if resp, _ := do("HEAD", "/v2/models/m", ""); resp.StatusCode != 200 {
		t.Errorf("HEAD metadata: %d", resp.StatusCode)
	}
	if resp, b := do("GET", "/v1/models/m", ""); resp.StatusCode != 200 || b != `{"ok":true}` {
		t.Errorf("GET tf status: %d %q", resp.StatusCode, b)
	}
}

// TestPoolClientCancel: a client that goes away mid-request frees the
// backend slot and the connection is not reused half-read.
func TestPoolClientCancel(t *testing.T) {
	a := newFakeBackend(t, "a")
	a.delay.Store(int64(300 * time.Millisecond))
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+oip.InferPath("m"), strings.NewReader(inferBody))
	if _, err := srv.Client().Do(req); err == nil {
		t.Fatal("canceled request succeeded")
	}
	deadline := time.Now().Add(2 * time.Second)
	for d.model("m").tab.Load().backends[0].inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("in-flight count not released after the client went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.delay.Store(0)
	if code, _ := infer(t, srv.Client(), srv.URL, "m"); code != 200 {
		t.Errorf("request after a cancel: %d", code)
	}
}

// TestPoolMaxConns: with MaxConnsPerBackend 2, ten concurrent requests
// reach the backend at most two at a time, and all succeed.
func TestPoolMaxConns(t *testing.T) {
	var cur, peak atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(be.Close)
	cfg := noHealth()
	cfg.MaxConnsPerBackend = 2
	d, srv := newTestDispatcher(t, cfg)
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: be.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 10)
	for range 10 {
		go func() { code, _ := infer(t, srv.Client(), srv.URL, "m"); codes <- code }()
	}
	for range 10 {
		if c := <-codes; c != 200 {
			t.Errorf("status %d", c)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("backend saw %d concurrent requests, cap is 2", p)
	}
}
