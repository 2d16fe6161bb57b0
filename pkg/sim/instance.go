package sim

import (
	"math"
	"math/rand/v2"
	"slices"
)

// seg is a cost segment: from time at, the instance holds cores.
type seg struct {
	at    float64
	cores int
}

// instance is one running copy of a variant: an FCFS queue with `cores`
// servers. Arrivals are offered in time order, so each request's start and
// finish are known at arrival (Kiefer–Wolfowitz / Lindley recursion) and no
// per-request events are needed.
type instance struct {
	v      int
	cores  int
	free   []float64 // when each server is next free (s)
	q      []float64 // start times of accepted requests still waiting
	qh     int       // head of q
	qlimit int       // max waiting requests; 0 = unlimited
	mean   float64   // mean service time (s)
	ready  float64   // serves from this time
	segs   []seg
	end    float64 // +Inf while alive
}

// offer admits a request arriving at t. It returns the latency and the
// service time, or ok=false if the request was dropped (queue full) or
// abandoned (it would wait longer than timeout).
func (in *instance) offer(t, timeout, mu, sigma float64, rng *rand.Rand) (lat, svc float64, ok bool) {
	for in.qh < len(in.q) && in.q[in.qh] <= t {
		in.qh++
	}
	if in.qh > 1024 && in.qh*2 > len(in.q) {
		n := copy(in.q, in.q[in.qh:])
		in.q = in.q[:n]
		in.qh = 0
	}
	if in.qlimit > 0 && len(in.q)-in.qh >= in.qlimit {
		return 0, 0, false
	}
	k := argmin(in.free)
	start := max(t, in.free[k])
	if start-t > timeout {
		return 0, 0, false
	}
	svc = in.mean * math.Exp(mu+sigma*rng.NormFloat64())
	in.free[k] = start + svc
	if start > t {
		in.q = append(in.q, start)
	}
	return in.free[k] - t, svc, true
}

// resize changes the server count at time t (in-place resize). Growing
// adds servers free at t; shrinking keeps the servers that free up first
// (work already admitted on the others still completes).
func (in *instance) resize(t float64, cores int, mean float64, qlimit int) {
	if cores > in.cores {
		for range cores - in.cores {
			in.free = append(in.free, t)
		}
	} else if cores < in.cores {
		slices.Sort(in.free)
		in.free = in.free[:cores]
	}
	in.cores, in.mean, in.qlimit = cores, mean, qlimit
	in.segs = append(in.segs, seg{t, cores})
}

// stop ends the instance at t: it takes no new requests and is paid for
// until its admitted work is done.
func (in *instance) stop(t float64) {
	end := t
	for _, f := range in.free {
		end = max(end, f)
	}
	in.end = end
}
