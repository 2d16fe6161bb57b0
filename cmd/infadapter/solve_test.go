package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type bfVariant struct {
	Name     string    `json:"name"`
	Accuracy float64   `json:"accuracy"`
	LoadTime float64   `json:"loadTime"`
	Capacity []float64 `json:"capacity"`
	Current  int       `json:"current"`
}

type bfProblem struct {
	Load     float64     `json:"load"`
	Budget   int         `json:"budget"`
	Alpha    float64     `json:"alpha"`
	Beta     float64     `json:"beta"`
	MinCores int         `json:"minCores"`
	Variants []bfVariant `json:"variants"`
}

type bfOut struct {
	Feasible    bool    `json:"feasible"`
	Objective   float64 `json:"objective"`
	Accuracy    float64 `json:"accuracy"`
	Cores       int     `json:"cores"`
	Allocations []struct {
		Variant  string  `json:"variant"`
		Cores    int     `json:"cores"`
		Replicas int     `json:"replicas"`
		RPS      float64 `json:"rps"`
	} `json:"allocations"`
}

// score evaluates cores[i] per variant of p independently of the optimiser.
func (p bfProblem) score(cores []int) (served, obj float64) {
	idx := make([]int, len(p.Variants))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p.Variants[idx[a]].Accuracy > p.Variants[idx[b]].Accuracy })
	rem, acc, total, lc, maxLT := p.Load, 0.0, 0, 0.0, 0.0
	for _, v := range p.Variants {
		maxLT = math.Max(maxLT, v.LoadTime)
	}
	for _, i := range idx {
		v, c := p.Variants[i], cores[i]
		if c == 0 {
			continue
		}
		capac := v.Capacity[min(c, len(v.Capacity)-1)]
		l := math.Min(capac, rem)
		rem -= l
		served += l
		acc += v.Accuracy * l
		total += c
		if c != v.Current {
			lc = math.Max(lc, v.LoadTime)
		}
	}
	if p.Load > 0 {
		obj = acc / p.Load
	}
	obj -= p.Alpha * float64(total) / float64(p.Budget)
	if maxLT > 0 {
		obj -= p.Beta * lc / maxLT
	}
	return served, obj
}

// brute enumerates every cores vector (0 or minCores..budget, Σ ≤ budget).
func (p bfProblem) brute() (feasible bool, served, obj float64) {
	cores := make([]int, len(p.Variants))
	served = -1
	var rec func(i, used int)
	rec = func(i, used int) {
		if i == len(cores) {
			s, o := p.score(cores)
			if s > served+1e-9 || (math.Abs(s-served) <= 1e-9 && o > obj) {
				served, obj = s, o
			}
			return
		}
		cores[i] = 0
		rec(i+1, used)
		for c := max(1, p.MinCores); used+c <= p.Budget; c++ {
			cores[i] = c
			rec(i+1, used+c)
		}
		cores[i] = 0
	}
	rec(0, 0)
	return served >= p.Load-1e-9, served, obj
}

func runSolve(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newSolveCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestSolveProblemFileBruteForce runs `solve --problem F --json` on random
// instances and checks the answer against exhaustive enumeration.
func TestSolveProblemFileBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	dir := t.TempDir()
	for it := 0; it < 200; it++ {
		p := bfProblem{Budget: 1 + rng.IntN(10), MinCores: rng.IntN(3), Alpha: rng.Float64() * 0.2, Load: float64(rng.IntN(60))}
		if rng.IntN(2) == 0 {
			p.Beta = rng.Float64() * 0.05
		}
		p.Budget = max(p.Budget, p.MinCores)
		for i := 0; i < 1+rng.IntN(4); i++ {
			v := bfVariant{Name: fmt.Sprintf("v%d", i), Accuracy: float64(rng.IntN(100)) / 100, LoadTime: float64(rng.IntN(10))}
			v.Capacity = []float64{0}
			for c := 1; c < 1+rng.IntN(8); c++ {
				v.Capacity = append(v.Capacity, v.Capacity[c-1]+float64(rng.IntN(9)))
			}
			if rng.IntN(2) == 0 {
				v.Current = rng.IntN(p.Budget + 1)
			}
			p.Variants = append(p.Variants, v)
		}
		data, _ := json.Marshal(p)
		f := filepath.Join(dir, fmt.Sprintf("p%d.json", it))
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, err := runSolve(t, "--problem", f, "--json")
		if err != nil {
			t.Fatalf("instance %s: %v", data, err)
		}
		var got bfOut
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("output %q: %v", stdout, err)
		}
		feasible, served, obj := p.brute()
		// re-score the printed allocation independently
		cores := make([]int, len(p.Variants))
		for _, a := range got.Allocations {
			for i, v := range p.Variants {
				if v.Name == a.Variant {
					cores[i] = a.Cores * a.Replicas
				}
			}
		}
		gs, gobj := p.score(cores)
		if got.Feasible != feasible || math.Abs(gs-served) > 1e-9 || math.Abs(got.Objective-obj) > 1e-9 || math.Abs(gobj-obj) > 1e-9 {
			t.Fatalf("instance %s:\nsolve: %s\nbrute: feasible %v served %v objective %v (printed allocation scores %v, %v)", data, stdout, feasible, served, obj, gs, gobj)
		}
	}
}

func TestSolveBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown field", []string{"--problem", write("a.json", `{"load": 1, "budget": 4, "variants": [{"name": "a", "accuracy": 0.5, "capacity": [0, 1]}], "extra": 1}`)}, `unknown field "extra"`},
		{"negative capacity", []string{"--problem", write("b.json", `{"load": 1, "budget": 4, "variants": [{"name": "a", "accuracy": 0.5, "capacity": [0, -1]}]}`)}, "variants[0].capacity[1]: must be in [0, 1e+09]"},
		{"non-monotone", []string{"--problem", write("c.json", `{"load": 1, "budget": 4, "variants": [{"name": "a", "accuracy": 0.5, "capacity": [0, 5, 3]}]}`)}, "(3 < 5)"},
		{"budget < minCores", []string{"--problem", write("d.json", `{"load": 1, "budget": 1, "minCores": 2, "variants": [{"name": "a", "accuracy": 0.5, "capacity": [0, 5]}]}`)}, "less than minCores"},
		{"syntax", []string{"--problem", write("e.json", "{\"load\": 1,\n \"budget\": }")}, "line 2"},
		{"missing load flag", []string{"--budget", "4"}, "--load is required"},
		{"flag budget < min", []string{"--load", "5", "--budget", "1"}, "less than --min-cores"},
		{"mixed", []string{"--load", "5", "--problem", "x.json"}, "cannot be used with --problem"},
		{"unknown current", []string{"--load", "5", "--current", "resnet7=2"}, `no variant "resnet7"`},
		{"missing profile", []string{"--load", "5", "--profile", filepath.Join(dir, "nope.yaml")}, "neither a built-in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runSolve(t, tc.args...)
			if err == nil || !errors.Is(err, errBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want bad input mentioning %q, got %v", tc.want, err)
			}
		})
	}
}

func TestSolveTable(t *testing.T) {
	out, err := runSolve(t, "--profile", "resnet-paper", "--load", "274", "--beta", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"feasible", "objective 0.6643", "accuracy 0.7143", "cores 20/20", "resnet18  10", "resnet34  3", "resnet50  7"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
