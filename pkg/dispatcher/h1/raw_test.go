package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/testnet"
)

// rawServer answers every request on a connection with the next of
// answers (raw bytes), counting connections.
func rawServer(t *testing.T, answers ...string) (addr string, conns *atomic.Int64) {
	t.Helper()
	conns = &atomic.Int64{}
	var next atomic.Int64
	addr = testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			a := answers[int(next.Add(1)-1)%len(answers)]
			if _, err := io.WriteString(c, a); err != nil {
				return
			}
			la := strings.ToLower(a)
			if strings.Contains(la, "connection: close") || !strings.Contains(la, "content-length") && !strings.Contains(la, "chunked") && !strings.HasPrefix(a, "HTTP/1.1 204") {
				return
			}
		}
	})
	return addr, conns
}

func TestRoundTripRaw(t *testing.T) {
	tests := []struct {
		name, answer string
		code         int
		header, body string
		reuse        bool
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDate: x\r\nX-Infadapter-Variant: spoof\r\n\r\n{}", 200, "Content-Type: application/json\r\nDate: x\r\n", "{}", true},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n", 200, "", "abcde", true},
		{"until close", "HTTP/1.1 500 Internal Server Error\r\nX-A: 1\r\n\r\nboom", 500, "X-A: 1\r\n", "boom", false},
		{"connection close", "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", 404, "", "x", false},
		{"no content", "HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5\r\n\r\n", 204, "", "", true},
		{"custom reason", "HTTP/1.1 299 Whatever Here\r\ncontent-length:  3 \r\n\r\nabc", 299, "", "abc", true},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz", 200, "", "z", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := rawServer(t, tc.answer)
			p := NewPool(addr, &net.Dialer{}, 2)
			defer p.Close()
			var resp RawResponse
			for i := range 2 {
				err := p.RoundTripRaw(context.Background(), Request{Method: "POST", PathQuery: "/x", Body: []byte("{}"),
					DropResponseHeaders: []string{"x-infadapter-variant"}}, &resp)
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				var body bytes.Buffer
				_, err = body.ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != tc.code || string(resp.Header) != tc.header || body.String() != tc.body {
					t.Fatalf("round %d: %d %q %q %v; want %d %q %q", i, resp.StatusCode, resp.Header, body.String(), err, tc.code, tc.header, tc.body)
				}
			}
			if want := map[bool]int64{true: 1, false: 2}[tc.reuse]; conns.Load() != want {
				t.Errorf("%d connections for 2 requests, want %d", conns.Load(), want)
			}
		})
	}
}

func TestRoundTripRawMalformed(t *testing.T) {
	for _, a := range []string{
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
	} {
		addr, _ := rawServer(t, a)
		p := NewPool(addr, &net.Dialer{}, 1)
		var resp RawResponse
		if err := p.RoundTripRaw(context.Background(), Request{Method: "GET", PathQuery: "/"}, &resp); err == nil {
			resp.Body.Close()
			t.Errorf("%q: accepted", a)
		}
		p.Close()
	}
}

// FuzzReadRawHead: a head readRawHead accepts, net/http's client parser
// accepts too, with the same status, length and (forwarded) header values.
func FuzzReadRawHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 404 Nope\r\nConnection: close\r\nX: 1\r\nx: 2\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var resp RawResponse
		_, chunked, err := readRawHead(bufio.NewReader(bytes.NewReader(in)), &Request{Method: "POST"}, &resp)
		if err != nil {
			return
		}
		r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("raw accepted %q; net/http: %v", in, err)
		}
		if r.StatusCode != resp.StatusCode {
			t.Fatalf("%q: status %d, net/http %d", in, resp.StatusCode, r.StatusCode)
		}
		if !chunked && resp.ContentLength >= 0 && r.ContentLength != resp.ContentLength {
			t.Fatalf("%q: length %d, net/http %d", in, resp.ContentLength, r.ContentLength)
		}
		got, err := http.ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\n"+string(resp.Header)+"\r\n")), nil)
		if err != nil {
			t.Fatalf("%q: forwarded header %q does not parse: %v", in, resp.Header, err)
		}
		for k, vs := range r.Header {
			switch k {
			case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authenticate":
				continue
			}
			if fmt.Sprint(got.Header[k]) != fmt.Sprint(vs) {
				t.Fatalf("%q: forwards %s %q, net/http read %q", in, k, got.Header[k], vs)
			}
		}
	})
}

// TestManyStaleConnections: every idle connection of the pool was closed
// by the server; the next request still succeeds (on a fresh one).
func TestManyStaleConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu = make(chan struct{}, 1)
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu <- struct{}{}
			conns = append(conns, c)
			<-mu
			go func() {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	const n = 6
	p := NewPool(ln.Addr().String(), &net.Dialer{}, n)
	defer p.Close()
	// n concurrent requests open n connections, all idle afterwards.
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		go func() {
			<-start
			var resp RawResponse
			err := p.RoundTripRaw(context.Background(), Request{Method: "GET", PathQuery: "/"}, &resp)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu <- struct{}{}
	opened := len(conns)
	for _, c := range conns {
		c.Close()
	}
	<-mu
	if opened < 2 {
		t.Skipf("only %d connections opened; nothing to test", opened)
	}
	time.Sleep(20 * time.Millisecond)
	var resp RawResponse
	if err := p.RoundTripRaw(context.Background(), Request{Method: "GET", PathQuery: "/"}, &resp); err != nil {
		t.Fatalf("after the server closed %d idle connections: %v", opened, err)
	}
	resp.Body.Close()
}

// FuzzParseRawHead: the byte-slice parser (the event loop's) and the
// bufio one (RoundTripRaw's) accept the same heads the same way; given a
// prefix of a head, ParseRawHead asks for more instead of failing.
func FuzzParseRawHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 404 Nope\r\nConnection: close\r\nX: 1\r\nx: 2\r\n\r\n",
		"HTTP/1.1 204 No Content\nContent-Length: 7\n\n",
		"HTTP/1.1 200\r\nX-Infadapter-Variant: b\r\nDate: x\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	drop := []string{"x-infadapter-variant"}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want, got RawResponse
		br := bufio.NewReaderSize(bytes.NewReader(in), 64<<10)
		wreuse, wchunked, werr := readRawHead(br, &Request{Method: "POST", DropResponseHeaders: drop}, &want)
		n, reuse, chunked, err := ParseRawHead(in, "POST", drop, &got)
		if errors.Is(err, ErrIncomplete) {
			if werr == nil {
				t.Fatalf("%q: incomplete, bufio parser accepted it", in)
			}
			return
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: ParseRawHead %v, readRawHead %v", in, err, werr)
		}
		if err != nil {
			return
		}
		if consumed := len(in) - br.Buffered(); n != consumed {
			t.Fatalf("%q: head of %d bytes, readRawHead read %d", in, n, consumed)
		}
		if reuse != wreuse || chunked != wchunked || got.StatusCode != want.StatusCode || got.ContentLength != want.ContentLength ||
			got.HasDate != want.HasDate || !bytes.Equal(got.Header, want.Header) || !bytes.Equal(got.Status, want.Status) {
			t.Fatalf("%q: %+v %v %v, readRawHead %+v %v %v", in, got, reuse, chunked, want, wreuse, wchunked)
		}
		for k := range n {
			if _, _, _, err := ParseRawHead(in[:k], "POST", drop, &got); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("%q: prefix of %d bytes: %v, want ErrIncomplete", in, k, err)
			}
		}
	})
}
