package dispatcher

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/oip"
)

func rawReq(path, body string, extra ...string) string {
	h := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// TestServerOneConnection drives one raw connection through fast-path
// requests (pipelined, Expect: 100-continue, malformed JSON, unknown
// model), then a request only net/http serves (the hand-off), then more
// inference on the same connection.
func TestServerOneConnection(t *testing.T) {
	if *stdServer {
		t.Skip("tests the fast-path Server")
	}
	a := newFakeBackend(t, "a")
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, code int, variant string) *http.Response {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || resp.Header.Get(oip.VariantHeader) != variant {
			t.Fatalf("%s: %d %q (%s), want %d %q", what, resp.StatusCode, resp.Header.Get(oip.VariantHeader), body, code, variant)
		}
		if resp.ContentLength != int64(len(body)) {
			t.Fatalf("%s: Content-Length %d, body %d bytes", what, resp.ContentLength, len(body))
		}
		return resp
	}
	// Three pipelined requests in one write.
	send(rawReq("/v2/models/m/infer", inferBody) + rawReq("/v2/models/m/infer", `{"inputs":[`) + rawReq("/v2/models/nope/infer", inferBody))
	expect("pipelined 1", 200, "a")
	expect("pipelined malformed", 400, "")
	expect("pipelined unknown model", 404, "")
	// Expect: 100-continue: the body is sent after the interim answer.
	send(strings.TrimSuffix(rawReq("/v2/models/m/infer", inferBody, "Expect: 100-continue"), inferBody))
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if l2, _ := br.ReadString('\n'); l2 != "\r\n" {
		t.Fatalf("100 Continue not followed by an empty line: %q", l2)
	}
	send(inferBody)
	expect("after 100-continue", 200, "a")
	if got := a.hits.Load(); got != 2 {
		t.Errorf("backend hits %d, want 2", got)
	}
	// A chunked body: handed to net/http, which serves it.
	send("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(inferBody), inferBody))
	expect("chunked", 200, "a")
	send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
	expect("health via net/http", 200, "")
	send(rawReq("/v2/models/m/infer", inferBody))
	expect("infer after hand-off", 200, "a")
	// Connection: close is honoured.
	send(rawReq("/v2/models/m/infer", inferBody, "Connection: close"))
	resp := expect("close", 200, "a")
	if !resp.Close {
		t.Error("response to Connection: close does not close")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after Connection: close: %v", err)
	}
}

// TestServerRejects: malformed requests on a fresh connection each, the
// fast path's 413 and net/http's 400s.
func TestServerRejects(t *testing.T) {
	a := newFakeBackend(t, "a")
	cfg := noHealth()
	cfg.MaxBodyBytes = 100
	d, srv := newTestDispatcher(t, cfg)
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat(" ", 200)
	tests := []struct {
		name, req string
		want      int
	}{
		{"oversized", rawReq("/v2/models/m/infer", big), 413},
		{"bad content-length", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}", 400},
		{"two content-lengths", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400},
		{"no host", "POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400},
		{"bad request line", "POST /v2/models/m/infer\r\nHost: x\r\n\r\n", 400},
		{"header too large", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 2<<20) + "\r\nContent-Length: 2\r\n\r\n{}", 431},
		{"bad header", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\n{}", 400},
		{"big header ok", "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 20<<10) + "\r\nContent-Length: 2\r\n\r\n{}", 400}, // net/http serves it: {} has no inputs, the backend says 400
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() { _, _ = io.WriteString(c, tc.req) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestServerShutdown: Shutdown waits for a request in flight on the fast
// path, then Serve returns http.ErrServerClosed.
func TestServerShutdown(t *testing.T) {
	a := newFakeBackend(t, "a")
	a.delay.Store(int64(200 * time.Millisecond))
	d, err := New(noHealth())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, d)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	done := make(chan int, 1)
	go func() {
		code, _ := infer(t, http.DefaultClient, "http://"+ln.Addr().String(), "m")
		done <- code
	}()
	for a.hits.Load() == 0 && d.model("m").tab.Load().backends[0].inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if code := <-done; code != 200 {
		t.Errorf("request in flight during Shutdown got %d", code)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
}

// TestBackendClosesIdle: the backend closes the dispatcher's idle
// keep-alive connections (as nginx does after its keepalive_timeout);
// later requests get fresh ones, none fails. (The event-loop server once
// kept such connections in its idle list and wrote to their closed fds.)
func TestBackendClosesIdle(t *testing.T) {
	a := newFakeBackend(t, "a")
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, _ := infer(t, srv.Client(), srv.URL, "m"); code != http.StatusOK {
					t.Errorf("round %d: status %d", round, code)
				}
			}()
		}
		wg.Wait()
		a.srv.CloseClientConnections()
		time.Sleep(20 * time.Millisecond) // the closes reach the dispatcher
	}
	for i := range 20 {
		if code, _ := infer(t, srv.Client(), srv.URL, "m"); code != http.StatusOK {
			t.Fatalf("request %d after the backend closed idle connections: status %d", i, code)
		}
	}
}
