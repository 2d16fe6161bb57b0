package dispatcher

import (
	"math"
	"sync"
)

// maxWindow bounds the SWRR window (the sum of the integer weights):
// shares are represented to 1e-4 at worst.
const maxWindow = 10000

// quantize turns non-negative weights into the smallest integers whose
// ratios match the shares to within 1e-3 of a request per window: 5,1,1 →
// 5,1,1 (window 7); 0.5,0.3,0.2 → 5,3,2; 1/3,2/3 → 1,2. When no window up
// to maxWindow fits, shares are rounded on a window of maxWindow. A
// positive weight never becomes 0.
func quantize(w []float64) []int64 {
	var sum float64
	for _, x := range w {
		sum += x
	}
	out := make([]int64, len(w))
	if sum <= 0 {
		return out
	}
	n := maxWindow
	for cand := 1; cand < maxWindow; cand++ {
		fits := true
		for _, x := range w {
			v := x / sum * float64(cand)
			if math.Abs(v-math.Round(v)) > 1e-3 || (x > 0 && math.Round(v) == 0) {
				fits = false
				break
			}
		}
		if fits {
			n = cand
			break
		}
	}
	var g int64
	for i, x := range w {
		if x <= 0 {
			continue
		}
		q := max(int64(math.Round(x/sum*float64(n))), 1)
		out[i] = q
		g = gcd(g, q)
	}
	if g > 1 {
		for i := range out {
			out[i] /= g
		}
	}
	return out
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// swrr is nginx's smooth weighted round-robin: every pick adds each
// eligible peer's weight to its current value, takes the peer with the
// largest current value and subtracts the eligible total from it. Over any
// window of sum(weights) consecutive picks (with a fixed eligible set) each
// peer is picked exactly weight times, spread out (5,1,1 → a a b a c a a).
type swrr struct {
	mu      sync.Mutex
	weights []int64
	current []int64
}

func newSWRR(weights []int64) *swrr {
	return &swrr{weights: weights, current: make([]int64, len(weights))}
}

// next returns the picked index among those with ok(i), or -1 when no
// eligible index has a positive weight.
func (s *swrr) next(ok func(int) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := -1
	var total int64
	for i, w := range s.weights {
		if w <= 0 || !ok(i) {
			continue
		}
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best >= 0 {
		s.current[best] -= total
	}
	return best
}
