package dispatcher

import (
	"sync"
	"time"
)

// secCounter counts events per wall-clock second in a ring of n seconds.
type secCounter struct {
	mu    sync.Mutex
	start int64 // first second counted (unix seconds)
	secs  []int64
	cnt   []int64
}

func newSecCounter(n int, start time.Time) *secCounter {
	c := &secCounter{start: start.Unix(), secs: make([]int64, n), cnt: make([]int64, n)}
	for i := range c.secs {
		c.secs[i] = -1
	}
	return c
}

func (c *secCounter) add(now time.Time) {
	s := now.Unix()
	i := int(s % int64(len(c.secs)))
	c.mu.Lock()
	if c.secs[i] != s {
		c.secs[i], c.cnt[i] = s, 0
	}
	c.cnt[i]++
	c.mu.Unlock()
}

// history returns the counts of the complete seconds before now, oldest
// first: at most max (<= 0: all kept) and none before the counter started.
func (c *secCounter) history(now time.Time, maxN int) []float64 {
	last := now.Unix() - 1 // second [last, last+1) is the last complete one
	n := int64(len(c.secs))
	if maxN > 0 && int64(maxN) < n {
		n = int64(maxN)
	}
	first := max(last-n+1, c.start)
	if first > last {
		return []float64{}
	}
	out := make([]float64, 0, last-first+1)
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := first; s <= last; s++ {
		i := int(s % int64(len(c.secs)))
		if c.secs[i] == s {
			out = append(out, float64(c.cnt[i]))
		} else {
			out = append(out, 0)
		}
	}
	return out
}
