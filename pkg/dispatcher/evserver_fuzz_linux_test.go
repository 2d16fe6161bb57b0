//go:build linux

package dispatcher

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/testnet"
	"github.com/infadapter/infadapter/pkg/oip"
)

// readAnswers reads HTTP/1.1 responses from br until the server closes,
// failing on bytes that are not one.
func readAnswers(t *testing.T, in []byte, br *bufio.Reader) []*http.Response {
	t.Helper()
	var rs []*http.Response
	for {
		if _, err := br.Peek(1); err != nil {
			return rs
		}
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("input %q: answer %d does not parse: %v", in, len(rs), err)
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Fatalf("input %q: answer %d: body: %v", in, len(rs), err)
		}
		r.Body.Close()
		rs = append(rs, r)
	}
}

// FuzzEventServerClient feeds arbitrary bytes from a client to the
// event-loop server: whatever arrives (fast-path requests, pipelined ones,
// heads handed to net/http, garbage), the answers are well-formed
// HTTP/1.1 and the loop neither panics nor hangs.
func FuzzEventServerClient(f *testing.F) {
	if *eventLoops == 0 {
		f.Skip("tests EventServer (-event-loops)")
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"model_name":"a","outputs":[]}`))
	}))
	f.Cleanup(be.Close)
	_, addr := startEventServer(f, be.URL, ServerOptions{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second}, 1)
	req := func(extra, body string) string {
		return "POST " + oip.InferPath("m") + " HTTP/1.1\r\nHost: x\r\n" + extra + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	f.Add([]byte(req("", inferBody)))
	f.Add([]byte(req("", inferBody) + req("", inferBody) + "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte(req("Expect: 100-continue\r\n", inferBody)))
	f.Add([]byte(req("", `{"inputs":[`)))
	f.Add([]byte(req("Connection: close\r\n", inferBody) + req("", inferBody)))
	f.Add([]byte("POST /v2/models/nope/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add([]byte("\x00\xff garbage\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
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
		br := bufio.NewReader(c)
		readAnswers(t, in, br)
		var ne net.Error
		if _, err := br.Peek(1); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("input %q: no end of the answers within 10 s", in)
		}
	})
}

// FuzzEventServerBackend lets a backend answer arbitrary bytes (then
// close): the client always gets one well-formed answer — the backend's,
// relayed, or a 5xx — and the next request on the same client connection
// is served too.
func FuzzEventServerBackend(f *testing.F) {
	if *eventLoops == 0 {
		f.Skip("tests EventServer (-event-loops)")
	}
	var answer atomic.Pointer[[]byte]
	backend := testnet.Serve(f, func(c net.Conn, br *bufio.Reader) {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if a := answer.Load(); a != nil {
			_, _ = c.Write(*a)
		}
	})
	_, addr := startEventServer(f, "http://"+backend, ServerOptions{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second}, 1)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n{} until close"))
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, a []byte) {
		answer.Store(&a)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		req := "POST " + oip.InferPath("m") + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(inferBody)) + "\r\n\r\n" + inferBody
		for i := 0; i < 2; i++ {
			if _, err := c.Write([]byte(req)); err != nil {
				return // the dispatcher closed after a broken answer: allowed
			}
			r, err := http.ReadResponse(br, nil)
			if err != nil {
				if i == 1 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
					return // closed after the first answer (Connection: close)
				}
				t.Fatalf("backend answer %q: request %d: no well-formed answer: %v", a, i, err)
			}
			if _, err := io.ReadAll(r.Body); err != nil {
				t.Fatalf("backend answer %q: request %d: body: %v", a, i, err)
			}
			r.Body.Close()
			if r.Close {
				return
			}
		}
	})
}
