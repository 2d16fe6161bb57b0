//go:build linux

package dispatcher

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/testnet"
	"github.com/infadapter/infadapter/pkg/oip"
)

// TestEventServerResponseLimit: the event-loop server holds an answer
// whole before relaying it, so one larger than its limit gets 502 (with
// Content-Length or chunked) and the connection stays usable.
func TestEventServerResponseLimit(t *testing.T) {
	if *eventLoops == 0 {
		t.Skip("tests EventServer (-event-loops)")
	}
	defer func(old int) { maxEvResponse = old }(maxEvResponse)
	maxEvResponse = 1000
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		_, _ = w.Write([]byte(`{"x":"` + strings.Repeat("a", n) + `"}`))
	}))
	defer be.Close()
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: be.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"n=5000", "n=5000&chunked=1", "n=10", "n=10&chunked=1"} {
		resp, err := srv.Client().Post(srv.URL+oip.InferPath("m")+"?"+q, "application/json", strings.NewReader(inferBody))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := http.StatusOK
		if strings.HasPrefix(q, "n=5000") {
			want = http.StatusBadGateway
		}
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d: %.100s", q, resp.StatusCode, want, b)
		}
	}
}

// TestEventServerInterimAnswer: a backend's interim answer (103 Early
// Hints) before the final one is skipped; the client gets the final one.
func TestEventServerInterimAnswer(t *testing.T) {
	if *eventLoops == 0 {
		t.Skip("tests EventServer (-event-loops)")
	}
	addr := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		}
	})
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: "http://" + addr, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp, err := srv.Client().Post(srv.URL+oip.InferPath("m"), "application/json", strings.NewReader(inferBody))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "{}" || resp.Header.Get(oip.VariantHeader) != "a" {
			t.Fatalf("status %d, body %q, variant %q", resp.StatusCode, b, resp.Header.Get(oip.VariantHeader))
		}
	}
}

// TestEventServerTrickle: a client that sends its request a few bytes at a
// time is cut off once the head has taken longer than ReadHeaderTimeout,
// or the whole request longer than ReadTimeout, counted from its first
// byte — each byte arriving does not restart the clock.
func TestEventServerTrickle(t *testing.T) {
	if *eventLoops == 0 {
		t.Skip("tests EventServer (-event-loops)")
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"outputs":[]}`))
	}))
	defer be.Close()
	_, addr := startEventServer(t, be.URL, ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond}, 1)

	req := "POST " + oip.InferPath("m") + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(inferBody)) + "\r\n\r\n" + inferBody
	head := strings.Index(req, "\r\n\r\n") + 4
	for _, tc := range []struct {
		name  string
		from  int // bytes sent at once, then one byte every 50 ms
		limit time.Duration
	}{
		{"head", 0, 300 * time.Millisecond},
		{"body", head, 600 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if _, err := c.Write([]byte(req[:tc.from])); err != nil {
				t.Fatal(err)
			}
			cut := false
			for i := tc.from; i < len(req)-1 && time.Since(start) < 5*tc.limit; i++ {
				time.Sleep(50 * time.Millisecond)
				if _, err := c.Write([]byte{req[i]}); err != nil {
					cut = true
					break
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					cut = true // EOF or reset: the server closed it
					break
				}
			}
			if el := time.Since(start); !cut || el < tc.limit {
				t.Fatalf("trickling the %s: cut %v after %v, want a cut after %v", tc.name, cut, el.Round(time.Millisecond), tc.limit)
			}
		})
	}
}

// TestEventServerProcs: each running EventServer adds its loops to
// GOMAXPROCS (a loop holds its P while it waits); stopping servers in any
// order leaves the program's own value plus the loops still running.
func TestEventServerProcs(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	start := func(n int) *EventServer {
		s, _ := startEventServer(t, "", ServerOptions{}, n)
		// Serve raises GOMAXPROCS before its loops run; wait for it.
		for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) < base+n && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		return s
	}
	a := start(2)
	if got := runtime.GOMAXPROCS(0); got != base+2 {
		t.Fatalf("one server of 2 loops: GOMAXPROCS %d, want %d", got, base+2)
	}
	b := start(3)
	if got := runtime.GOMAXPROCS(0); got != base+5 {
		t.Fatalf("two servers (2 + 3 loops): GOMAXPROCS %d, want %d", got, base+5)
	}
	_ = a.Close()
	if got := runtime.GOMAXPROCS(0); got != base+3 {
		t.Fatalf("first server stopped: GOMAXPROCS %d, want %d", got, base+3)
	}
	_ = b.Close()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("both stopped: GOMAXPROCS %d, want %d", got, base)
	}
}

// startEventServer starts a dispatcher for model "m" (one variant at
// backendURL; none when "") served by an EventServer of n loops, closed
// when the test ends, and returns the server and its address.
func startEventServer(tb testing.TB, backendURL string, opts ServerOptions, n int) (*EventServer, string) {
	tb.Helper()
	d, err := New(noHealth(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if backendURL != "" {
		if err := d.SetBackends("m", []Backend{{Variant: "a", URL: backendURL, Weight: 1}}); err != nil {
			tb.Fatal(err)
		}
	}
	s, err := d.NewEventServer(opts, n)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	tb.Cleanup(func() { _ = s.Close() })
	return s, ln.Addr().String()
}

// TestEventServerCloseAnnounced: an answer after which the server closes
// the connection without reading the request's body (413, or 404 with the
// body still coming) says "Connection: close", so that a client does not
// send its next request on a connection that is closing.
func TestEventServerCloseAnnounced(t *testing.T) {
	if *eventLoops == 0 {
		t.Skip("tests EventServer (-event-loops)")
	}
	s, addr := startEventServer(t, "http://127.0.0.1:1", ServerOptions{}, 1)
	for _, tc := range []struct {
		path string
		clen int
		want int
	}{
		{oip.InferPath("m"), int(s.d.cfg.MaxBodyBytes) + 1, http.StatusRequestEntityTooLarge},
		{oip.InferPath("nope"), 500, http.StatusNotFound},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		// The head only: the body never comes.
		if _, err := c.Write([]byte("POST " + tc.path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(tc.clen) + "\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if resp.StatusCode != tc.want || !resp.Close {
			t.Errorf("%s with %d bytes unread: status %d, Connection: close %v; want %d and true", tc.path, tc.clen, resp.StatusCode, resp.Close, tc.want)
		}
	}
}
