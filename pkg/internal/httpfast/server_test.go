package httpfast

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echo serves paths under /fast on the fast path and everything else with
// net/http; both answer "<path>: <body>", tagged by an X-Path header.
type echo struct{ panics atomic.Int32 }

func (e *echo) Fast(h *Head) bool { return strings.HasPrefix(h.Path, "/fast") }

func (e *echo) ServeFast(c *Conn, h *Head, w *ResponseWriter) bool {
	if h.Path == "/fast/panic" {
		panic("test panic")
	}
	if h.Path == "/fast/skip" {
		w.WriteHeader(http.StatusTeapot)
		return c.SkipBody(h)
	}
	body := make([]byte, h.ContentLength)
	if err := c.ReadBody(h, body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	answer := h.Path + ": " + string(body)
	switch h.Path {
	case "/fast/stream", "/fast/stream-short-x9":
		// Streamed: a raw head line, then the body through ReadFrom;
		// the short one declares 5 bytes more than it sends.
		n := int64(len(answer))
		if h.Path == "/fast/stream-short-x9" {
			n += 5
		}
		w.WriteRawHead(http.StatusOK, false, n, []byte("X-Path: fast\r\n"), []byte("X-Raw: 1\r\n"))
		if _, err := io.Copy(w, struct{ io.Reader }{strings.NewReader(answer)}); err != nil {
			panic(err)
		}
		return true
	case "/fast/readfrom":
		// Buffered, through ReadFrom.
		w.Header().Set("X-Path", "fast")
		if _, err := w.ReadFrom(strings.NewReader(answer)); err != nil {
			panic(err)
		}
		return true
	}
	w.Header().Set("X-Path", "fast")
	w.Header().Set("X-Evil", "a\r\nInjected: 1")
	_, _ = w.Write([]byte(answer))
	return true
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Path", "std")
	_, _ = w.Write([]byte(r.URL.Path + ": " + string(b)))
}

// errorLog counts error records (a recovered panic is one).
type errorLog struct{ n *atomic.Int32 }

func (l errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.n.Add(1)
	}
	return nil
}
func (l errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l errorLog) WithGroup(string) slog.Handler      { return l }

func startEcho(t testing.TB) (addr string, e *echo, s *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e = &echo{}
	s = NewServer(e, Options{Fallback: e, Log: slog.New(errorLog{&e.panics}), ReadHeaderTimeout: time.Second, ReadTimeout: time.Second})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String(), e, s
}

// exchange writes in on a new connection, half-closes it and returns
// everything the server sent until it closed.
func exchange(t testing.TB, addr string, in []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = c.Write(in)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading the answers: %v", err)
	}
	return out
}

// responses parses out as a sequence of HTTP/1.1 responses, failing on
// anything else (bytes that are not a response, a body shorter than its
// Content-Length).
func responses(t testing.TB, in, out []byte) []*http.Response {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(string(out)))
	var rs []*http.Response
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return rs
		}
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("input %q: answer %d does not parse: %v\n%q", in, len(rs), err, out)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("input %q: answer %d: body: %v\n%q", in, len(rs), err, out)
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		if r.Header.Get("Injected") != "" {
			t.Fatalf("input %q: a header value split the response", in)
		}
		rs = append(rs, r)
	}
}

func TestServerPaths(t *testing.T) {
	addr, e, _ := startEcho(t)
	post := func(path, body string, extra ...string) string {
		h := "POST " + path + " HTTP/1.1\r\nHost: x\r\n"
		for _, x := range extra {
			h += x + "\r\n"
		}
		return h + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	in := post("/fast/a", "1") + post("/fast/skip", "xyz") + post("/fast/b", "22") + post("/std", "3") + post("/fast/c", "4", "Connection: close")
	rs := responses(t, []byte(in), exchange(t, addr, []byte(in)))
	want := []struct {
		code       int
		path, body string
	}{{200, "fast", "/fast/a: 1"}, {418, "", ""}, {200, "fast", "/fast/b: 22"}, {200, "std", "/std: 3"}, {200, "std", "/fast/c: 4"}}
	if len(rs) != len(want) {
		t.Fatalf("%d answers, want %d", len(rs), len(want))
	}
	for i, w := range want {
		b, _ := io.ReadAll(rs[i].Body)
		if rs[i].StatusCode != w.code || rs[i].Header.Get("X-Path") != w.path || string(b) != w.body {
			t.Errorf("answer %d: %d %q %q, want %d %q %q", i, rs[i].StatusCode, rs[i].Header.Get("X-Path"), b, w.code, w.path, w.body)
		}
	}
	if !rs[4].Close {
		t.Error("Connection: close not honoured after the hand-off")
	}

	// A panic closes that connection only, logged as an error.
	out := exchange(t, addr, []byte(post("/fast/panic", "")))
	if len(out) != 0 || e.panics.Load() != 1 {
		t.Errorf("after a panic: %q, %d errors logged", out, e.panics.Load())
	}
	// A body that breaks off: 400 and close.
	in = strings.TrimSuffix(post("/fast/a", "12345"), "45")
	rs = responses(t, []byte(in), exchange(t, addr, []byte(in)))
	if len(rs) != 1 || rs[0].StatusCode != 400 || !rs[0].Close {
		t.Errorf("short body: %v", rs)
	}
}

// TestServerShutdown: Shutdown waits for a request in progress, which is
// answered, and closes idle connections.
func TestServerShutdown(t *testing.T) {
	addr, _, s := startEcho(t)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// A head whose body has not arrived yet: the request is in progress.
	if _, err := io.WriteString(busy, "POST /fast/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(busy, "ok")
	_ = busy.SetDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("request in progress at Shutdown: %v %v", r, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_ = idle.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("idle connection after Shutdown: %d %v", n, err)
	}
}

// FuzzServer feeds arbitrary bytes to a connection: whatever the client
// sends, the server answers with well-formed HTTP/1.1 responses (fast or
// net/http's) and never panics.
func FuzzServer(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(strings.Replace(s, "/v", "/fast/v", 1)))
	}
	f.Add([]byte("POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\naPOST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nbGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /fast HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"))
	addr, e, _ := startEcho(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out := exchange(t, addr, in)
		rs := responses(t, in, out)
		for _, r := range rs {
			if r.Header.Get("X-Path") == "fast" && r.StatusCode != 200 {
				t.Fatalf("%q: fast answer %d", in, r.StatusCode)
			}
		}
		if e.panics.Load() != 0 {
			t.Fatalf("%q: the server logged an error", in)
		}
	})
}

// TestServerLingersOnUnreadBody: an answer sent without reading a large
// body (then the connection closes) reaches a client that is still
// writing that body, instead of a connection reset.
func TestServerLingersOnUnreadBody(t *testing.T) {
	addr, _, _ := startEcho(t)
	body := strings.Repeat("x", 4<<20)
	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://"+addr+"/fast/skip", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Fatalf("try %d: %d", i, resp.StatusCode)
		}
	}
}

// TestServerStreamed: answers streamed with WriteRawHead between buffered
// ones on one pipelined connection, in order and well framed; a streamed
// body shorter than declared ends the connection after it.
func TestServerStreamed(t *testing.T) {
	addr, e, _ := startEcho(t)
	post := func(path, body string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	in := post("/fast/stream", "1") + post("/fast/a", "22") + post("/fast/readfrom", "333") + post("/fast/stream", strings.Repeat("z", 20<<10))
	rs := responses(t, []byte(in), exchange(t, addr, []byte(in)))
	want := []string{"/fast/stream: 1", "/fast/a: 22", "/fast/readfrom: 333", "/fast/stream: " + strings.Repeat("z", 20<<10)}
	if len(rs) != len(want) {
		t.Fatalf("%d answers, want %d", len(rs), len(want))
	}
	for i, w := range want {
		b, _ := io.ReadAll(rs[i].Body)
		if rs[i].StatusCode != 200 || rs[i].Header.Get("X-Path") != "fast" || string(b) != w || rs[i].ContentLength != int64(len(w)) || rs[i].Header.Get("Date") == "" {
			t.Errorf("answer %d: %d %v %.40q, want 200 %.40q", i, rs[i].StatusCode, rs[i].Header, b, w)
		}
		if strings.HasPrefix(w, "/fast/stream") && rs[i].Header.Get("X-Raw") != "1" {
			t.Errorf("answer %d: raw head line missing: %v", i, rs[i].Header)
		}
	}

	// Short: the head declares 5 bytes more than follow, then the
	// connection ends (the next request is not answered).
	in = post("/fast/stream-short-x9", "1") + post("/fast/a", "2")
	out := exchange(t, addr, []byte(in))
	r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(out))), nil)
	if err != nil {
		t.Fatalf("short answer: %v (%q)", err, out)
	}
	b, err := io.ReadAll(r.Body)
	if string(b) != "/fast/stream-short-x9: 1" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short answer: body %q, %v; want the short body and an unexpected EOF", b, err)
	}
	if e.panics.Load() != 0 {
		t.Errorf("%d errors logged", e.panics.Load())
	}
}

// TestWriteStatusLine: known, unknown and 200 codes, also when the
// writer's free space is too small for the number.
func TestWriteStatusLine(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{{200, "HTTP/1.1 200 OK\r\n"}, {404, "HTTP/1.1 404 Not Found\r\n"}, {599, "HTTP/1.1 599 status code 599\r\n"}} {
		var sb strings.Builder
		bw := bufio.NewWriterSize(&sb, 16)
		WriteStatusLine(bw, tc.code)
		EndHead(bw, 1234567, true, true)
		_ = bw.Flush()
		if want := tc.want + "Content-Length: 1234567\r\nConnection: close\r\n\r\n"; sb.String() != want {
			t.Errorf("%d: %q, want %q", tc.code, sb.String(), want)
		}
	}
}

// TestServerTrickledHead: a request head sent a byte at a time is cut off
// ReadHeaderTimeout (1 s here, plus the deadline slack) after its first
// byte; each byte arriving does not restart the clock.
func TestServerTrickledHead(t *testing.T) {
	addr, _, _ := startEcho(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "POST /fast/echo HTTP/1.1\r\nHost: x\r\nX-Padding: " + strings.Repeat("p", 100) + "\r\nContent-Length: 1\r\n\r\n"
	start := time.Now()
	cut := false
	for i := 0; i < len(head)-1 && time.Since(start) < 5*time.Second; i++ {
		if _, err := c.Write([]byte{head[i]}); err != nil {
			cut = true
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cut = true // EOF or reset: the server closed it
			break
		}
	}
	if el := time.Since(start); !cut || el < time.Second || el > 3*time.Second {
		t.Fatalf("trickled head: cut %v after %v, want a cut 1-3 s after the first byte", cut, el.Round(time.Millisecond))
	}
}
