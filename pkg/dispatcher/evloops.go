package dispatcher

import "runtime"

// maxEventLoops bounds File.EventLoops (and NewEventServer's n).
const maxEventLoops = 256

// DefaultEventLoops is the number of event loops a dispatcher serves
// inference requests on by default: 2 × GOMAXPROCS on Linux, 0 (a
// goroutine per connection, Server) elsewhere. Twice the cores, not once
// as nginx's workers: a loop that sleeps in epoll_wait takes a wake-up
// to resume, and on the 2-core benchmark machine 2 loops left the CPU
// idle 10-15 % of the time at saturation where 4 left it 1-3 % idle
// (docs/benchmarks.md, Dispatcher).
func DefaultEventLoops() int {
	if runtime.GOOS != "linux" {
		return 0
	}
	return min(2*runtime.GOMAXPROCS(0), maxEventLoops)
}
