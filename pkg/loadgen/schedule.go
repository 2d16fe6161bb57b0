package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Constant is a schedule of rps for seconds.
func Constant(rps float64, seconds int) ([]float64, error) {
	if !(rps > 0) || math.IsInf(rps, 0) {
		return nil, fmt.Errorf("rate must be a positive finite RPS, got %v", rps)
	}
	if seconds < 1 {
		return nil, fmt.Errorf("duration must be at least 1 s, got %d", seconds)
	}
	out := make([]float64, seconds)
	for i := range out {
		out[i] = rps
	}
	return out, nil
}

// ParseSteps parses "RPSxSECONDS,..." (e.g. "10x30,50x30,10x30": 10 RPS for
// 30 s, then 50, then 10) into a schedule.
func ParseSteps(spec string) ([]float64, error) {
	var out []float64
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		r, s, ok := strings.Cut(part, "x")
		if !ok {
			return nil, fmt.Errorf("steps %q: step %d %q: want RPSxSECONDS, e.g. 50x30", spec, i+1, part)
		}
		rps, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || rps < 0 || math.IsInf(rps, 0) || math.IsNaN(rps) {
			return nil, fmt.Errorf("steps %q: step %d: rate %q must be a finite number >= 0", spec, i+1, r)
		}
		secs, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || secs < 1 || secs > 7*24*3600 {
			return nil, fmt.Errorf("steps %q: step %d: seconds %q must be an integer in [1, 604800]", spec, i+1, s)
		}
		for range secs {
			out = append(out, rps)
		}
	}
	return out, nil
}
