package profile

import (
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/infadapter/infadapter/pkg/optimizer"
)

func TestBuiltinParses(t *testing.T) {
	for _, name := range BuiltinNames() {
		p, err := Builtin(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(p.Variants) != 5 || p.SLOMillis != 750 {
			t.Fatalf("%s: want 5 variants at 750 ms, got %d at %v", name, len(p.Variants), p.SLOMillis)
		}
	}
	if _, err := Builtin("nope"); err == nil {
		t.Fatal("want error for unknown built-in")
	}
}

// TestPaperRefit checks the paper rule against reference §1.5: the refit
// (a, b) and the capacities at 20 cores after ×0.8. (The reference rounds
// ResNet152's slope 3.8145 to 3.82; hence the 0.01 tolerance.)
func TestPaperRefit(t *testing.T) {
	p, err := Builtin("resnet-paper")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ a, b, cap20 float64 }{
		{24.45, -6.17, 386}, {13.04, -1.88, 207}, {10.32, -3.79, 162}, {5.09, 0.04, 81}, {3.82, -2.25, 59},
	}
	for vi, w := range want {
		a, b, err := p.LinearFit(vi)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(a-w.a) > 0.01 || math.Abs(b-w.b) > 0.01 {
			t.Errorf("%s: fit (%.3f, %.3f), want (%.2f, %.2f)", p.Variants[vi].Name, a, b, w.a, w.b)
		}
		if got := p.CapacityAt(vi, 20); got != w.cap20 {
			t.Errorf("%s: capacity at 20 cores %v, want %v", p.Variants[vi].Name, got, w.cap20)
		}
	}
}

func TestInterpolate(t *testing.T) {
	p := Profile{Name: "x", SLOMillis: 100, Variants: []Variant{{Name: "a", Accuracy: 0.5, Capacity: []Point{{2, 10}, {4, 30}, {8, 50}}}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cores int
		want  float64
	}{{0, 0}, {1, 0}, {2, 10}, {3, 20}, {4, 30}, {6, 40}, {8, 50}, {10, 60}, {16, 90}}
	for _, tc := range tests {
		if got := p.CapacityAt(0, tc.cores); got != tc.want {
			t.Errorf("cores %d: got %v want %v", tc.cores, got, tc.want)
		}
	}
	p.Coefficient = 0.5
	if got := p.CapacityAt(0, 3); got != 10 {
		t.Errorf("coefficient 0.5 at 3 cores: got %v want 10", got)
	}
	// monotone over the whole range for the built-in
	b, _ := Builtin("resnet")
	for vi := range b.Variants {
		prev := 0.0
		for c := 0; c <= 64; c++ {
			x := b.CapacityAt(vi, c)
			if x < prev {
				t.Fatalf("%s not monotone at %d cores: %v < %v", b.Variants[vi].Name, c, x, prev)
			}
			prev = x
		}
	}
}

func TestOptimizerVariants(t *testing.T) {
	p, _ := Builtin("resnet")
	vs := p.OptimizerVariants(20)
	if len(vs) != 5 || len(vs[0].Capacity) != 21 {
		t.Fatalf("shape: %d variants, %d capacities", len(vs), len(vs[0].Capacity))
	}
	// ResNet18: 0.8·19 = 15.2 → 15 at 1 core; 0.8·(43+47/2) = 53.2 → 53 at 3 cores.
	if vs[0].Capacity[0] != 0 || vs[0].Capacity[1] != 15 || vs[0].Capacity[3] != 53 {
		t.Fatalf("resnet18 capacities %v", vs[0].Capacity[:4])
	}
	if vs[4].Name != "resnet152" || vs[4].LoadTime != 8.52 || vs[4].Accuracy != 0.78312 {
		t.Fatalf("resnet152: %+v", vs[4])
	}
}

// TestPaperAllocations runs the paper's §1.7 table through profile →
// optimizer, i.e. the way the rest of the program builds problems.
func TestPaperAllocations(t *testing.T) {
	p, _ := Builtin("resnet-paper")
	vs := p.OptimizerVariants(20)
	for _, tc := range []struct {
		load  float64
		cores [5]int
	}{
		{30, [5]int{0, 0, 0, 0, 11}}, {50, [5]int{0, 0, 5, 3, 0}}, {100, [5]int{0, 0, 13, 0, 0}},
		{200, [5]int{4, 0, 16, 0, 0}}, {274, [5]int{10, 3, 7, 0, 0}}, {301, [5]int{13, 0, 7, 0, 0}},
	} {
		sol, err := optimizer.Solve(optimizer.Problem{Budget: 20, MinCores: 2, Services: []optimizer.Service{{Load: tc.load, Alpha: 0.05, Variants: vs}}})
		if err != nil {
			t.Fatal(err)
		}
		var got [5]int
		for _, a := range sol.Allocations {
			for i, v := range vs {
				if v.Name == a.Variant {
					got[i] = a.Cores
				}
			}
		}
		if got != tc.cores {
			t.Errorf("λ=%v: got %v want %v", tc.load, got, tc.cores)
		}
	}
}

// repoRoot finds the module root from this file's location.
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestBuiltinMatchesCSV checks the typed-in numbers against the authors'
// CSV (../shared/data/profiles) when it is present.
func TestBuiltinMatchesCSV(t *testing.T) {
	path := filepath.Join(repoRoot(t), "..", "shared", "data", "profiles", "resnet-tfserving-cpu-capacity.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("authors' profile CSV not available (%v); the built-in numbers are checked against it when ../shared/data exists", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	csvCap := map[string]float64{} // "18/4" → capacity at SLA 750
	for _, r := range rows[1:] {
		if r[col["SLA"]] != "750" {
			continue
		}
		c, _ := strconv.ParseFloat(r[col["capacity"]], 64)
		csvCap[r[col["ARCH"]]+"/"+r[col["CPU"]]] = c
	}
	p, _ := Builtin("resnet")
	checked := 0
	for _, v := range p.Variants {
		arch := strings.TrimPrefix(v.Name, "resnet")
		for _, pt := range v.Capacity {
			want, ok := csvCap[arch+"/"+strconv.Itoa(pt.Cores)]
			if !ok {
				t.Errorf("%s @ %d cores: no CSV row", v.Name, pt.Cores)
				continue
			}
			if pt.RPS != want {
				t.Errorf("%s @ %d cores: built-in %v, CSV %v", v.Name, pt.Cores, pt.RPS, want)
			}
			checked++
		}
	}
	if checked != 35 {
		t.Errorf("checked %d points, want 35", checked)
	}
}

func TestParseErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "bad.yaml")
	if err == nil {
		t.Fatal("want errors")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		got = append(got, fe.Error())
	}
	want := []string{
		"bad.yaml:4: capacityRule: must be \"interpolate\" or \"paper-linear\", got \"cubic\"",
		"bad.yaml:5: colour: unknown field (known: name, sloMillis, capacityRule, capacityCoefficient, fitCores, source, variants)",
		"bad.yaml:9: variants[0].loadTimeSeconds: must be a number, got \"slow\"",
		"bad.yaml:16: variants[1].capacity[1].rps: must be >= capacity at fewer cores (43 < 90)",
		"bad.yaml:17: variants[2].name: \"r18\" duplicates variants[0]",
		"bad.yaml:18: variants[2].accuracy: must be in [0, 1], got 1.5",
		"bad.yaml:20: variants[2].capacity[0].cores: must be >= 1, got 0",
		"bad.yaml:21: variants[2].capacity[2].cores: must be ascending without repeats (2 after 4)",
		"bad.yaml:22: variants[3].loadTimeSeconds: required field is missing",
		"bad.yaml:22: variants[3].capacity: required field is missing",
		"bad.yaml:2: sloMillis: must be > 0 (milliseconds), got -750",
		"bad.yaml:3: capacityCoefficient: must be in (0, 1] (0 or absent means 1), got 1.2",
	}
	if diff := cmp.Diff(sortStrings(want), sortStrings(got)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func sortStrings(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse([]byte("name: x\nvariants: [\n"), "p.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "p.yaml:") {
		t.Fatalf("want a located syntax error, got %v", err)
	}
}

// FuzzParse: arbitrary bytes never panic, and an accepted profile's
// capacities are finite, non-negative and monotone in cores.
func FuzzParse(f *testing.F) {
	f.Add(resnetYAML)
	if b, err := os.ReadFile("testdata/bad.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name: a\nsloMillis: 1\nvariants: [{name: v, accuracy: 0.5, loadTimeSeconds: 1, capacity: [{cores: 1, rps: 1}]}]\n"))
	f.Add([]byte("name: a\nsloMillis: 1\ncapacityRule: paper-linear\nvariants: [{name: v, accuracy: 0.5, loadTimeSeconds: 1, capacity: [{cores: 1, rps: 3}, {cores: 2, rps: 3}]}]\n"))
	f.Add([]byte("&a {name: *a}"))
	f.Add([]byte("variants: [[[]]]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "f.yaml")
		if err != nil {
			return
		}
		for vi := range p.Variants {
			prev := 0.0
			for c := 0; c <= 40; c++ {
				x := p.CapacityAt(vi, c)
				if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || x < prev-1e-9 {
					t.Fatalf("variant %d at %d cores: capacity %v after %v", vi, c, x, prev)
				}
				prev = x
			}
		}
	})
}
