package profile

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Validate reports every problem in p (errors.Join of *FieldError, each
// naming the field path). Profiles from Parse also carry line numbers;
// Parse already validates, so Validate is for profiles built in Go.
func (p *Profile) Validate() error {
	return errors.Join(p.validate("", nil)...)
}

// validate checks p; pos (may be nil) gives lines for field paths and, when
// present, says which fields were written at all (required-field checks).
func (p *Profile) validate(file string, pos positions) []error {
	var errs []error
	line := func(path string) int {
		if pos == nil {
			return 0
		}
		for path != "" {
			if l, ok := pos[path]; ok {
				return l
			}
			// fall back to the enclosing element's line
			if i := strings.LastIndexAny(path, ".["); i > 0 {
				path = path[:i]
			} else {
				break
			}
		}
		return 0
	}
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{File: file, Line: line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	required := func(path string) bool {
		if pos == nil {
			return true
		}
		if _, ok := pos[path]; !ok {
			bad(path, "required field is missing")
			return false
		}
		return true
	}
	if required("name") && strings.TrimSpace(p.Name) == "" {
		bad("name", "must not be empty")
	}
	if required("sloMillis") && p.SLOMillis <= 0 {
		bad("sloMillis", "must be > 0 (milliseconds), got %v", p.SLOMillis)
	}
	switch p.Rule {
	case "", RuleInterpolate, RulePaperLinear:
	default:
		bad("capacityRule", "must be %q or %q, got %q", RuleInterpolate, RulePaperLinear, p.Rule)
	}
	if p.Coefficient < 0 || p.Coefficient > 1 || math.IsNaN(p.Coefficient) {
		bad("capacityCoefficient", "must be in (0, 1] (0 or absent means 1), got %v", p.Coefficient)
	}
	for i, c := range p.FitCores {
		if c < 1 {
			bad(fmt.Sprintf("fitCores[%d]", i), "must be >= 1, got %d", c)
		} else if i > 0 && c <= p.FitCores[i-1] {
			bad(fmt.Sprintf("fitCores[%d]", i), "must be ascending without repeats (%d after %d)", c, p.FitCores[i-1])
		}
	}
	if p.Rule == RulePaperLinear && p.FitCores != nil && len(p.FitCores) < 2 {
		bad("fitCores", "the paper-linear rule needs at least 2 core counts to fit a line, got %d", len(p.FitCores))
	}
	if required("variants") && len(p.Variants) == 0 {
		bad("variants", "at least one variant is required")
	}
	names := map[string]int{}
	for vi := range p.Variants {
		v := &p.Variants[vi]
		vp := fmt.Sprintf("variants[%d]", vi)
		if required(vp + ".name") {
			if strings.TrimSpace(v.Name) == "" {
				bad(vp+".name", "must not be empty")
			} else if j, dup := names[v.Name]; dup {
				bad(vp+".name", "%q duplicates variants[%d]", v.Name, j)
			} else {
				names[v.Name] = vi
			}
		}
		if required(vp+".accuracy") && (v.Accuracy < 0 || v.Accuracy > 1 || math.IsNaN(v.Accuracy)) {
			bad(vp+".accuracy", "must be in [0, 1], got %v", v.Accuracy)
		}
		switch v.AccuracySource {
		case "", "measured", "published":
		default:
			bad(vp+".accuracySource", "must be \"measured\" or \"published\", got %q", v.AccuracySource)
		}
		if required(vp+".loadTimeSeconds") && (v.LoadTimeSeconds < 0 || math.IsNaN(v.LoadTimeSeconds)) {
			bad(vp+".loadTimeSeconds", "must be >= 0 (seconds), got %v", v.LoadTimeSeconds)
		}
		if v.Memory != "" {
			if q, err := resource.ParseQuantity(v.Memory); err != nil {
				bad(vp+".memory", "must be a Kubernetes quantity such as 1.5Gi, got %q", v.Memory)
			} else if q.Sign() <= 0 {
				bad(vp+".memory", "must be > 0, got %q", v.Memory)
			}
		}
		if !required(vp + ".capacity") {
			continue
		}
		if len(v.Capacity) == 0 {
			bad(vp+".capacity", "at least one measured point is required")
		}
		for ci, pt := range v.Capacity {
			cp := fmt.Sprintf("%s.capacity[%d]", vp, ci)
			if required(cp+".cores") && pt.Cores < 1 {
				bad(cp+".cores", "must be >= 1, got %d", pt.Cores)
			} else if ci > 0 && pt.Cores <= v.Capacity[ci-1].Cores && v.Capacity[ci-1].Cores >= 1 {
				bad(cp+".cores", "must be ascending without repeats (%d after %d)", pt.Cores, v.Capacity[ci-1].Cores)
			}
			if !required(cp + ".rps") {
				continue
			}
			if pt.RPS < 0 || math.IsNaN(pt.RPS) || math.IsInf(pt.RPS, 0) {
				bad(cp+".rps", "must be a finite number >= 0, got %v", pt.RPS)
			} else if ci > 0 && pt.RPS < v.Capacity[ci-1].RPS {
				bad(cp+".rps", "must be >= capacity at fewer cores (%v < %v)", pt.RPS, v.Capacity[ci-1].RPS)
			}
		}
		if p.Rule == RulePaperLinear {
			fit := p.FitCores
			if len(fit) == 0 && len(v.Capacity) < 2 {
				bad(vp+".capacity", "the paper-linear rule needs at least 2 measured points, got %d", len(v.Capacity))
			}
			for _, c := range fit {
				if _, ok := v.at(c); !ok {
					bad(vp+".capacity", "has no point at %d cores, which fitCores needs", c)
				}
			}
		}
	}
	return errs
}
