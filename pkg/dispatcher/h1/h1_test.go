package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func roundTrip(t *testing.T, p *Pool, ctx context.Context, path, body string) (int, string, error) {
	t.Helper()
	resp, err := p.RoundTrip(ctx, Request{Method: http.MethodPost, PathQuery: path,
		Header: http.Header{"X-A": {"1"}, "X-B": {"dropped"}, "Connection": {"Upgrade"}, "Upgrade": {"h2c"}},
		Extra:  []string{"X-B", "2"}, Body: []byte(body)})
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), err
}

func TestRoundTripReuseAndStale(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-A")+r.Header.Get("X-B")+r.Header.Get("Upgrade")+" "+string(b))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := NewPool(srv.Listener.Addr().String(), &net.Dialer{}, 4)
	defer p.Close()
	for range 3 {
		code, body, err := roundTrip(t, p, context.Background(), "/x?q=1", "hi")
		if err != nil || code != 200 || body != "POST /x?q=1 12 hi" {
			t.Fatalf("%d %q %v", code, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 sequential requests used %d connections, want 1", n)
	}
	srv.CloseClientConnections() // the idle connection goes stale
	time.Sleep(10 * time.Millisecond)
	if code, _, err := roundTrip(t, p, context.Background(), "/y", ""); err != nil || code != 200 {
		t.Fatalf("after the server closed idle connections: %d %v", code, err)
	}
}

func TestDeadlineAndCap(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := NewPool(srv.Listener.Addr().String(), &net.Dialer{}, 1)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := roundTrip(t, p, ctx, "/", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The timed-out connection was discarded, so its slot is free again.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	done := make(chan error, 1)
	go func() { _, _, err := roundTrip(t, p, ctx2, "/", ""); done <- err }()
	// With the only slot busy, a third request waits for it and times out.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel3()
	time.Sleep(5 * time.Millisecond)
	if _, _, err := roundTrip(t, p, ctx3, "/", ""); err == nil || !strings.Contains(err.Error(), "waiting for a connection") {
		t.Errorf("err = %v, want a wait for a connection", err)
	}
	<-done
}

func TestConnectionRefused(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p := NewPool(addr, &net.Dialer{}, 2)
	for range 3 { // a failed dial must give its slot back
		if _, _, err := roundTrip(t, p, context.Background(), "/", ""); err == nil {
			t.Fatal("request to a closed port succeeded")
		}
	}
}

// TestDeadlineContext: a DeadlineContext bounds both the wait for a
// connection and the exchange itself, and the errors say so.
func TestDeadlineContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	p := NewPool(srv.Listener.Addr().String(), &net.Dialer{}, 1)
	defer p.Close()
	t0 := time.Now()
	_, _, err := roundTrip(t, p, DeadlineContext(time.Now().Add(50*time.Millisecond)), "/", "")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 250*time.Millisecond {
		t.Fatalf("slow answer: %v after %v, want DeadlineExceeded after ~50ms", err, time.Since(t0))
	}
	busy := make(chan error, 1)
	go func() { _, _, err := roundTrip(t, p, context.Background(), "/", ""); busy <- err }()
	time.Sleep(20 * time.Millisecond) // the only connection is now in use
	t0 = time.Now()
	_, _, err = roundTrip(t, p, DeadlineContext(time.Now().Add(50*time.Millisecond)), "/", "")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 250*time.Millisecond {
		t.Fatalf("waiting for a connection: %v after %v, want DeadlineExceeded after ~50ms", err, time.Since(t0))
	}
	if err := <-busy; err != nil {
		t.Errorf("request holding the connection: %v", err)
	}
}
