package baselines

import (
	"math"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
)

func paperPlan(t *testing.T) []optimizer.Variant {
	t.Helper()
	p, err := profile.Builtin("resnet-paper")
	if err != nil {
		t.Fatal(err)
	}
	return p.OptimizerVariants(20)
}

// TestMSPlusTable checks SolveMSPlus against the MS+ column of reference
// §1.7 (α 0.05, β 0: cold start), which includes the max_cpu quirk.
func TestMSPlusTable(t *testing.T) {
	vs := paperPlan(t)
	rows := []struct {
		lambda  float64
		variant string
		cores   int
	}{
		{30, "resnet152", 11}, {50, "resnet50", 7}, {66, "resnet50", 9}, {70, "resnet50", 9},
		{100, "resnet50", 13}, {150, "resnet50", 19}, {200, "resnet34", 20},
		{250, "resnet18", 14}, {274, "resnet18", 15}, {301, "resnet18", 16},
	}
	for _, r := range rows {
		sol, err := SolveMSPlus(optimizer.Problem{Budget: 20, MinCores: 2,
			Services: []optimizer.Service{{Load: r.lambda, Alpha: 0.05, Variants: vs}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(sol.Allocations) != 1 || sol.Allocations[0].Variant != r.variant || sol.Allocations[0].Cores != r.cores || !sol.Feasible {
			t.Errorf("λ=%v: got %+v, want %s @ %d", r.lambda, sol.Allocations, r.variant, r.cores)
		}
	}
	// Beyond every variant's capacity: the paper's fallback, least accurate
	// variant with the whole budget, infeasible.
	sol, _ := SolveMSPlus(optimizer.Problem{Budget: 20, MinCores: 2, Services: []optimizer.Service{{Load: 1000, Alpha: 0.05, Variants: vs}}})
	if sol.Feasible || sol.Allocations[0].Variant != "resnet18" || sol.Allocations[0].Cores != 20 {
		t.Errorf("λ=1000: got %+v, want infeasible resnet18 @ 20", sol)
	}
}

// TestVPAHistogram checks bucket edges and the estimator chain against
// numbers computed independently from the VPA formulas: first bucket 0.01,
// ratio 1.05, so bucket b starts at 0.2·(1.05^b − 1); 4.0 cores falls in
// bucket 62 whose upper edge is 0.2·(1.05^63 − 1) = 4.124698514.
func TestVPAHistogram(t *testing.T) {
	h := NewCPUHistogram(24 * time.Hour)
	if h.Percentile(0.9) != 0 {
		t.Fatal("empty histogram: want 0")
	}
	t0 := time.Unix(0, 0)
	h.Add(4.0, 1, t0)
	if got := h.Percentile(0.9); math.Abs(got-4.124698514) > 1e-6 {
		t.Fatalf("P90 = %v, want 4.124698514", got)
	}
	// Decay: a sample 24 h later weighs twice as much.
	h2 := NewCPUHistogram(24 * time.Hour)
	h2.Add(1, 1, t0)
	h2.Add(10, 1, t0.Add(24*time.Hour))
	h2.Add(10, 0.9, t0.Add(-time.Hour*0)) // total weights: 1 at 1 core, 2.9 at 10 cores
	if got := h2.Percentile(0.25); got > 1.1 {
		t.Fatalf("P25 = %v, want the 1-core bucket (1/3.9 of the weight)", got)
	}

	// Recommender chain: 10 samples of 4 cores, one a minute.
	cfg := DefaultVPAConfig("resnet50", t0)
	cfg.MinCores, cfg.MaxCores = 1, 1000
	v, err := NewVPA(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		v.AddSample(t0.Add(time.Duration(i)*time.Minute), 4, 4)
	}
	r := v.Recommendation()
	// target = 4.124698514·1.15; confidence = min(9 min in days, 10/1440)
	// = 0.00625; lower ×(1+0.001/0.00625)^−2; upper ×(1+1/0.00625).
	want := Recommendation{Target: 4.743403291, Lower: 3.525121352, Upper: 763.68792989}
	if math.Abs(r.Target-want.Target) > 1e-6 || math.Abs(r.Lower-want.Lower) > 1e-6 || math.Abs(r.Upper-want.Upper) > 1e-4 {
		t.Fatalf("recommendation %+v, want %+v", *r, want)
	}
}

func TestVPADriving(t *testing.T) {
	t0 := time.Unix(0, 0)
	v, err := NewVPA(DefaultVPAConfig("resnet50", t0))
	if err != nil {
		t.Fatal(err)
	}
	cur := []decider.VariantState{{Name: "resnet50", Cores: 20, Replicas: 1, Share: 1}}
	obs := func(usage float64) decider.Observation {
		return decider.Observation{Current: cur, Variants: []decider.VariantObservation{{Name: "resnet50", CPUUsageCores: usage}}}
	}
	// Before the VPA object exists (60 s): hold.
	if p, _ := v.Decide(t0.Add(30*time.Second), obs(3)); !p.Hold {
		t.Fatal("before creation: want hold")
	}
	// Usage 3 cores → target ceil(3.15·1.15)=ceil(3.63)=4 < 20: held 4
	// times, then applied on the 5th decision.
	var p decider.Plan
	for i := range 5 {
		p, _ = v.Decide(t0.Add(time.Duration(120+30*i)*time.Second), obs(3))
		if (i < 4) != p.Hold {
			t.Fatalf("decision %d: hold=%v (%s)", i, p.Hold, p.Reason)
		}
	}
	if p.Variants[0].Cores != 4 {
		t.Fatalf("applied %v, want 4 cores", p.Variants)
	}
	// An increase applies at once: usage pinned at the new 4-core limit
	// for long enough pushes P90 up to the 4-core bucket ×1.15 → 5.
	cur = p.Variants
	var up decider.Plan
	for i := range 30 {
		up, _ = v.Decide(t0.Add(time.Duration(300+60*i)*time.Second), obs(4))
		if !up.Hold {
			break
		}
	}
	if up.Hold || up.Variants[0].Cores != 5 {
		t.Fatalf("want an immediate increase to 5 cores, got %+v", up)
	}
}

func TestHPADesired(t *testing.T) {
	h, err := NewHPA(HPAConfig{Variant: "resnet18", Cores: 2, MinReplicas: 1, MaxReplicas: 10, Target: 0.7, Tolerance: 0.1, DownscaleWindow: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ready int
		usage float64
		want  int
	}{
		{4, 5.6, 4}, // utilisation 0.7 = target
		{4, 6.0, 4}, // ratio 1.071: within tolerance
		{4, 8.4, 6}, // ratio 1.5 → ceil(6)
		{4, 2.0, 2}, // ratio 0.357 → ceil(1.43)
		{4, 0, 1},   // floor at min replicas
		{8, 16, 10}, // ratio 1.43 → 12, capped at max 10
	}
	for _, c := range cases {
		if got := h.Desired(c.ready, c.usage); got != c.want {
			t.Errorf("Desired(%d, %v) = %d, want %d", c.ready, c.usage, got, c.want)
		}
	}
	// Scale-up rate limit: max(2×ready, ready+4) per sync.
	h2, _ := NewHPA(HPAConfig{Variant: "x", Cores: 2, MinReplicas: 1, MaxReplicas: 50, Target: 0.1, Tolerance: 0.1})
	if got := h2.Desired(2, 4); got != 6 {
		t.Errorf("rate-limited Desired(2, 4) = %d, want 6", got)
	}
	// Downscale stabilisation: the highest recommendation of the last 5 min.
	t0 := time.Unix(0, 0)
	cur := []decider.VariantState{{Name: "resnet18", Cores: 2, Replicas: 6}}
	o := func(u float64) decider.Observation {
		return decider.Observation{Current: cur, Variants: []decider.VariantObservation{{Name: "resnet18", CPUUsageCores: u}}}
	}
	p, _ := h.Decide(t0, o(8.4)) // 6 ready at ratio 1.0 → 6
	if p.Variants[0].Replicas != 6 {
		t.Fatalf("got %v", p.Variants)
	}
	p, _ = h.Decide(t0.Add(time.Minute), o(2.1)) // wants 2, window max is 6
	if p.Variants[0].Replicas != 6 {
		t.Fatalf("within the window: got %d replicas, want 6", p.Variants[0].Replicas)
	}
	p, _ = h.Decide(t0.Add(7*time.Minute), o(2.1))
	// 2.1 cores on 6×2: 17% (whole percents) / 70% → ceil(1.457) = 2.
	if p.Variants[0].Replicas != 2 {
		t.Fatalf("after the window: got %d replicas, want 2", p.Variants[0].Replicas)
	}
}

func TestOracleAndStatic(t *testing.T) {
	cfg := decider.DefaultConfig()
	cfg.Variants = paperPlan(t)
	rps := make([]float64, 120)
	for i := range rps {
		rps[i] = 40
	}
	rps[45] = 150
	t0 := time.Unix(0, 0)
	o, err := NewOracle(cfg, rps, t0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := o.Decide(t0, decider.Observation{})
	if p.Forecast != 40 {
		t.Fatalf("[0,30): planned for %v, want 40", p.Forecast)
	}
	p, _ = o.Decide(t0.Add(30*time.Second), decider.Observation{Current: p.Variants})
	if p.Forecast != 150 {
		t.Fatalf("[30,60): planned for %v, want 150", p.Forecast)
	}
	p, _ = o.Decide(t0.Add(60*time.Second), decider.Observation{Current: p.Variants})
	if p.Forecast != 40 || p.Hold {
		t.Fatalf("[60,90): planned %+v, want 40 at once (no stabilisation)", p)
	}
	s, plan, err := NewStatic(cfg, 150)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Forecast != 150 || len(plan.Variants) == 0 {
		t.Fatalf("static plan %+v", plan)
	}
	if p, _ := s.Decide(t0, decider.Observation{Current: plan.Variants}); !p.Hold {
		t.Fatal("static must hold")
	}
}

func TestBuildNames(t *testing.T) {
	s := Setup{Plan: paperPlan(t), Budget: 20, MinCores: 2, Alpha: 0.05, Beta: 0.001, Interval: 30 * time.Second, FirstDecision: 2 * time.Minute, RPS: []float64{1, 2, 3}}
	names := PolicyNames(s.Plan)
	want := []string{"infadapter", "ms+", "vpa-resnet18", "vpa-resnet34", "vpa-resnet50", "vpa-resnet101", "vpa-resnet152", "hpa-resnet18", "static", "oracle"}
	if len(names) != len(want) {
		t.Fatalf("names %v", names)
	}
	for i, n := range names {
		if n != want[i] {
			t.Fatalf("names %v, want %v", names, want)
		}
		p, err := Build(n, s)
		if err != nil {
			t.Fatal(err)
		}
		if p.Decider.Name() != n {
			t.Fatalf("Build(%q).Name() = %q", n, p.Decider.Name())
		}
	}
	for _, bad := range []string{"vpa-resnet9", "hpa-", "kpa", ""} {
		if _, err := Build(bad, s); err == nil {
			t.Errorf("Build(%q): want error", bad)
		}
	}
}
