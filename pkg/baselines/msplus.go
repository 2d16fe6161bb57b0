package baselines

import (
	"fmt"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/optimizer"
)

// NewMSPlus returns MS+ (reference §1.8, reconfig.py::reconfig_msp): the
// InfAdapter decider (same forecaster, ×1.10, 30 s, 4-step scale-down
// stabilisation) with a solver that serves one variant at a time.
func NewMSPlus(cfg decider.Config) (*decider.InfAdapter, error) {
	cfg.Name = "ms+"
	cfg.Solve = SolveMSPlus
	return decider.NewInfAdapter(cfg)
}

// SolveMSPlus is reconfig_msp on the first service of p:
//  1. max_cpu = the smallest n ∈ [MinCores, B] at which the most accurate
//     variant's capacity ≥ λ, else B (the paper's quirk: it caps every
//     option at what the most accurate variant would need);
//  2. per variant, the smallest n ∈ [MinCores, max_cpu] with capacity ≥ λ;
//  3. the option maximising acc − α·n/B − β·LC/max loadTime.
//
// With no option it falls back to the least accurate variant with B cores
// (the paper's fallback), marked infeasible.
func SolveMSPlus(p optimizer.Problem) (optimizer.Solution, error) {
	if len(p.Services) != 1 {
		return optimizer.Solution{}, fmt.Errorf("ms+: want exactly one service, got %d", len(p.Services))
	}
	sv := p.Services[0]
	vs := sv.Variants
	if len(vs) == 0 {
		return optimizer.Solution{}, fmt.Errorf("ms+: no variants")
	}
	lam := sv.Load
	minC := max(p.MinCores, 1)
	best, least := 0, 0
	maxLT := 0.0
	for i, v := range vs {
		if v.Accuracy > vs[best].Accuracy {
			best = i
		}
		if v.Accuracy < vs[least].Accuracy {
			least = i
		}
		maxLT = max(maxLT, v.LoadTime)
	}
	maxCPU := p.Budget
	for n := minC; n <= p.Budget; n++ {
		if decider.CapacityAt(vs[best], n) >= lam {
			maxCPU = n
			break
		}
	}
	bi, bn, bf := -1, 0, 0.0
	for i, v := range vs {
		for n := minC; n <= maxCPU; n++ {
			if decider.CapacityAt(v, n) < lam {
				continue
			}
			lc := 0.0
			if v.Current != n && maxLT > 0 {
				lc = v.LoadTime / maxLT
			}
			f := v.Accuracy - sv.Alpha*float64(n)/float64(p.Budget) - sv.Beta*lc
			if bi < 0 || f > bf {
				bi, bn, bf = i, n, f
			}
			break
		}
	}
	if bi < 0 {
		v := vs[least]
		served := min(lam, decider.CapacityAt(v, p.Budget))
		return optimizer.Solution{Feasible: false, Accuracy: v.Accuracy, Cores: p.Budget,
			Objective:   v.Accuracy - sv.Alpha,
			Allocations: []optimizer.Allocation{{Variant: v.Name, Cores: p.Budget, Replicas: 1, RPS: served}}}, nil
	}
	v := vs[bi]
	return optimizer.Solution{Feasible: true, Objective: bf, Accuracy: v.Accuracy, Cores: bn,
		Allocations: []optimizer.Allocation{{Variant: v.Name, Cores: bn, Replicas: 1, RPS: lam}}}, nil
}
