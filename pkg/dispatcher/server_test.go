package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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

var headSeeds = []string{
	rawReq("/v2/models/m/infer", inferBody),
	rawReq("/v1/models/m:predict?x=1&y=%20", `{"instances":[[1]]}`, "X-Forwarded-For: 10.0.0.1", "x-forwarded-for: 10.0.0.2", "Connection: keep-alive, close"),
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n folded\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m%2Fx/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\n{}",
	"POST http://x/v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST  /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nKeep-Alive: 5\r\nTE: trailers\r\nContent-Length:2 \r\n\r\n{}",
}

func TestParseHeadCases(t *testing.T) {
	tests := []struct {
		in   string
		fast bool
	}{
		{headSeeds[0], true},
		{headSeeds[1], true},
		{headSeeds[2], false}, // chunked
		{headSeeds[3], false}, // duplicate Content-Length
		{headSeeds[4], false}, // "+2"
		{headSeeds[5], false}, // obs-fold
		{headSeeds[6], false}, // no Host
		{headSeeds[7], false}, // HTTP/1.0
		{headSeeds[8], false}, // %-escape in the path
		{headSeeds[9], false}, // bare LF
		{headSeeds[10], false},
		{headSeeds[11], false},
		{headSeeds[12], true}, // Expect: 100-continue
		{headSeeds[13], false},
		{headSeeds[14], false}, // absolute-form target
		{headSeeds[15], false}, // GET
		{headSeeds[16], false},
		{headSeeds[17], false}, // Content-Length overflow
		{headSeeds[18], true},  // hop-by-hop headers dropped, OWS trimmed
	}
	var h reqHead
	for i, tc := range tests {
		b := []byte(tc.in)
		n := findHeadEnd(b)
		got := n >= 0 && parseHead(b[:n], &h)
		if got != tc.fast {
			t.Errorf("case %d %.50q: fast path %v, want %v", i, tc.in, got, tc.fast)
		}
	}
	b := []byte(headSeeds[1])
	if !parseHead(b[:findHeadEnd(b)], &h) {
		t.Fatal("seed 1 rejected")
	}
	if h.path != "/v1/models/m:predict" || h.rawQuery != "x=1&y=%20" || !h.close || string(h.xff) != "10.0.0.1, 10.0.0.2" ||
		string(h.fwd) != "Content-Type: application/json\r\n" || h.clen != int64(len(`{"instances":[[1]]}`)) {
		t.Errorf("parsed %+v (fwd %q, xff %q)", h, h.fwd, h.xff)
	}
}

// FuzzParseHead: whatever the fast path accepts, net/http's server parser
// accepts too and reads the same way (method, path, query, body length,
// Connection: close, head length, forwarded headers).
func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n := findHeadEnd(in)
		if n < 0 {
			return
		}
		var h reqHead
		if !parseHead(in[:n], &h) {
			return
		}
		br := bufio.NewReader(bytes.NewReader(in))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("fast path accepted %q; net/http: %v", in, err)
		}
		if consumed := len(in) - br.Buffered(); consumed != n {
			t.Fatalf("%q: head of %d bytes, net/http read %d", in, n, consumed)
		}
		if r.Method != "POST" || r.URL.Path != h.path || r.URL.RawQuery != h.rawQuery || r.ContentLength != h.clen ||
			r.Close != h.close || r.Header.Get("Expect") != "" != h.expect100 {
			t.Fatalf("%q: fast %+v; net/http %s %q %q len %d close %v", in, h, r.Method, r.URL.Path, r.URL.RawQuery, r.ContentLength, r.Close)
		}
		if got, want := string(h.xff), strings.Join(r.Header.Values("X-Forwarded-For"), ", "); got != want {
			t.Fatalf("%q: X-Forwarded-For %q, net/http %q", in, got, want)
		}
		fwd, err := parseRawHeader(h.fwd)
		if err != nil {
			t.Fatalf("%q: forwarded lines %q do not parse: %v", in, h.fwd, err)
		}
		for k, vs := range r.Header {
			if skipForward(k) {
				if len(fwd[k]) > 0 {
					t.Fatalf("%q: %s forwarded", in, k)
				}
				continue
			}
			if fmt.Sprint(fwd[k]) != fmt.Sprint(vs) {
				t.Fatalf("%q: forwards %s: %q, net/http has %q", in, k, fwd[k], vs)
			}
		}
	})
}

func skipForward(k string) bool {
	switch k {
	case "Host", "Content-Length", "Expect", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Forwarded-For":
		return true
	}
	return false
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
	s := d.NewServer(ServerOptions{})
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
