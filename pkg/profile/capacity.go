package profile

import (
	"fmt"
	"math"

	"github.com/infadapter/infadapter/pkg/optimizer"
)

// at returns the measured capacity at exactly c cores.
func (v *Variant) at(c int) (float64, bool) {
	for _, pt := range v.Capacity {
		if pt.Cores == c {
			return pt.RPS, true
		}
	}
	return 0, false
}

// coefficient returns the safety factor applied to derived capacities.
func (p *Profile) coefficient() float64 {
	if p.Coefficient == 0 {
		return 1
	}
	return p.Coefficient
}

// LinearFit is the least-squares line capacity = A·cores + B that
// RulePaperLinear fits for variant vi over the profile's FitCores (every
// measured point when FitCores is empty), before the intercept is clipped.
// For the built-in ResNet18 it is (24.45, −6.17), as in reference §1.5.
func (p *Profile) LinearFit(vi int) (a, b float64, err error) {
	v := &p.Variants[vi]
	var xs, ys []float64
	if len(p.FitCores) == 0 {
		for _, pt := range v.Capacity {
			xs = append(xs, float64(pt.Cores))
			ys = append(ys, pt.RPS)
		}
	} else {
		for _, c := range p.FitCores {
			y, ok := v.at(c)
			if !ok {
				return 0, 0, fmt.Errorf("variant %s: no measured point at %d cores", v.Name, c)
			}
			xs = append(xs, float64(c))
			ys = append(ys, y)
		}
	}
	n := float64(len(xs))
	if len(xs) < 2 {
		return 0, 0, fmt.Errorf("variant %s: a line needs at least 2 points, got %d", v.Name, len(xs))
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i] / n
		my += ys[i] / n
	}
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0, 0, fmt.Errorf("variant %s: all fit points have the same core count", v.Name)
	}
	a = sxy / sxx
	return a, my - a*mx, nil
}

// CapacityAt returns variant vi's capacity (RPS within the SLO) at the given
// number of cores under the profile's rule, times the coefficient.
//
//   - RuleInterpolate (default): the measured value at measured counts;
//     linear between neighbouring measured counts; 0 below the smallest
//     measured count; above the largest, the last segment's slope
//     (never negative) continued, or flat with one point.
//   - RulePaperLinear: int(coef·(A·cores + trunc(min(B, 0.99)))), floored
//     at 0, with (A, B) from LinearFit — the paper's reconfig.py.
//
// A profile that failed validation may give meaningless numbers, never a
// panic; cores ≤ 0 gives 0.
func (p *Profile) CapacityAt(vi, cores int) float64 {
	if cores <= 0 || vi < 0 || vi >= len(p.Variants) {
		return 0
	}
	v := &p.Variants[vi]
	if p.Rule == RulePaperLinear {
		a, b, err := p.LinearFit(vi)
		if err != nil {
			return 0
		}
		b = math.Trunc(math.Min(b, 0.99))
		return math.Max(0, math.Trunc(p.coefficient()*(a*float64(cores)+b)))
	}
	pts := v.Capacity
	if len(pts) == 0 || cores < pts[0].Cores {
		return 0
	}
	coef := p.coefficient()
	for i := range pts {
		if pts[i].Cores == cores {
			return coef * pts[i].RPS
		}
		if pts[i].Cores > cores {
			lo, hi := pts[i-1], pts[i]
			f := float64(cores-lo.Cores) / float64(hi.Cores-lo.Cores)
			return coef * (lo.RPS + f*(hi.RPS-lo.RPS))
		}
	}
	last := pts[len(pts)-1]
	slope := 0.0
	if len(pts) > 1 {
		prev := pts[len(pts)-2]
		slope = math.Max(0, (last.RPS-prev.RPS)/float64(last.Cores-prev.Cores))
	}
	return coef * (last.RPS + slope*float64(cores-last.Cores))
}

// OptimizerVariants converts the profile for the optimiser: one
// optimizer.Variant per profile variant, in profile order, with
// Capacity[c] = CapacityAt(c) rounded down to a whole RPS for c = 0..maxCores
// (the last entry then holds for larger c, as optimizer.Variant documents).
// Rounding down keeps the promise conservative (capacities were measured as
// whole RPS) and lets the optimiser work in exact integer RPS. Current is 0;
// set it from the running state.
func (p *Profile) OptimizerVariants(maxCores int) []optimizer.Variant {
	maxCores = max(maxCores, 0)
	out := make([]optimizer.Variant, len(p.Variants))
	for vi, v := range p.Variants {
		capac := make([]float64, maxCores+1)
		for c := 1; c <= maxCores; c++ {
			capac[c] = math.Floor(p.CapacityAt(vi, c) + 1e-9)
		}
		out[vi] = optimizer.Variant{Name: v.Name, Accuracy: v.Accuracy, LoadTime: v.LoadTimeSeconds, Capacity: capac}
	}
	return out
}
