package autoscaler

import (
	"math"

	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
)

// PlanningVariants turns a profile into the optimiser's variants with a
// capacity table of maxCores+1 entries (index = cores per replica).
//
// Rule (profile.RuleInterpolate, the default): 0 below the smallest
// measured core count, piecewise linear between measured points, the last
// segment's slope per core above the largest (never decreasing), all times
// the profile's Coefficient (0 = 1). profile.RulePaperLinear: a
// least-squares line a·c+b, intercept clipped to ≤ 0.99 and truncated, then
// int(coef·(a·c+b)) floored at 0.
//
// Example (interpolate): points 2:10, 4:24 → [0, 0, 10, 17, 24, 31, ...].
func PlanningVariants(p profile.Profile, maxCores int) []optimizer.Variant {
	coef := p.Coefficient
	if coef == 0 {
		coef = 1
	}
	out := make([]optimizer.Variant, 0, len(p.Variants))
	for _, v := range p.Variants {
		caps := make([]float64, maxCores+1)
		for c := 1; c <= maxCores; c++ {
			if p.Rule == profile.RulePaperLinear {
				caps[c] = paperLinear(v.Capacity, c, coef)
			} else {
				caps[c] = coef * interpolate(v.Capacity, c)
			}
			if c > 0 && caps[c] < caps[c-1] {
				caps[c] = caps[c-1]
			}
		}
		out = append(out, optimizer.Variant{Name: v.Name, Accuracy: v.Accuracy, LoadTime: v.LoadTimeSeconds, Capacity: caps})
	}
	return out
}

func interpolate(pts []profile.Point, c int) float64 {
	if len(pts) == 0 || c < pts[0].Cores {
		return 0
	}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		if c <= b.Cores {
			return a.RPS + (b.RPS-a.RPS)*float64(c-a.Cores)/float64(b.Cores-a.Cores)
		}
	}
	last := pts[len(pts)-1]
	slope := 0.0
	if len(pts) >= 2 {
		prev := pts[len(pts)-2]
		slope = math.Max(0, (last.RPS-prev.RPS)/float64(last.Cores-prev.Cores))
	}
	return last.RPS + slope*float64(c-last.Cores)
}

func paperLinear(pts []profile.Point, c int, coef float64) float64 {
	n := float64(len(pts))
	if n == 0 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, p := range pts {
		x := float64(p.Cores)
		sx, sy, sxx, sxy = sx+x, sy+p.RPS, sxx+x*x, sxy+x*p.RPS
	}
	a, b := 0.0, sy/n
	if d := n*sxx - sx*sx; d != 0 {
		a = (n*sxy - sx*sy) / d
		b = (sy - a*sx) / n
	}
	b = math.Trunc(math.Min(b, 0.99))
	return math.Max(0, math.Trunc(coef*(a*float64(c)+b)))
}
