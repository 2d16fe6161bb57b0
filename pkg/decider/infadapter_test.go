package decider

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
)

// seq is a fake forecaster returning a scripted sequence.
type seq struct {
	vals []float64
	i    int
}

func (s *seq) Name() string { return "seq" }
func (s *seq) Forecast([]float64) (float64, error) {
	v := s.vals[s.i]
	s.i++
	return v, nil
}

func paperVariants(t *testing.T) []optimizer.Variant {
	t.Helper()
	p, err := profile.Builtin("resnet-paper")
	if err != nil {
		t.Fatal(err)
	}
	return p.OptimizerVariants(20)
}

func TestStabilisation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Variants = paperVariants(t)
	// Forecasts (already ×1.10, truncated by the decider):
	//  call 1: 100.7 → λ=100 > initial load (R152@20 capacity 59) → solve.
	//  calls 2–5: 90 ≤ 100 → held 1/4..4/4.
	//  call 6: 90 again → 5th consecutive: apply, load=90.
	//  call 7: 95 > 90 → apply at once.
	//  call 8: 95 ≤ 95 → hold (equal counts as not higher).
	//  call 9: 200 → apply.
	fc := &seq{vals: []float64{100.7, 90, 90, 90, 90, 90, 95, 95, 200}}
	cfg.Forecaster = fc
	d, err := NewInfAdapter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur := []VariantState{{Name: "resnet152", Cores: 20, Replicas: 1, Share: 1}}
	wantHold := []bool{false, true, true, true, true, false, false, true, false}
	now := time.Unix(0, 0)
	for i, want := range wantHold {
		p, err := d.Decide(now, Observation{History: make([]float64, 120), Current: cur})
		if err != nil {
			t.Fatal(err)
		}
		if p.Hold != want {
			t.Fatalf("call %d (forecast %v): hold=%v, want %v (%s)", i+1, fc.vals[i], p.Hold, want, p.Reason)
		}
		if p.Hold {
			if len(p.Variants) != len(cur) || p.Variants[0] != cur[0] {
				t.Fatalf("call %d: hold changed the state: %v", i+1, p.Variants)
			}
		} else {
			sum, capSum := 0.0, 0.0
			for _, v := range p.Variants {
				sum += v.Share
				for _, pv := range cfg.Variants {
					if pv.Name == v.Name {
						capSum += CapacityAt(pv, v.Cores)
					}
				}
			}
			if p.Forecast != float64(int(fc.vals[i])) || (len(p.Variants) > 0 && (sum < 0.999 || sum > 1.001)) || capSum < p.Forecast {
				t.Fatalf("call %d: plan %+v: shares sum %v, capacity %v for λ %v", i+1, p, sum, capSum, p.Forecast)
			}
			cur = p.Variants
		}
		now = now.Add(30 * time.Second)
	}
}

func TestPaperTableRows(t *testing.T) {
	// Reference §1.7, InfAdapter column (cold start: nothing running, so
	// β·LC is the same for all options with new variants).
	cases := []struct {
		lambda float64
		cores  map[string]int
	}{
		{30, map[string]int{"resnet152": 11}},
		{100, map[string]int{"resnet50": 13}},
		{150, map[string]int{"resnet50": 19}},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		cfg.Variants = paperVariants(t)
		cfg.Beta = 0
		cfg.Stabilization = 0
		d, err := NewInfAdapter(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := d.DecideLoad(time.Time{}, Observation{}, c.lambda)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, v := range p.Variants {
			got[v.Name] = v.Cores
		}
		if len(got) != len(c.cores) {
			t.Fatalf("λ=%v: got %v, want %v", c.lambda, got, c.cores)
		}
		for k, v := range c.cores {
			if got[k] != v {
				t.Fatalf("λ=%v: got %v, want %v", c.lambda, got, c.cores)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Budget: -1, MinCores: 0, Alpha: -1, Stabilization: -2}.Validate()
	for _, want := range []string{"no variants", "budget", "min cores", "alpha", "stabilization"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if _, err := NewInfAdapter(Config{}); err == nil {
		t.Error("NewInfAdapter(zero config): want error")
	}
}

type failing struct{}

func (failing) Name() string                        { return "f" }
func (failing) Forecast([]float64) (float64, error) { return 0, errors.New("boom") }

func TestForecastErrorKeepsState(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Variants = paperVariants(t)
	cfg.Forecaster = failing{}
	d, _ := NewInfAdapter(cfg)
	if _, err := d.Decide(time.Time{}, Observation{}); err == nil {
		t.Fatal("want the forecaster's error")
	}
}
