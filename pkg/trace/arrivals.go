package trace

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ArrivalMode says how a second's rate becomes arrival times.
type ArrivalMode string

const (
	// ArrivalPoisson is a Poisson process whose rate is the second's RPS:
	// exponential gaps, so the count in a second is Poisson(RPS). Default.
	ArrivalPoisson ArrivalMode = "poisson"
	// ArrivalExactUniform puts exactly round(RPS) arrivals in the second at
	// uniformly random times (a Poisson process conditioned on the count):
	// the replayed total equals the trace's.
	ArrivalExactUniform ArrivalMode = "exact"
	// ArrivalEven spaces round(RPS) arrivals evenly (a paced load generator).
	ArrivalEven ArrivalMode = "even"
)

// ParseArrivalMode parses a mode name; "" is ArrivalPoisson.
func ParseArrivalMode(s string) (ArrivalMode, error) {
	switch ArrivalMode(s) {
	case "", ArrivalPoisson:
		return ArrivalPoisson, nil
	case ArrivalExactUniform, ArrivalEven:
		return ArrivalMode(s), nil
	}
	return "", fmt.Errorf("unknown arrival mode %q (want poisson, exact or even)", s)
}

// Arrivals generates request arrival times (seconds from the trace start)
// in increasing order. Not safe for concurrent use.
type Arrivals struct {
	rps  []float64
	mode ArrivalMode
	rng  *rand.Rand
	sec  int       // current second
	t    float64   // Poisson: last arrival time
	buf  []float64 // exact/even: arrivals of the current second
	pos  int
}

// NewArrivals returns a seeded arrival generator over rps.
func NewArrivals(rps []float64, mode ArrivalMode, seed uint64) *Arrivals {
	if mode == "" {
		mode = ArrivalPoisson
	}
	a := &Arrivals{rps: rps, mode: mode, rng: rand.New(rand.NewPCG(seed, 0x617272697661)), sec: -1}
	return a
}

// Next returns the next arrival time, or ok=false at the end of the trace.
func (a *Arrivals) Next() (t float64, ok bool) {
	if a.mode == ArrivalPoisson {
		return a.nextPoisson()
	}
	for a.pos >= len(a.buf) {
		a.sec++
		if a.sec >= len(a.rps) {
			return 0, false
		}
		n := int(math.Round(a.rps[a.sec]))
		a.buf = a.buf[:0]
		a.pos = 0
		base := float64(a.sec)
		for i := 0; i < n; i++ {
			if a.mode == ArrivalEven {
				a.buf = append(a.buf, base+(float64(i)+0.5)/float64(n))
			} else {
				a.buf = append(a.buf, base+a.rng.Float64())
			}
		}
		if a.mode == ArrivalExactUniform {
			sortFloats(a.buf)
		}
	}
	t = a.buf[a.pos]
	a.pos++
	return t, true
}

// nextPoisson walks a piecewise-constant-rate Poisson process: draw a unit
// exponential and spend it across seconds at their rates (exact for a
// piecewise-constant rate, and memoryless so seconds with rate 0 are
// skipped correctly).
func (a *Arrivals) nextPoisson() (float64, bool) {
	if a.sec < 0 {
		a.sec, a.t = 0, 0
	}
	e := a.rng.ExpFloat64()
	for a.sec < len(a.rps) {
		r := a.rps[a.sec]
		end := float64(a.sec + 1)
		if r > 0 {
			need := e / r
			if a.t+need < end {
				a.t += need
				return a.t, true
			}
			e -= (end - a.t) * r
		}
		a.sec++
		a.t = end
	}
	return 0, false
}

// sortFloats is an insertion sort: per-second buffers are small (≤ a few
// hundred), where it beats sort.Float64s and avoids an allocation.
func sortFloats(x []float64) {
	for i := 1; i < len(x); i++ {
		v := x[i]
		j := i - 1
		for j >= 0 && x[j] > v {
			x[j+1] = x[j]
			j--
		}
		x[j+1] = v
	}
}
