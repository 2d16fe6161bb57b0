//go:build linux

package modelserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
)

// evServerT serves s with the event-loop path on a loopback port and
// returns its address and the server; set, when given, changes it before
// it serves.
func evServerT(t *testing.T, s *Server, set ...func(*EventServer)) (string, *EventServer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.NewEventServer(httpfast.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set {
		f(es)
	}
	go func() { _ = es.Serve(ln) }()
	t.Cleanup(func() { _ = es.Close(); ln.Close() })
	return ln.Addr().String(), es
}

// oneWorkerServer is cnn-s with one worker, as serve-model --threads 1.
func oneWorkerServer(t *testing.T) *Server {
	t.Helper()
	m := loadModel(t, "cnn-s", 1)
	s, err := NewServer(Config{Name: "cnn-s", MaxBatch: 4, MaxBodyBytes: 1 << 20}, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WarmUp(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	return s
}

// TestEventLoopMatchesFast sends the same requests to the event-loop
// server and to the goroutine fast server for the same real model and
// checks that status, headers (Date aside) and body are identical: the
// inline path (JSON and binary inference, errors) and what it hands off
// (TF Serving, health, metadata, chunked, other models, GET on infer).
func TestEventLoopMatchesFast(t *testing.T) {
	s := oneWorkerServer(t)
	ev, es := evServerT(t, s)
	fast := fastServer(t, s)
	good := v2Body([]int64{1, 1, 28, 28}, image(0.25))
	four := v2Body([]int64{4, 784}, append(append(append(image(1), image(0.5)...), image(0.1)...), image(0)...))
	bin, hlen := binaryBody([]int64{1, 784}, image(0.5), true)
	binJSONOut, hlen2 := binaryBody([]int64{1, 1, 28, 28}, image(0.75), false)
	predict := fmt.Sprintf(`{"instances":[[%s]]}`, strings.TrimSuffix(strings.Repeat("0.5,", 784), ","))
	reqs := []string{
		rawPost("/v2/models/cnn-s/infer", good),
		rawPost("/v2/models/cnn-s/infer", four),
		rawPost("/v2/models/cnn-s/infer", `{"id":"req-7","inputs":[{"name":"input","shape":[784],"datatype":"FP64","data":[`+strings.TrimSuffix(strings.Repeat("0.5,", 784), ",")+`]}]}`),
		rawPost("/v2/models/cnn-s/infer", `{"inputs":[`),
		rawPost("/v2/models/cnn-s/infer", `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`),
		rawPost("/v2/models/cnn-s/infer", v2Body([]int64{5, 784}, make([]float32, 5*784))),
		rawPost("/v2/models/cnn-s/infer", good[:len(good)-2]+`],"outputs":[{"name":"nope"}]}`),
		rawPost("/v2/models/cnn-s/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen)),
		rawPost("/v2/models/cnn-s/infer", string(binJSONOut), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen2)),
		rawPost("/v2/models/cnn-s/infer", string(bin), "Inference-Header-Content-Length: 0"),
		rawPost("/v2/models/cnn-s/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", len(bin)+1)),
		rawPost("/v2/models/cnn-s/infer", ""),
		rawPost("/v2/models/cnn-s/infer?x=1", good),
		rawPost("/v2/models/cnn-s/infer", good, "Connection: close"),
		// Handed off (inlineReqs counts the ones above):
		rawPost("/v1/models/cnn-s:predict", predict),
		rawPost("/v2/models/other/infer", good),
		"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v2/models/cnn-s HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v2/models/cnn-s/infer HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v2/models/cnn-s/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(good), good),
		"POST /v2/models/cnn-s/infer HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
		"NOT HTTP\r\n\r\n",
	}
	const inlineReqs = 14
	for i, req := range reqs {
		inline, handed := es.inline.Load(), es.handed.Load()
		a, b := roundTrip(t, ev, req), roundTrip(t, fast, req)
		if a != b {
			t.Errorf("request %d %.80q:\nevent loop %q\nfast       %q", i, req, a, b)
		}
		if i < inlineReqs && es.inline.Load() != inline+1 {
			t.Errorf("request %d %.80q: not answered on the loop", i, req)
		}
		if i >= inlineReqs && es.handed.Load() != handed+1 {
			t.Errorf("request %d %.80q: not handed off", i, req)
		}
		if i == 0 && !strings.Contains(a, `"outputs"`) {
			t.Errorf("request 0: no outputs in %q", a)
		}
	}
	s.SetReady(false)
	req := rawPost("/v2/models/cnn-s/infer", good)
	if a, b := roundTrip(t, ev, req), roundTrip(t, fast, req); a != b || !strings.HasPrefix(a, "503") {
		t.Errorf("not ready:\nevent loop %q\nfast       %q", a, b)
	}
}

// TestEventLoopConnection drives one keep-alive connection: sequential
// and pipelined requests, a body arriving in pieces, a large body, a
// hand-off and inference after it, then Connection: close.
func TestEventLoopConnection(t *testing.T) {
	s := oneWorkerServer(t)
	addr, es := evServerT(t, s)
	good := v2Body([]int64{1, 784}, image(1))
	rc := dialRaw(t, addr)
	for i := range 3 {
		rc.send(rawPost("/v2/models/cnn-s/infer", good))
		rc.expect(fmt.Sprint("sequential ", i), 200, `"model_name":"cnn-s"`)
	}
	bin, hlen := binaryBody([]int64{1, 784}, image(0.5), true)
	rc.send(rawPost("/v2/models/cnn-s/infer", good) + rawPost("/v2/models/cnn-s/infer", `{"inputs":[`) +
		rawPost("/v2/models/cnn-s/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen)))
	if r := rc.expect("pipelined good", 200, `"outputs"`); r.Header.Get("X-Infadapter-Variant") != "cnn-s" ||
		r.Header.Get("Date") == "" || r.Close {
		t.Errorf("pipelined good: header %v, close %v", r.Header, r.Close)
	}
	rc.expect("pipelined malformed", 400, `"error"`)
	if r := rc.expect("pipelined binary", 200, `"binary_data_size":40`); r.Header.Get(HeaderBinaryLength) == "" {
		t.Errorf("binary: no %s in %v", HeaderBinaryLength, r.Header)
	}
	// A body in pieces, the head split too.
	full := rawPost("/v2/models/cnn-s/infer", good)
	for _, part := range []string{full[:10], full[10:100], full[100 : len(full)-50], full[len(full)-50:]} {
		rc.send(part)
		time.Sleep(5 * time.Millisecond)
	}
	rc.expect("in pieces", 200, `"outputs"`)
	// Larger than the read chunk (16 KiB): four examples with many digits.
	vals := make([]float32, 4*784)
	for i := range vals {
		vals[i] = float32(i%97) / 97
	}
	big := v2Body([]int64{4, 784}, vals)
	if len(big) <= evReadChunk {
		t.Fatalf("test body only %d bytes", len(big))
	}
	rc.send(rawPost("/v2/models/cnn-s/infer", big))
	rc.expect("large", 200, `"shape":[4,10]`)
	if n := es.inline.Load(); n != 8 || es.handed.Load() != 0 {
		t.Errorf("before the hand-off: %d answered on the loop (want 8), %d handed off (want 0)", n, es.handed.Load())
	}
	// Hand-off, then inference on the fallback server.
	rc.send("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.expect("handed off", 200, `"live":true`)
	rc.send(rawPost("/v2/models/cnn-s/infer", good))
	rc.expect("after the hand-off", 200, `"outputs"`)
	rc.send(rawPost("/v2/models/cnn-s/infer", good, "Connection: close"))
	if r := rc.expect("close", 200, `"outputs"`); !r.Close {
		t.Error("Connection: close not answered with close")
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close: %v, want EOF", err)
	}

	// Connection: close on the loop itself.
	rc = dialRaw(t, addr)
	rc.send(rawPost("/v2/models/cnn-s/infer", good, "Connection: close"))
	if r := rc.expect("close on the loop", 200, `"outputs"`); !r.Close {
		t.Error("Connection: close not answered with close")
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close on the loop: %v, want EOF", err)
	}
}

// TestEventLoopShutdown: Serve returns http.ErrServerClosed, open
// connections are closed, and GOMAXPROCS is back where it was.
func TestEventLoopShutdown(t *testing.T) {
	s := oneWorkerServer(t)
	procs := runtime.GOMAXPROCS(0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	es, err := s.NewEventServer(httpfast.Options{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- es.Serve(ln) }()
	rc := dialRaw(t, ln.Addr().String())
	rc.send(rawPost("/v2/models/cnn-s/infer", v2Body([]int64{1, 784}, image(1))))
	rc.expect("before shutdown", 200, `"outputs"`)
	if got := runtime.GOMAXPROCS(0); got != procs+1 {
		t.Errorf("GOMAXPROCS while serving = %d, want %d", got, procs+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := es.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection after shutdown: %v, want EOF", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the port still accepts connections after shutdown")
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS after shutdown = %d, want %d", got, procs)
	}
}

// TestEventLoopPipelinedFarAhead: a client that writes more than the
// loop buffers (here lowered to 64 KiB) before reading
// gets every answer: the loop stops reading, answers what it has, and
// reads on by itself (no new edge event comes for bytes already in the
// socket).
func TestEventLoopPipelinedFarAhead(t *testing.T) {
	s := oneWorkerServer(t)
	addr, es := evServerT(t, s, func(es *EventServer) { es.maxBuffered = 64 << 10 })
	req := rawPost("/v2/models/cnn-s/infer", v2Body([]int64{1, 784}, image(1)))
	n := (3<<20)/len(req) + 1
	rc := dialRaw(t, addr)
	go func() { _, _ = io.WriteString(rc.c, strings.Repeat(req, n)) }()
	for i := range n {
		rc.expect(fmt.Sprint("pipelined ", i), 200, `"outputs"`)
	}
	if got := es.inline.Load(); got != int64(n) || es.handed.Load() != 0 {
		t.Errorf("%d answered on the loop (want %d), %d handed off", got, n, es.handed.Load())
	}
}

// TestEventLoopShutdownDrains: Shutdown closes an idle connection at once,
// answers a request still being received (with Connection: close) and
// returns only after that answer.
func TestEventLoopShutdownDrains(t *testing.T) {
	s := oneWorkerServer(t)
	addr, es := evServerT(t, s)
	req := rawPost("/v2/models/cnn-s/infer", v2Body([]int64{1, 784}, image(1)))
	idle, busy := dialRaw(t, addr), dialRaw(t, addr)
	idle.send(req)
	idle.expect("idle, before", 200, `"outputs"`)
	busy.send(req[:len(req)-100]) // head and most of the body
	time.Sleep(50 * time.Millisecond)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- es.Shutdown(ctx)
	}()
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection at shutdown: %v, want EOF", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a request was being received", err)
	case <-time.After(200 * time.Millisecond):
	}
	busy.send(req[len(req)-100:])
	if r := busy.expect("request finished during shutdown", 200, `"outputs"`); !r.Close {
		t.Error("the answer during shutdown does not say Connection: close")
	}
	if _, err := busy.br.ReadByte(); err != io.EOF {
		t.Errorf("after the last answer: %v, want EOF", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last answer")
	}
}

// TestEventLoopShutdownDeadline: a request that never completes holds
// Shutdown only until its context ends.
func TestEventLoopShutdownDeadline(t *testing.T) {
	s := oneWorkerServer(t)
	addr, es := evServerT(t, s)
	rc := dialRaw(t, addr)
	rc.send("POST /v2/models/cnn-s/infer HTTP/1.1\r\nHost: x\r\n")
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := es.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("unfinished request after shutdown: %v, want EOF", err)
	}
}

// TestEventLoopTimeouts: the head must arrive within ReadHeaderTimeout,
// the body within ReadTimeout after the head; a body slower than the
// head's timeout but within its own is answered.
func TestEventLoopTimeouts(t *testing.T) {
	s := oneWorkerServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.NewEventServer(httpfast.Options{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 2500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	es.l.TickEvery = 20 * time.Millisecond
	go func() { _ = es.Serve(ln) }()
	t.Cleanup(func() { _ = es.Close(); ln.Close() })
	addr := ln.Addr().String()
	req := rawPost("/v2/models/cnn-s/infer", v2Body([]int64{1, 784}, image(1)))
	end := strings.Index(req, "\r\n\r\n") + 4

	slowBody := dialRaw(t, addr)
	slowBody.send(req[:end+10])
	time.Sleep(700 * time.Millisecond) // > head timeout, < body timeout
	slowBody.send(req[end+10:])
	slowBody.expect("body within ReadTimeout", 200, `"outputs"`)

	for _, tc := range []struct {
		what string
		sent string
		max  time.Duration
	}{
		{"head", req[:end-4], 1200 * time.Millisecond},
		{"body", req[:end+10], 5 * time.Second},
	} {
		rc := dialRaw(t, addr)
		rc.send(tc.sent)
		t0 := time.Now()
		if _, err := rc.br.ReadByte(); err != io.EOF {
			t.Errorf("%s never finished: %v, want EOF", tc.what, err)
		}
		if d := time.Since(t0); d > tc.max {
			t.Errorf("%s never finished: closed after %v, want ≤ %v", tc.what, d, tc.max)
		}
	}
}

// TestEventLoopAcceptExhausted: when accept fails for want of descriptors
// (RLIMIT_NOFILE lowered so the client's socket is the last one), the
// loop pauses the listener instead of spinning on it (the process stays
// nearly idle), and once descriptors are free again the next tick
// resumes it and the waiting connection is served.
func TestEventLoopAcceptExhausted(t *testing.T) {
	s := oneWorkerServer(t)
	addr, _ := evServerT(t, s, func(es *EventServer) { es.l.TickEvery = 50 * time.Millisecond })
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// The limit bounds descriptor numbers, not their count: allow one
	// above the highest open, fill every free number below it with
	// /dev/null, then free one for the client's socket.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	highest := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > highest {
			highest = n
		}
	}
	low := lim
	low.Cur = uint64(highest + 2)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	var fillers []int
	restored := false
	restore := func() {
		if !restored {
			restored = true
			for _, fd := range fillers {
				unix.Close(fd)
			}
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	if len(fillers) == 0 {
		restore()
		t.Fatal("could not fill the descriptor table")
	}
	unix.Close(fillers[len(fillers)-1])
	fillers = fillers[:len(fillers)-1]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		restore()
		t.Fatalf("dial with one descriptor free: %v", err)
	}
	defer c.Close()
	cpu0 := cpuSeconds()
	time.Sleep(300 * time.Millisecond)
	used := cpuSeconds() - cpu0
	restore()
	if used > 0.1 {
		t.Errorf("the process used %.0f ms of CPU in 300 ms while accept failed: the loop spins on the listener", used*1000)
	}
	rc := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rc.send(rawPost("/v2/models/cnn-s/infer", v2Body([]int64{1, 784}, image(1))))
	rc.expect("after descriptors were freed", 200, `"outputs"`)
}
