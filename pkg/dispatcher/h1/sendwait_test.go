package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/testnet"
)

// answerServer is a testnet.Serve server that reads each request on a connection,
// drains its body and calls answer with the body's length; answer writes
// the reply, or returns false to end the connection.
func answerServer(t *testing.T, answer func(c net.Conn, bodyLen int64) bool) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			n, _ := io.Copy(io.Discard, req.Body)
			if !answer(c, n) {
				return
			}
		}
	})
}

func rawGet(p *Pool, ctx context.Context, body []byte) (int, string, error) {
	var resp RawResponse
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	if err := p.RoundTripRaw(ctx, Request{Method: method, PathQuery: "/", Body: body}, &resp); err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), err
}

// TestSendFirstSkipsEmptyRead: with the answer a millisecond away, every
// plain first read(2) after sending would find nothing (EAGAIN); sending
// from inside RawConn.Read's callback waits for readability instead.
func TestSendFirstSkipsEmptyRead(t *testing.T) {
	addr := answerServer(t, func(c net.Conn, _ int64) bool {
		time.Sleep(time.Millisecond)
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return err == nil
	})
	p := NewPool(addr, &net.Dialer{}, 1)
	defer p.Close()
	const n = 50
	for i := range n {
		code, body, err := rawGet(p, context.Background(), []byte("x"))
		if err != nil || code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	pc := <-p.idle
	defer p.discard(pc)
	if !pc.cr.canSendFirst() {
		t.Fatal("a TCP connection has no RawConn")
	}
	// Each stale readiness report costs one empty read; there should be
	// next to none (the old path had one per request).
	if pc.cr.emptyReads > n/10 {
		t.Errorf("%d empty reads in %d round trips, want at most %d", pc.cr.emptyReads, n, n/10)
	}
}

// TestSendFirstPartialAnswer: an answer trickling in (status line, the
// rest of the head, the body in two parts) is read whole.
func TestSendFirstPartialAnswer(t *testing.T) {
	addr := answerServer(t, func(c net.Conn, _ int64) bool {
		for _, part := range []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "\r\nhel", "lo"} {
			time.Sleep(2 * time.Millisecond)
			if _, err := io.WriteString(c, part); err != nil {
				return false
			}
		}
		return true
	})
	p := NewPool(addr, &net.Dialer{}, 1)
	defer p.Close()
	for i := range 3 {
		if code, body, err := rawGet(p, context.Background(), nil); err != nil || code != 200 || body != "hello" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
}

// TestSendFirstEOF: a server that closes without answering gives an EOF
// error (a fresh connection, so not ErrStale and not resent).
func TestSendFirstEOF(t *testing.T) {
	addr := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
	})
	p := NewPool(addr, &net.Dialer{}, 1)
	defer p.Close()
	_, _, err := rawGet(p, context.Background(), nil)
	if !errors.Is(err, io.EOF) || errors.Is(err, ErrStale) {
		t.Fatalf("err = %v, want io.EOF, not ErrStale", err)
	}
}

// TestSendFirstCancel: canceling the context ends the wait for an answer
// at once (through the socket deadline), reported as context.Canceled.
func TestSendFirstCancel(t *testing.T) {
	addr := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
		time.Sleep(2 * time.Second)
	})
	p := NewPool(addr, &net.Dialer{}, 1)
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	t0 := time.Now()
	_, _, err := rawGet(p, ctx, nil)
	if !errors.Is(err, context.Canceled) || time.Since(t0) > time.Second {
		t.Fatalf("err = %v after %v, want context.Canceled after ~30ms", err, time.Since(t0))
	}
	var ne net.Error
	if errors.As(err, &ne) && strings.Contains(ne.Error(), "raw-read") {
		t.Errorf("error names RawConn's operation: %v", err)
	}
}

// TestSendFirstLargeBody: a request larger than the write buffer goes out
// partly while it is written, and the server can answer before the wait
// for readability starts; that answer must not be missed (it was, when
// such requests also took the send-first path: the readiness reported
// before RawConn.Read reset it was lost and the exchange hung). A server
// that answers before reading the body and closes ends the exchange (an
// answer or an error), not the deadline.
func TestSendFirstLargeBody(t *testing.T) {
	body := []byte(strings.Repeat("x", 8<<20))
	addr := answerServer(t, func(c net.Conn, n int64) bool {
		if n != int64(len(body)) {
			return false
		}
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return err == nil
	})
	p := NewPool(addr, &net.Dialer{}, 1)
	defer p.Close()
	if code, got, err := rawGet(p, context.Background(), body); err != nil || code != 200 || got != "ok" {
		t.Fatalf("%d %q %v", code, got, err)
	}

	early := testnet.Serve(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = br.ReadString('\n')
		_, _ = io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	p2 := NewPool(early, &net.Dialer{}, 1)
	defer p2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, _, err := rawGet(p2, ctx, body)
	if errors.Is(err, context.DeadlineExceeded) || err == nil && code != 413 {
		t.Fatalf("early answer: %d %v, want 413 or a connection error", code, err)
	}
}
