package localmode

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/loadgen"
	"github.com/infadapter/infadapter/pkg/profile"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Duration = time.Second
	c.BudgetCores = 0
	c.SLO = 0
	c.Policy = "vpa"
	c.Baseline = "nope"
	c.Forecaster = "crystal-ball"
	c.Interval = 10 * time.Millisecond
	c.BaseRPS, c.PeakRPS = 10, 5
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"duration", "budget", "slo", `policy "vpa"`, `baseline "nope"`, "forecaster", "interval", "base <= peak"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestIntervalAndStretch(t *testing.T) {
	tests := []struct {
		name     string
		duration time.Duration
		interval time.Duration
		wantIv   time.Duration
		wantK    int
	}{
		// 30 s × 120 s / 1260 s = 2.857 s → 2.9 s; horizon 2 intervals =
		// 5.8 s → 60 / 5.8 = 10 repeats per second.
		{"default 2 min", 2 * time.Minute, 0, 2900 * time.Millisecond, 10},
		// The paper's own scale: 21 min → 30 s, horizon 60 s, no stretch.
		{"paper scale", 21 * time.Minute, 0, 30 * time.Second, 1},
		{"explicit 5 s", 2 * time.Minute, 5 * time.Second, 5 * time.Second, 6},
		{"floor 1 s", 20 * time.Second, 0, time.Second, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Duration, c.Interval = tc.duration, tc.interval
			if got := c.EffectiveInterval(); got != tc.wantIv {
				t.Errorf("interval = %v, want %v", got, tc.wantIv)
			}
			if got := c.Stretch(); got != tc.wantK {
				t.Errorf("stretch = %d, want %d", got, tc.wantK)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	c := Default()
	c.BudgetCores, c.CoreUnitMilli = 1.5, 250
	if got := c.Units(); got != 6 {
		t.Errorf("1.5 cores / 250 m = %d units, want 6", got)
	}
	c.BudgetCores = 0.3
	if got := c.Units(); got != 1 {
		t.Errorf("0.3 cores / 250 m = %d units, want 1 (rounded down)", got)
	}
}

type seqLoad []float64

func (s seqLoad) History(_ time.Time, n int) []float64 {
	if n > 0 && len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestStretched(t *testing.T) {
	src := seqLoad{1, 2, 3}
	tests := []struct {
		k, n int
		want []float64
	}{
		{3, 0, []float64{1, 1, 1, 2, 2, 2, 3, 3, 3}},
		{3, 4, []float64{2, 3, 3, 3}}, // 4 entries need 2 source seconds, trimmed to 4
		{1, 2, []float64{2, 3}},
		{2, 100, []float64{1, 1, 2, 2, 3, 3}},
	}
	for _, tc := range tests {
		got := stretched{src: src, k: tc.k}.History(time.Time{}, tc.n)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("k=%d n=%d (-want +got):\n%s", tc.k, tc.n, diff)
		}
	}
}

func TestPlanVariants(t *testing.T) {
	p := profile.Profile{Coefficient: 0.5, Variants: []profile.Variant{
		// Measured at 1 and 4 units: 100 and 400 RPS → linear in between.
		{Name: "a", Accuracy: 0.9, LoadTimeSeconds: 1, Capacity: []profile.Point{{Cores: 4, RPS: 400}, {Cores: 1, RPS: 100}}},
		// Measured only at 2 units: 0 at 1 unit (never run below the
		// smallest measured size), proportional above.
		{Name: "b", Accuracy: 0.8, Capacity: []profile.Point{{Cores: 2, RPS: 300}}},
	}}
	got := planVariants(p, 5)
	// a: 100,200,300,400, then the last slope (100/unit) → 500; × 0.5.
	if diff := cmp.Diff([]float64{0, 50, 100, 150, 200, 250}, got[0].Capacity); diff != "" {
		t.Errorf("a capacity (-want +got):\n%s", diff)
	}
	// b: 0, 300, 450, 600, 750 × 0.5.
	if diff := cmp.Diff([]float64{0, 0, 150, 225, 300, 375}, got[1].Capacity); diff != "" {
		t.Errorf("b capacity (-want +got):\n%s", diff)
	}
	if got[0].Accuracy != 0.9 || got[0].LoadTime != 1 || mostAccurate(got) != 0 {
		t.Errorf("variant fields not carried: %+v", got[0])
	}
}

func TestRecorderWindow(t *testing.T) {
	r := newRecorder(100*time.Millisecond, 4)
	ms := time.Millisecond
	r.add(0, []loadgen.Result{
		{Intended: 100 * ms, Latency: 10 * ms, Label: 3, Pred: 3, Variant: "a"},
		{Intended: 900 * ms, Latency: 150 * ms, Label: 3, Pred: 2, Variant: "a"}, // slow: violation, still answered
		{Intended: 1500 * ms, Err: loadgen.ErrTimeout, Label: 1, Pred: -1},
	})
	r.add(2, []loadgen.Result{ // chunk starting at second 2
		{Intended: 200 * ms, Latency: 20 * ms, Label: 5, Pred: 5, Variant: "b"},
	})
	r.setPlanned(0, 0.9)
	r.setPlanned(1, 0.8)
	r.setPlanned(2, 0.7)
	w := r.window(0, 4)
	if w.Offered != 4 || w.OK != 3 || w.Errors != 1 || w.Violations != 2 {
		t.Errorf("counts = %+v; want offered 4, ok 3, errors 1, violations 2", w)
	}
	// Served accuracy over answered labelled requests: 2 of 3.
	if w.Labelled != 3 || w.Correct != 2 {
		t.Errorf("labelled %d correct %d, want 3 and 2", w.Labelled, w.Correct)
	}
	// Nearest-rank P99 of {10, 150, 20} ms is the largest.
	if w.P99Millis != 150 {
		t.Errorf("p99 = %v, want 150", w.P99Millis)
	}
	// Planned accuracy weighted by offered requests: (2·0.9 + 1·0.8 + 1·0.7)/4.
	if want := (2*0.9 + 0.8 + 0.7) / 4; abs(w.PlannedAccuracy-want) > 1e-12 {
		t.Errorf("planned = %v, want %v", w.PlannedAccuracy, want)
	}
	if diff := cmp.Diff(map[string]int{"a": 2, "b": 1}, w.PerVariant); diff != "" {
		t.Errorf("per variant (-want +got):\n%s", diff)
	}
	if got := r.errorKinds(); got[loadgen.ErrTimeout] != 1 {
		t.Errorf("error kinds = %v", got)
	}
	if w := r.window(2, 3); w.Offered != 1 || w.ServedAccuracy != 1 {
		t.Errorf("window [2,3) = %+v", w)
	}
}

func TestFixedHolds(t *testing.T) {
	cur := []decider.VariantState{{Name: "a", Cores: 4, Replicas: 1, Share: 1}}
	d := &fixed{name: "static-a", acc: 0.9}
	p, err := d.Decide(time.Time{}, decider.Observation{History: []float64{1, 2}, Current: cur})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Hold || !cmp.Equal(p.Variants, cur) {
		t.Errorf("static decider changed the plan: %+v", p)
	}
}

func TestPlannedAccuracy(t *testing.T) {
	acc := map[string]float64{"a": 0.9, "b": 0.8}
	vs := []decider.VariantState{{Name: "a", Share: 0.25}, {Name: "b", Share: 0.75}}
	if got, want := plannedAccuracy(vs, acc), 0.25*0.9+0.75*0.8; abs(got-want) > 1e-12 {
		t.Errorf("planned = %v, want %v", got, want)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
