package optimizer

import (
	"math"
	"sort"
)

type bruteResult struct {
	Feasible    bool
	Served      float64
	Objective   float64
	Allocations []Allocation
}

// BruteForce enumerates every allocation of p (off, or r replicas of c cores
// per variant) and scores it with its own greedy fill. Tiny instances only.
func BruteForce(p Problem) bruteResult {
	minC := max(1, p.MinCores)
	maxC := p.MaxCoresPerReplica
	if maxC <= 0 || maxC > p.Budget {
		maxC = p.Budget
	}
	maxR := max(1, p.MaxReplicas)
	type slot struct{ s, v int }
	var slots []slot
	for si, sv := range p.Services {
		for vi := range sv.Variants {
			slots = append(slots, slot{si, vi})
		}
	}
	cfg := make([][2]int, len(slots))
	best := bruteResult{Served: -1}
	var rec func(i, used int)
	score := func() {
		var res bruteResult
		res.Feasible = true
		for si, sv := range p.Services {
			idx := []int{}
			for j, sl := range slots {
				if sl.s == si && cfg[j][0] > 0 {
					idx = append(idx, j)
				}
			}
			sort.SliceStable(idx, func(a, b int) bool {
				return sv.Variants[slots[idx[a]].v].Accuracy > sv.Variants[slots[idx[b]].v].Accuracy
			})
			rem := sv.Load
			acc, cores, lc, maxLT := 0.0, 0, 0.0, 0.0
			for _, v := range sv.Variants {
				maxLT = math.Max(maxLT, v.LoadTime)
			}
			for _, j := range idx {
				v := sv.Variants[slots[j].v]
				c, r := cfg[j][0], cfg[j][1]
				capac := 0.0
				if len(v.Capacity) > 0 {
					if c < len(v.Capacity) {
						capac = v.Capacity[c]
					} else {
						capac = v.Capacity[len(v.Capacity)-1]
					}
				}
				l := math.Min(capac*float64(r), rem)
				rem -= l
				acc += v.Accuracy * l
				res.Served += l
				cores += c * r
				cr := v.CurrentReplicas
				if v.Current > 0 && cr == 0 {
					cr = 1
				}
				if c != v.Current || r != cr {
					lc = math.Max(lc, v.LoadTime)
				}
			}
			if rem > 1e-9 {
				res.Feasible = false
			}
			if sv.Load > 0 {
				res.Objective += acc / sv.Load
			}
			if p.Budget > 0 {
				res.Objective -= sv.Alpha * float64(cores) / float64(p.Budget)
			}
			if maxLT > 0 {
				res.Objective -= sv.Beta * lc / maxLT
			}
		}
		if res.Served > best.Served+1e-9 || (math.Abs(res.Served-best.Served) <= 1e-9 && res.Objective > best.Objective+1e-12) {
			res.Allocations = nil
			for j, sl := range slots {
				if cfg[j][0] > 0 {
					res.Allocations = append(res.Allocations, Allocation{Service: p.Services[sl.s].Name, Variant: p.Services[sl.s].Variants[sl.v].Name, Cores: cfg[j][0], Replicas: cfg[j][1]})
				}
			}
			best = res
		}
	}
	rec = func(i, used int) {
		if i == len(slots) {
			score()
			return
		}
		cfg[i] = [2]int{0, 0}
		rec(i+1, used)
		for c := minC; c <= maxC; c++ {
			for r := 1; r <= maxR && used+c*r <= p.Budget; r++ {
				cfg[i] = [2]int{c, r}
				rec(i+1, used+c*r)
			}
		}
		cfg[i] = [2]int{0, 0}
	}
	rec(0, 0)
	return best
}
