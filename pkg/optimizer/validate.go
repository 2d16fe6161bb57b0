package optimizer

import (
	"errors"
	"fmt"
	"math"
)

// Limits that keep the solver's integer arithmetic and tables sane.
const (
	MaxBudget = 100_000 // cores
	MaxRPS    = 1e9     // requests per second
)

// Validate reports every problem with p at once (errors.Join), each naming
// the offending field, e.g. "services[0].variants[2].capacity[3]: negative".
// Solve calls it; callers that build problems by hand can call it earlier.
func (p Problem) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if p.Budget < 0 || p.Budget > MaxBudget {
		bad("budget", "must be in [0, %d] cores, got %d", MaxBudget, p.Budget)
	}
	if p.MinCores < 0 {
		bad("minCores", "must be >= 0, got %d", p.MinCores)
	}
	if p.MaxCoresPerReplica < 0 {
		bad("maxCoresPerReplica", "must be >= 0, got %d", p.MaxCoresPerReplica)
	}
	if p.MaxReplicas < 0 {
		bad("maxReplicas", "must be >= 0, got %d", p.MaxReplicas)
	}
	if p.MaxCoresPerReplica > 0 && p.MinCores > p.MaxCoresPerReplica {
		bad("minCores", "%d exceeds maxCoresPerReplica %d", p.MinCores, p.MaxCoresPerReplica)
	}
	if len(p.Services) == 0 {
		bad("services", "at least one service is required")
	}
	names := map[string]int{}
	for si, s := range p.Services {
		sp := fmt.Sprintf("services[%d]", si)
		if len(p.Services) > 1 {
			if j, dup := names[s.Name]; dup {
				bad(sp+".name", "%q duplicates services[%d]", s.Name, j)
			}
			names[s.Name] = si
		}
		if !finite(s.Load) || s.Load < 0 || s.Load > MaxRPS {
			bad(sp+".load", "must be a number in [0, %g] RPS, got %v", MaxRPS, s.Load)
		}
		if !finite(s.Alpha) || s.Alpha < 0 {
			bad(sp+".alpha", "must be a finite number >= 0, got %v", s.Alpha)
		}
		if !finite(s.Beta) || s.Beta < 0 {
			bad(sp+".beta", "must be a finite number >= 0, got %v", s.Beta)
		}
		vnames := map[string]int{}
		for vi, v := range s.Variants {
			vp := fmt.Sprintf("%s.variants[%d]", sp, vi)
			if v.Name == "" {
				bad(vp+".name", "must not be empty")
			} else if j, dup := vnames[v.Name]; dup {
				bad(vp+".name", "%q duplicates variants[%d]", v.Name, j)
			} else {
				vnames[v.Name] = vi
			}
			if !finite(v.Accuracy) || v.Accuracy < 0 {
				bad(vp+".accuracy", "must be a finite number >= 0, got %v", v.Accuracy)
			}
			if !finite(v.LoadTime) || v.LoadTime < 0 {
				bad(vp+".loadTime", "must be a finite number >= 0, got %v", v.LoadTime)
			}
			if v.Current < 0 {
				bad(vp+".current", "must be >= 0, got %d", v.Current)
			}
			if v.CurrentReplicas < 0 {
				bad(vp+".currentReplicas", "must be >= 0, got %d", v.CurrentReplicas)
			}
			for ci, c := range v.Capacity {
				if !finite(c) || c < 0 || c > MaxRPS {
					bad(fmt.Sprintf("%s.capacity[%d]", vp, ci), "must be a number in [0, %g] RPS, got %v", MaxRPS, c)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
