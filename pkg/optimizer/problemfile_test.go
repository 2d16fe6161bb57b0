package optimizer

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParseProblemJSON(t *testing.T) {
	p, err := ParseProblemJSON([]byte(`{"load": 274, "budget": 20, "alpha": 0.05, "beta": 0.001, "minCores": 2,
	 "variants": [{"name": "resnet18", "accuracy": 0.69758, "loadTime": 6.44, "capacity": [0, 19, 43], "current": 0}]}`))
	if err != nil {
		t.Fatal(err)
	}
	sv := p.Services[0]
	if p.Budget != 20 || p.MinCores != 2 || sv.Load != 274 || sv.Alpha != 0.05 || sv.Beta != 0.001 ||
		len(sv.Variants) != 1 || sv.Variants[0].Capacity[2] != 43 || sv.Variants[0].LoadTime != 6.44 {
		t.Fatalf("parsed %+v", p)
	}
	for _, tc := range []struct{ in, want string }{
		{``, "empty"},
		{`{"load": 1`, "truncated"},
		{`{"load": "x"}`, "load: must be float64"},
		{`{"load": 1, "budget": 2, "variants": [{"name": "a", "accuracy": 0.5, "capacity": [0, 1]}]} {}`, "after the problem"},
		{`{"budget": 2, "variants": []}`, "load: required"},
		{`{"load": 1, "budget": 2, "variants": [{"name": "a", "capacity": [0, 1]}, {"name": "a", "accuracy": 0.1, "capacity": [0]}]}`, "variants[1].name: \"a\" duplicates"},
	} {
		_, err := ParseProblemJSON([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want error containing %q, got %v", tc.in, tc.want, err)
		}
	}
}

// FuzzParseProblemJSON: no input panics the parser or the solver, and an
// accepted problem solves to a valid allocation within the budget.
func FuzzParseProblemJSON(f *testing.F) {
	f.Add([]byte(`{"load": 274, "budget": 20, "alpha": 0.05, "beta": 0.001, "minCores": 2, "variants": [{"name": "resnet18", "accuracy": 0.69758, "loadTime": 6.44, "capacity": [0, 19, 43], "current": 0}]}`))
	f.Add([]byte(`{"load": 0.5, "budget": 3, "variants": [{"name": "a", "accuracy": 1, "capacity": [0, 0.25, 0.75]}, {"name": "b", "accuracy": 0, "capacity": [0, 9], "current": 3}]}`))
	f.Add([]byte(`{"load": 1e300, "budget": 2, "variants": [{"name": "a", "accuracy": 1, "capacity": [0, 1e300]}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"load": -1, "budget": -5, "minCores": 9}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProblemJSON(data)
		if err != nil {
			return
		}
		if p.Budget > 64 || len(p.Services[0].Variants) > 8 {
			return // keep each fuzz execution fast
		}
		sol, err := Solve(p)
		if err != nil {
			t.Fatalf("accepted problem fails to solve: %v", err)
		}
		if sol.Cores > p.Budget || math.IsNaN(sol.Objective) {
			t.Fatalf("bad solution %+v", sol)
		}
		if _, err := json.Marshal(ToFileSolution(sol)); err != nil {
			t.Fatalf("solution does not marshal: %v", err)
		}
	})
}
