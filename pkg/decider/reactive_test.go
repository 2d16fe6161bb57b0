package decider

import (
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/optimizer"
)

// twoVariants is a small planning model: "big" is accurate and slow, "small"
// fast; capacity per core count 0..4.
func twoVariants() []optimizer.Variant {
	return []optimizer.Variant{
		{Name: "big", Accuracy: 0.92, Capacity: []float64{0, 50, 100, 150, 200}},
		{Name: "small", Accuracy: 0.85, Capacity: []float64{0, 150, 300, 450, 600}},
	}
}

func TestCapacity(t *testing.T) {
	d, err := NewInfAdapter(Config{Variants: twoVariants(), Budget: 4, MinCores: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		state []VariantState
		want  float64
		ok    bool
	}{
		{"one variant", []VariantState{{Name: "big", Cores: 2, Replicas: 1, Share: 1}}, 100, true},
		{"replicas multiply", []VariantState{{Name: "big", Cores: 2, Replicas: 2, Share: 1}}, 200, true},
		// big takes 25 % of the load on 100 RPS of capacity: it fills at
		// 400; small takes 75 % on 150: it fills at 200, first.
		{"split: the first to fill", []VariantState{
			{Name: "big", Cores: 2, Replicas: 1, Share: 0.25},
			{Name: "small", Cores: 1, Replicas: 1, Share: 0.75}}, 200, true},
		{"a variant without share does not limit", []VariantState{
			{Name: "big", Cores: 1, Replicas: 1, Share: 0},
			{Name: "small", Cores: 1, Replicas: 1, Share: 1}}, 150, true},
		{"beyond the table: last entry", []VariantState{{Name: "small", Cores: 9, Replicas: 1, Share: 1}}, 600, true},
		{"unknown variant", []VariantState{{Name: "huge", Cores: 2, Replicas: 1, Share: 1}}, 0, false},
		{"nothing runs", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := d.Capacity(tc.state)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Capacity = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

type noCapacity struct{}

func (noCapacity) Name() string { return "no-capacity" }
func (noCapacity) Decide(time.Time, Observation) (Plan, error) {
	return Plan{}, nil
}

func TestReactiveFloor(t *testing.T) {
	d, err := NewInfAdapter(Config{Variants: twoVariants(), Budget: 4, MinCores: 1})
	if err != nil {
		t.Fatal(err)
	}
	big2 := []VariantState{{Name: "big", Cores: 2, Replicas: 1, Share: 1}} // capacity 100
	for _, tc := range []struct {
		name  string
		r     Reactive
		dec   Decider
		rate  float64
		floor float64
		ok    bool
	}{
		{"within capacity", DefaultReactive(), d, 100, 0, false},
		// 100 + 2·√100 = 120: a count of 120 may be noise around a mean
		// within capacity, 121 is not.
		{"within the Poisson allowance", DefaultReactive(), d, 120, 0, false},
		{"above it", DefaultReactive(), d, 121, 133.1, true},
		{"no allowance", Reactive{Threshold: 1, Headroom: 0.1}, d, 101, 111.1, true},
		{"threshold 1.5: 120 is not enough", Reactive{Threshold: 1.5, Headroom: 0.1}, d, 120, 0, false},
		{"threshold 1.5: 151 is", Reactive{Threshold: 1.5}, d, 151, 151, true},
		{"off", Reactive{}, d, 1000, 0, false},
		{"decider without capacity", DefaultReactive(), noCapacity{}, 1000, 0, false},
		{"no arrivals", DefaultReactive(), d, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			floor, ok := tc.r.Floor(tc.dec, big2, tc.rate)
			if ok != tc.ok || floor < tc.floor-1e-9 || floor > tc.floor+1e-9 {
				t.Errorf("Floor = %v, %v; want %v, %v", floor, ok, tc.floor, tc.ok)
			}
		})
	}
}

func TestReactiveValidate(t *testing.T) {
	if err := DefaultReactive().Validate(); err != nil {
		t.Errorf("default: %v", err)
	}
	if err := (Reactive{}).Validate(); err != nil {
		t.Errorf("off: %v", err)
	}
	err := Reactive{Threshold: 0.2, Sigmas: -1, Headroom: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "threshold") || !strings.Contains(err.Error(), "sigmas") || !strings.Contains(err.Error(), "headroom") {
		t.Errorf("want both problems reported, got %v", err)
	}
}

// TestMinLoadOverridesForecast: a decision whose observation carries a
// floor above the forecast plans for the floor (and says so), and one
// below the forecast changes nothing.
func TestMinLoadOverridesForecast(t *testing.T) {
	cfg := Config{Variants: twoVariants(), Budget: 4, MinCores: 1, Alpha: 0.05, Stabilization: 4}
	fc := &seq{vals: []float64{90.5, 90.5, 90.5}}
	cfg.Forecaster = fc
	d, err := NewInfAdapter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cur := []VariantState{{Name: "big", Cores: 2, Replicas: 1, Share: 1}}
	now := time.Unix(0, 0)
	// Forecast 90 with no floor: solve for 90 (the initial state is
	// sized for its capacity, 100, so this is a held scale-down).
	p, err := d.Decide(now, Observation{History: make([]float64, 60), Current: cur})
	if err != nil || !p.Hold || p.Forecast != 90 {
		t.Fatalf("no floor: %+v, %v; want a hold at 90", p, err)
	}
	// A floor below the forecast changes nothing.
	p, err = d.Decide(now, Observation{History: make([]float64, 60), Current: cur, MinLoad: 50})
	if err != nil || !p.Hold || p.Forecast != 90 {
		t.Fatalf("floor 50: %+v, %v; want a hold at 90", p, err)
	}
	// Floor 260.4 → λ 261, above what runs: solved at once, beyond big's 200.
	p, err = d.Decide(now, Observation{History: make([]float64, 60), Current: cur, MinLoad: 260.4})
	if err != nil {
		t.Fatal(err)
	}
	if p.Hold || p.Forecast != 261 || !strings.Contains(p.Reason, "reactive") {
		t.Fatalf("floor 260.4: hold=%v forecast=%v reason=%q; want a new plan for 261, marked reactive", p.Hold, p.Forecast, p.Reason)
	}
	if c, ok := d.Capacity(p.Variants); !ok || c < 261 {
		t.Errorf("plan %+v has capacity %v, below the floor", p.Variants, c)
	}
}

// TestMinLoadWithoutForecast: a reactive decision does not need the
// forecaster (the LSTM refuses histories under 10 minutes).
func TestMinLoadWithoutForecast(t *testing.T) {
	d, err := NewInfAdapter(Config{Variants: twoVariants(), Budget: 4, MinCores: 1, Forecaster: failing{}})
	if err != nil {
		t.Fatal(err)
	}
	cur := []VariantState{{Name: "big", Cores: 2, Replicas: 1, Share: 1}}
	if _, err := d.Decide(time.Time{}, Observation{Current: cur}); err == nil {
		t.Fatal("no floor: want the forecaster's error")
	}
	p, err := d.Decide(time.Time{}, Observation{Current: cur, MinLoad: 250})
	if err != nil || p.Forecast != 250 {
		t.Fatalf("floor 250: plan for %v, err %v; want a plan for 250", p.Forecast, err)
	}
}
