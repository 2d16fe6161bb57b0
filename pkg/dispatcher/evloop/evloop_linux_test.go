//go:build linux

package evloop

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echo echoes what it reads on its fd (a handler owned by one loop).
type echo struct {
	fd     int
	events atomic.Int32
	closed chan struct{}
}

func (e *echo) Event(ev uint32) {
	e.events.Add(1)
	var buf [4]byte // small: a message takes several reads
	for {
		n, err := Read(e.fd, buf[:])
		if err == unix.EAGAIN {
			return
		}
		if err != 0 || n == 0 {
			close(e.closed)
			return
		}
		if _, err := Write(e.fd, buf[:n]); err != 0 {
			panic(err)
		}
	}
}

// TestLoopEcho: edge-triggered events on a socketpair reach the
// handler, Post runs on the loop, Tick comes while the loop is idle, and
// Close stops Run.
func TestLoopEcho(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int32
	l.Tick, l.TickEvery = func(time.Time) { ticks.Add(1) }, 5*time.Millisecond
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	e := &echo{fd: fds[0], closed: make(chan struct{})}
	go l.Run()
	added := make(chan error)
	l.Post(func() { added <- l.Add(fds[0], e) })
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[1], false); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello, event loop", "x"} {
		if _, err := unix.Write(fds[1], []byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 0, len(msg))
		for len(got) < len(msg) {
			buf := make([]byte, 64)
			n, err := unix.Read(fds[1], buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if string(got) != msg {
			t.Errorf("echo %q, want %q", got, msg)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := ticks.Load(); n < 3 {
		t.Errorf("%d ticks in 50 ms of an idle loop with TickEvery 5 ms", n)
	}
	unix.Shutdown(fds[1], unix.SHUT_WR)
	select {
	case <-e.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("no end-of-stream event")
	}
	l.Post(func() { l.CloseFd(fds[0]) })
	l.Close()
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

// TestDialAccept: a non-blocking Dial to a listener the loop accepts from
// connects (ConnectError nil once writable), and ListenerFd's duplicate
// accepts the connection.
func TestDialAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lfd, err := ListenerFd(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	fd, err := Dial(ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var afd int
	for deadline := time.Now().Add(5 * time.Second); ; {
		afd, _, err = Accept(lfd)
		if err == nil {
			break
		}
		if err != unix.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("accept: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	defer unix.Close(afd)
	if err := ConnectError(fd); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if n, e := Write(fd, []byte("ping")); e != 0 || n != 4 {
		t.Fatalf("write: %d, %v", n, e)
	}
	buf := make([]byte, 8)
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, e := Read(afd, buf)
		if e == 0 {
			if string(buf[:n]) != "ping" {
				t.Fatalf("read %q", buf[:n])
			}
			break
		}
		if e != unix.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("read: %v", e)
		}
		time.Sleep(time.Millisecond)
	}
	// A refused connection reports its error.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln2.Addr().(*net.TCPAddr)
	ln2.Close()
	fd2, err := Dial(addr)
	if err == nil {
		defer unix.Close(fd2)
		time.Sleep(20 * time.Millisecond)
		if ConnectError(fd2) == nil {
			t.Error("connect to a closed port: no error")
		}
	}
}

// countingListener counts its events and, like a server whose accept
// failed with EMFILE, accepts nothing and pauses itself.
type countingListener struct {
	l      *Loop
	fd     int
	events atomic.Int32
}

func (h *countingListener) Event(uint32) {
	h.events.Add(1)
	h.l.PauseListener(h.fd)
}

// TestPauseListener: a paused level-triggered listener with a connection
// queued is not reported again until ResumeListeners (without the pause
// the loop would get an event on every turn), and a listener closed
// while paused is forgotten.
func TestPauseListener(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd, err := ListenerFd(ln)
	if err != nil {
		t.Fatal(err)
	}
	h := &countingListener{l: l, fd: fd}
	go l.Run()
	defer func() { l.Close(); <-l.Done() }()
	onLoop := func(f func()) {
		done := make(chan struct{})
		l.Post(func() { f(); close(done) })
		<-done
	}
	onLoop(func() {
		if err := l.AddListener(fd, h); err != nil {
			t.Error(err)
		}
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond)
	if n := h.events.Load(); n != 1 {
		t.Fatalf("%d events while paused, want 1", n)
	}
	onLoop(l.ResumeListeners)
	time.Sleep(100 * time.Millisecond)
	if n := h.events.Load(); n != 2 {
		t.Errorf("%d events after one resume, want 2 (reported again, then paused again)", n)
	}
	onLoop(func() {
		l.CloseFd(fd)
		if len(l.paused) != 0 {
			t.Errorf("closed listener still paused: %v", l.paused)
		}
		l.ResumeListeners()
	})
}
