package sim

import "github.com/infadapter/infadapter/pkg/profile"

// VariantsFromProfile returns the simulator's truth from a profile: the
// measured capacities (RuleInterpolate, coefficient 1: every measured point
// exactly, linear between, 0 below the smallest measured count) for 1 to
// maxCores cores. The profile's own rule and safety coefficient are what
// policies plan with, not what the simulated servers do.
func VariantsFromProfile(p profile.Profile, maxCores int) []Variant {
	q := p
	q.Rule = profile.RuleInterpolate
	q.Coefficient = 1
	out := make([]Variant, len(p.Variants))
	for vi, v := range p.Variants {
		capac := make([]float64, max(maxCores, 1)+1)
		for c := 1; c < len(capac); c++ {
			capac[c] = q.CapacityAt(vi, c)
		}
		out[vi] = Variant{Name: v.Name, Accuracy: v.Accuracy, LoadTime: v.LoadTimeSeconds, Capacity: capac}
	}
	return out
}
