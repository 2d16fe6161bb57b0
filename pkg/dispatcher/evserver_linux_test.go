//go:build linux

package dispatcher

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"+
						"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
				}
			}()
		}
	}()
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: "http://" + ln.Addr().String(), Weight: 1}}); err != nil {
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
