package optimizer

import (
	"cmp"
	"slices"
)

// Evaluate scores a given allocation of p exactly as Solve's objective does:
// each service's running variants (cores per replica and replicas from
// allocs, matched by service and variant name; RPS is ignored) are filled
// most-accurate-first up to λ, and the loading cost counts variants whose
// (cores, replicas) differ from their current ones. It is how a caller
// checks a plan it got elsewhere (a baseline, an older decision). Cores over
// the budget are not rejected; the result's Cores shows them.
func Evaluate(p Problem, allocs []Allocation) Solution {
	var sol Solution
	sol.Feasible = true
	for si := range p.Services {
		sv := &p.Services[si]
		res := ServiceResult{Name: sv.Name, Allocations: []Allocation{}}
		type run struct {
			vi   int
			c, r int
		}
		var runs []run
		var maxLT float64
		for vi, v := range sv.Variants {
			maxLT = max(maxLT, v.LoadTime)
			for _, a := range allocs {
				if a.Variant == v.Name && (a.Service == sv.Name || len(p.Services) == 1) && a.Cores > 0 && a.Replicas > 0 {
					runs = append(runs, run{vi, a.Cores, a.Replicas})
					break
				}
			}
		}
		slices.SortStableFunc(runs, func(x, y run) int {
			return cmp.Compare(sv.Variants[y.vi].Accuracy, sv.Variants[x.vi].Accuracy)
		})
		rem := sv.Load
		var accL, lc float64
		byIdx := map[int]Allocation{}
		for _, r := range runs {
			v := &sv.Variants[r.vi]
			capac := 0.0
			if len(v.Capacity) > 0 {
				capac = v.Capacity[min(r.c, len(v.Capacity)-1)] * float64(r.r)
			}
			l := min(capac, rem)
			rem -= l
			accL += v.Accuracy * l
			res.Served += l
			res.Cores += r.c * r.r
			curR := v.CurrentReplicas
			if v.Current > 0 && curR <= 0 {
				curR = 1
			}
			if r.c != v.Current || r.r != curR {
				lc = max(lc, v.LoadTime)
			}
			byIdx[r.vi] = Allocation{Service: sv.Name, Variant: v.Name, Cores: r.c, Replicas: r.r, RPS: l}
		}
		for vi := range sv.Variants {
			if a, ok := byIdx[vi]; ok {
				res.Allocations = append(res.Allocations, a)
			}
		}
		res.Feasible = rem <= 1e-9
		if res.Served > 0 {
			res.Accuracy = accL / res.Served
		}
		if sv.Load > 0 {
			res.Objective = accL / sv.Load
		}
		if p.Budget > 0 {
			res.Objective -= sv.Alpha * float64(res.Cores) / float64(p.Budget)
		}
		if maxLT > 0 {
			res.Objective -= sv.Beta * lc / maxLT
		}
		sol.addService(res)
	}
	return sol
}

// addService adds one service's result to the solution: objectives and cores
// add up, Feasible needs every service, and Accuracy stays the accuracy over
// all served load (weighted by each service's served RPS).
func (sol *Solution) addService(res ServiceResult) {
	served := 0.0
	for _, r := range sol.Services {
		served += r.Served
	}
	if total := served + res.Served; total > 0 {
		sol.Accuracy = (sol.Accuracy*served + res.Accuracy*res.Served) / total
	}
	sol.Services = append(sol.Services, res)
	sol.Feasible = sol.Feasible && res.Feasible
	sol.Objective += res.Objective
	sol.Cores += res.Cores
	sol.Allocations = append(sol.Allocations, res.Allocations...)
}
