package optimizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// FileProblem is the canonical single-service problem file that
// `infadapter solve --problem` reads:
//
//	{"load": 274, "budget": 20, "alpha": 0.05, "beta": 0.001, "minCores": 2,
//	 "variants": [{"name": "resnet18", "accuracy": 0.69758, "loadTime": 6.44,
//	               "capacity": [0, 19, 43], "current": 0}]}
//
// capacity[c] is the RPS one instance serves within the SLO at c cores
// (capacity[0] must be 0); the last entry holds for larger c.
type FileProblem struct {
	Load     *float64      `json:"load"`
	Budget   *int          `json:"budget"`
	Alpha    float64       `json:"alpha"`
	Beta     float64       `json:"beta"`
	MinCores int           `json:"minCores"`
	Variants []FileVariant `json:"variants"`
}

// FileVariant is one variant of a FileProblem.
type FileVariant struct {
	Name     string    `json:"name"`
	Accuracy *float64  `json:"accuracy"`
	LoadTime float64   `json:"loadTime"`
	Capacity []float64 `json:"capacity"`
	Current  int       `json:"current"`
}

// FileSolution is the JSON `infadapter solve --json` prints.
type FileSolution struct {
	Feasible    bool             `json:"feasible"`
	Objective   float64          `json:"objective"`
	Accuracy    float64          `json:"accuracy"`
	Cores       int              `json:"cores"`
	Allocations []FileAllocation `json:"allocations"`
}

// FileAllocation is one running variant in a FileSolution.
type FileAllocation struct {
	Variant  string  `json:"variant"`
	Cores    int     `json:"cores"`
	Replicas int     `json:"replicas"`
	RPS      float64 `json:"rps"`
}

// ToFileSolution flattens a Solution into the CLI's JSON shape.
func ToFileSolution(s Solution) FileSolution {
	out := FileSolution{Feasible: s.Feasible, Objective: s.Objective, Accuracy: s.Accuracy, Cores: s.Cores, Allocations: []FileAllocation{}}
	for _, a := range s.Allocations {
		if a.Cores > 0 {
			out.Allocations = append(out.Allocations, FileAllocation{Variant: a.Variant, Cores: a.Cores, Replicas: a.Replicas, RPS: a.RPS})
		}
	}
	return out
}

// ParseProblemJSON reads a FileProblem strictly (unknown fields, trailing
// data, missing required fields and bad values are errors; every value
// problem is reported, errors.Join) and returns it as a one-service Problem.
func ParseProblemJSON(data []byte) (Problem, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var fp FileProblem
	if err := dec.Decode(&fp); err != nil {
		return Problem{}, jsonError(data, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Problem{}, fmt.Errorf("unexpected data after the problem object (%s)", where(data, dec.InputOffset()))
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	p := Problem{MinCores: fp.MinCores}
	if fp.Load == nil {
		bad("load", "required")
	} else if *fp.Load < 0 || *fp.Load > MaxRPS {
		bad("load", "must be in [0, %g] RPS, got %v", MaxRPS, *fp.Load)
	}
	if fp.Budget == nil {
		bad("budget", "required")
	} else {
		p.Budget = *fp.Budget
		if p.Budget < 1 || p.Budget > MaxBudget {
			bad("budget", "must be in [1, %d] cores, got %d", MaxBudget, p.Budget)
		} else if p.Budget < fp.MinCores {
			bad("budget", "%d is less than minCores %d: no variant could run", p.Budget, fp.MinCores)
		}
	}
	if fp.MinCores < 0 {
		bad("minCores", "must be >= 0, got %d", fp.MinCores)
	}
	if fp.Alpha < 0 {
		bad("alpha", "must be >= 0, got %v", fp.Alpha)
	}
	if fp.Beta < 0 {
		bad("beta", "must be >= 0, got %v", fp.Beta)
	}
	if len(fp.Variants) == 0 {
		bad("variants", "at least one variant is required")
	}
	sv := Service{Alpha: fp.Alpha, Beta: fp.Beta}
	if fp.Load != nil {
		sv.Load = *fp.Load
	}
	names := map[string]int{}
	for i, v := range fp.Variants {
		vp := fmt.Sprintf("variants[%d]", i)
		if v.Name == "" {
			bad(vp+".name", "required, non-empty")
		} else if j, dup := names[v.Name]; dup {
			bad(vp+".name", "%q duplicates variants[%d]", v.Name, j)
		} else {
			names[v.Name] = i
		}
		acc := 0.0
		if v.Accuracy == nil {
			bad(vp+".accuracy", "required")
		} else if acc = *v.Accuracy; acc < 0 || acc > 1 {
			bad(vp+".accuracy", "must be in [0, 1], got %v", acc)
		}
		if v.LoadTime < 0 {
			bad(vp+".loadTime", "must be >= 0 (seconds), got %v", v.LoadTime)
		}
		if v.Current < 0 {
			bad(vp+".current", "must be >= 0 cores, got %d", v.Current)
		}
		if len(v.Capacity) == 0 {
			bad(vp+".capacity", "required: RPS at 0, 1, 2, ... cores, e.g. [0, 19, 43]")
		}
		for c, x := range v.Capacity {
			cp := fmt.Sprintf("%s.capacity[%d]", vp, c)
			switch {
			case x < 0 || x > MaxRPS || math.IsInf(x, 0) || math.IsNaN(x):
				bad(cp, "must be in [0, %g] RPS, got %v", MaxRPS, x)
			case c == 0 && x != 0:
				bad(cp, "capacity at 0 cores must be 0, got %v", x)
			case c > 0 && x < v.Capacity[c-1]:
				bad(cp, "must be >= capacity at fewer cores (%v < %v)", x, v.Capacity[c-1])
			}
		}
		sv.Variants = append(sv.Variants, Variant{Name: v.Name, Accuracy: acc, LoadTime: v.LoadTime, Capacity: v.Capacity, Current: v.Current})
	}
	p.Services = []Service{sv}
	if err := errors.Join(errs...); err != nil {
		return Problem{}, err
	}
	return p, nil
}

// jsonError turns a decoding error into one that says where.
func jsonError(data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at %s: %v", where(data, se.Offset), se)
	case errors.As(err, &te):
		return fmt.Errorf("%s: must be %v, got JSON %s (%s)", te.Field, te.Type, te.Value, where(data, te.Offset))
	case errors.Is(err, io.EOF):
		return errors.New("empty problem file")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON: the problem object is not closed")
	}
	return fmt.Errorf("%v (%s)", err, where(data, dec.InputOffset()))
}

// where renders a byte offset as "line L, column C".
func where(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}
