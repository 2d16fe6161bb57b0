// Package evloop is a small epoll event loop for Linux: one loop is one
// goroutine owning an epoll instance and the file descriptors registered
// with it, the way each of nginx's worker processes serves many
// connections. The dispatcher's event-loop server
// (dispatcher.EventServer) runs its client and backend connections on a
// few such loops.
//
// Why: behind the goroutine-per-connection server a proxied request cost
// the dispatcher ~31 µs of CPU against nginx's 22-24 µs, and about 28 %
// of it was the Go runtime's own work for blocking I/O — parking and
// waking goroutines (findRunnable, park_m), netpoll, and sysmon retaking
// the P of threads that sat in write(2) for more than 20 µs. Here reads,
// writes and epoll_wait are non-blocking or raw system calls
// (RawSyscall): the goroutine never leaves its P in _Psyscall, so sysmon
// has nothing to retake and nothing is parked. A loop therefore keeps its
// P (GOMAXPROCS slot) even while it sleeps in epoll_wait, so whoever runs
// loops must raise GOMAXPROCS by their number (dispatcher.EventServer
// does), else the rest of the program waits for the runtime's 10 ms
// preemption to get a P. A loop yields every 2 ms of running (Gosched)
// so that sysmon never preempts it with a signal.
//
// Handlers run on the loop's goroutine, one at a time: state owned by a
// loop needs no locks. Other goroutines talk to a loop only through Post.
package evloop
