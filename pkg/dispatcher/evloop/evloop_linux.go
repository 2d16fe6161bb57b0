//go:build linux

package evloop

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Event bits passed to Handler.Event.
const (
	In  = unix.EPOLLIN
	Out = unix.EPOLLOUT
	// Hup: the peer closed or reset the connection (EPOLLHUP, EPOLLRDHUP or
	// EPOLLERR); reads still return what was buffered before it.
	Hup = unix.EPOLLHUP | unix.EPOLLRDHUP | unix.EPOLLERR
)

// Handler handles the events of one file descriptor, on the loop's thread.
type Handler interface {
	Event(ev uint32)
}

// Loop is one event loop. Create it with New, run it with Run (on a
// goroutine of its own), stop it with Close.
type Loop struct {
	epfd     int
	wakefd   int // eventfd: Post wakes the loop
	handlers []Handler
	// paused: listeners taken off the epoll set by PauseListener, with
	// their handlers, until ResumeListeners.
	paused map[int]Handler

	mu      sync.Mutex
	posted  []func()
	running []func()
	woken   atomic.Bool
	closed  atomic.Bool
	done    chan struct{}

	// Tick, when set, runs on the loop at least every TickEvery (timeouts).
	Tick      func(now time.Time)
	TickEvery time.Duration
	lastTick  time.Time
	lastYield time.Time
}

// yieldEvery: a loop yields its P this often (sysmon preempts a goroutine
// that ran for 10 ms).
const yieldEvery = 2 * time.Millisecond

// New returns a loop (not yet running).
func New() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &Loop{epfd: epfd, wakefd: wfd, done: make(chan struct{}), TickEvery: 100 * time.Millisecond}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &ev); err != nil {
		unix.Close(wfd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return l, nil
}

// Add registers fd (non-blocking) with h for edge-triggered input, output
// and hang-up events. Call it on the loop (or before Run).
func (l *Loop) Add(fd int, h Handler) error {
	return l.add(fd, h, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET)
}

// AddListener registers a listening socket shared with other loops
// (level-triggered, EPOLLEXCLUSIVE: one loop is woken per connection).
func (l *Loop) AddListener(fd int, h Handler) error {
	return l.add(fd, h, unix.EPOLLIN|unix.EPOLLEXCLUSIVE)
}

func (l *Loop) add(fd int, h Handler, events uint32) error {
	for fd >= len(l.handlers) {
		l.handlers = append(l.handlers, make([]Handler, len(l.handlers)+64)...)
	}
	l.handlers[fd] = h
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.handlers[fd] = nil
		return fmt.Errorf("epoll_ctl add %d: %w", fd, err)
	}
	return nil
}

// Remove unregisters fd (it stays open). Call it on the loop.
func (l *Loop) Remove(fd int) {
	delete(l.paused, fd)
	if fd >= 0 && fd < len(l.handlers) {
		l.handlers[fd] = nil
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// CloseFd unregisters and closes fd. Call it on the loop.
func (l *Loop) CloseFd(fd int) {
	delete(l.paused, fd)
	if fd >= 0 && fd < len(l.handlers) {
		l.handlers[fd] = nil
	}
	// close(2) removes it from the epoll set (no other descriptor shares
	// its file description).
	_ = unix.Close(fd)
}

// PauseListener takes the listener fd (added with AddListener) off the
// loop until ResumeListeners, keeping its handler. For an accept that
// failed with AcceptExhausted: the connection stays queued, the
// level-triggered listener stays readable, and the loop would spin on it.
// Call it on the loop.
func (l *Loop) PauseListener(fd int) {
	if fd < 0 || fd >= len(l.handlers) || l.handlers[fd] == nil {
		return
	}
	if l.paused == nil {
		l.paused = map[int]Handler{}
	}
	l.paused[fd] = l.handlers[fd]
	l.handlers[fd] = nil
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// ResumeListeners adds the paused listeners back. The owner calls it
// from Tick (accepts are then retried every TickEvery), unless it is
// shutting down; Remove and CloseFd forget a paused fd. Call it on the
// loop.
func (l *Loop) ResumeListeners() {
	for fd, h := range l.paused {
		delete(l.paused, fd)
		_ = l.AddListener(fd, h)
	}
}

// AcceptExhausted reports whether an Accept error means the process or
// the system ran out of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
// ENOMEM); see PauseListener.
func AcceptExhausted(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) ||
		errors.Is(err, unix.ENOMEM)
}

// Post runs f on the loop soon; safe from any goroutine. Functions posted
// after Close never run.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	l.posted = append(l.posted, f)
	l.mu.Unlock()
	if !l.woken.Swap(true) {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wakefd, one[:])
	}
}

// Close stops Run after its current iteration; it does not close the
// registered descriptors (the owner closes them from a posted function or
// after Done).
func (l *Loop) Close() {
	if l.closed.Swap(true) {
		return
	}
	l.Post(func() {})
}

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Run serves events until Close. The goroutine is not locked to its
// thread: a locked goroutine that the scheduler preempts (or that
// yields) can only resume on its own thread, after a hand-off of its P
// through another thread and two futex wake-ups, which on a busy
// two-core machine left the CPU idle about 15 % of the time under load.
func (l *Loop) Run() {
	defer func() {
		unix.Close(l.wakefd)
		unix.Close(l.epfd)
		close(l.done)
	}()
	events := make([]unix.EpollEvent, 256)
	for !l.closed.Load() {
		n, err := epollWait(l.epfd, events, 0)
		if n == 0 && err == 0 {
			tmo := -1
			if l.Tick != nil {
				tmo = max(int((l.TickEvery-time.Since(l.lastTick))/time.Millisecond), 0) + 1
			}
			n, err = epollWait(l.epfd, events, tmo)
		}
		if err != 0 {
			// EINTR: the runtime's preemption signal, about every 10 ms
			// while the loop sleeps (to the scheduler it is running);
			// the tick below must still come.
			if err != unix.EINTR {
				panic(fmt.Sprintf("evloop: epoll_wait: %v", err))
			}
			n = 0
		}
		for i := range n {
			fd := int(events[i].Fd)
			if fd == l.wakefd {
				var b [8]byte
				_, _ = unix.Read(l.wakefd, b[:])
				l.woken.Store(false)
				l.runPosted()
				continue
			}
			if fd < len(l.handlers) {
				if h := l.handlers[fd]; h != nil {
					h.Event(events[i].Events)
				}
			}
		}
		now := time.Now()
		if l.Tick != nil && now.Sub(l.lastTick) >= l.TickEvery {
			l.lastTick = now
			l.Tick(now)
		}
		if now.Sub(l.lastYield) >= yieldEvery {
			// To the scheduler the loop runs all the time (its system
			// calls are raw): yielding now and then changes its
			// scheduling tick, so sysmon does not preempt it with a
			// signal, and lets waiting goroutines have its P.
			l.lastYield = now
			runtime.Gosched()
		}
	}
	l.runPosted()
}

func (l *Loop) runPosted() {
	l.mu.Lock()
	l.running, l.posted = l.posted, l.running[:0]
	l.mu.Unlock()
	for i, f := range l.running {
		f()
		l.running[i] = nil
	}
}

// epollWait waits for events without telling the scheduler (a raw
// system call): the loop keeps its P while it sleeps in the kernel, so
// sysmon has no P in a system call to retake and the thread needs no P
// when it wakes. The owner accounts for the Ps the loops hold (see
// dispatcher.EventServer). A blocked wait is interrupted (EINTR) by the
// runtime's preemption signal, so a stop-the-world still gets the P.
func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, syscall.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// Read reads from the non-blocking fd without entering the scheduler's
// syscall state. n < 0 never: errors come as err (EAGAIN when nothing is
// there); n == 0 with err == 0 is end of stream.
func Read(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// Write writes to the non-blocking fd as Read reads.
func Write(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// ReadStatus is what one ReadMore found.
type ReadStatus int

const (
	ReadFull   ReadStatus = iota // filled all the room it had: more may be waiting
	ReadShort                    // read less than the room: the socket is drained
	ReadAgain                    // nothing there (EAGAIN)
	ReadEOF                      // end of stream
	ReadFailed                   // a read error (returned beside)
)

// ReadMore reads once from fd into buf's free space (again after EINTR),
// growing buf first when less than 512 bytes are free (to twice its
// capacity, at least grow bytes), and returns buf with what was read
// appended, what the read found and, for ReadFailed, the error. Read
// loops of connections differ only in what they do with each outcome.
func ReadMore(fd int, buf []byte, grow int) ([]byte, ReadStatus, syscall.Errno) {
	if cap(buf)-len(buf) < 512 {
		nb := make([]byte, len(buf), max(2*cap(buf), grow, len(buf)+512))
		copy(nb, buf)
		buf = nb
	}
	free := buf[len(buf):cap(buf)]
	for {
		n, e := Read(fd, free)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return buf, ReadAgain, 0
		case e != 0:
			return buf, ReadFailed, e
		case n == 0:
			return buf, ReadEOF, 0
		case n < len(free):
			return buf[:len(buf)+n], ReadShort, 0
		}
		return buf[:len(buf)+n], ReadFull, 0
	}
}

// WriteOut writes buf to fd until all of it is written, the socket is
// full (EAGAIN: the rest waits for the next Out event) or a write fails,
// and returns what is left (nil once written, when its capacity had grown
// past keep) and the write error.
func WriteOut(fd int, buf []byte, keep int) ([]byte, syscall.Errno) {
	for len(buf) > 0 {
		n, e := Write(fd, buf)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return buf, 0
		case e != 0:
			return buf, e
		}
		buf = buf[:copy(buf, buf[n:])]
	}
	if cap(buf) > keep {
		return nil, 0
	}
	return buf, 0
}

// Accept accepts one connection from the non-blocking listening fd as a
// non-blocking, close-on-exec descriptor with TCP_NODELAY set.
func Accept(lfd int) (int, unix.Sockaddr, error) {
	fd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return -1, nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return fd, sa, nil
}

// Dial starts a non-blocking TCP connect to addr; the connection is
// established (or failed: ConnectError) when its fd turns writable.
func Dial(addr *net.TCPAddr) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := addr.IP.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: addr.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: addr.Port}
		copy(s.Addr[:], addr.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ConnectError is the outcome of a non-blocking connect (nil: connected).
func ConnectError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

// ListenerFd returns a non-blocking duplicate of ln's socket, for loops
// to accept from; ln itself stays open (and is never Accept'ed).
func ListenerFd(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("evloop: listener %T has no file descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return fd, nil
}
