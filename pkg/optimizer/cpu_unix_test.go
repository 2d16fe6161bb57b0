//go:build unix

package optimizer

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time, reported next to wall
// time because the benchmark machine is shared (wall time includes waiting
// for a CPU).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
