package autoscaler

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/metricsource"
	"github.com/infadapter/infadapter/pkg/profile"
)

// capacityDecider keeps variant a on 2 cores and reports 5 RPS per core of
// capacity; its plan is sized for the floor when it gets one.
type capacityDecider struct{ obs []decider.Observation }

func (d *capacityDecider) Name() string { return "capacity" }
func (d *capacityDecider) Decide(_ time.Time, o decider.Observation) (decider.Plan, error) {
	d.obs = append(d.obs, o)
	return decider.Plan{Feasible: true, Forecast: max(7, o.MinLoad),
		Variants: []decider.VariantState{{Name: "a", Cores: 2, Replicas: 1, Share: 1}}}, nil
}
func (d *capacityDecider) Capacity(state []decider.VariantState) (float64, bool) {
	c := 0.0
	for _, v := range state {
		c += 5 * float64(v.Cores*v.Replicas)
	}
	return c, c > 0
}

// loadSource reads a settable rate for a's revision.
type loadSource struct {
	mu  sync.Mutex
	rps float64
}

func (s *loadSource) set(r float64) { s.mu.Lock(); s.rps = r; s.mu.Unlock() }
func (s *loadSource) Read(context.Context, time.Time, []metricsource.Target) (map[string]metricsource.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]metricsource.Reading{"a-predictor-00001": {RPS: s.rps, OK: true, Window: 5 * time.Second}}, nil
}

// TestReactiveFamilyDecision: between two 30 s decisions, a fresh reading
// above the capacity of what runs decides at once, for at least that load;
// the same load does not decide again, a reading not yet due is not
// taken, and the family is looked at every 5 s for it.
func TestReactiveFamilyDecision(t *testing.T) {
	w := newWorld()
	w.addVariant("a", 1, 2, 100, true) // a: 2 cores → 10 RPS of capacity
	d := &capacityDecider{}
	t0 := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	r, rec := newTestReconciler(w, nil, clk)
	src := &loadSource{rps: 7}
	r.Source = func(*Config) metricsource.Source { return src }
	r.NewDecider = func(FamilyConfig, profile.Profile) (decider.Decider, error) { return d, nil }
	ctx := context.Background()
	pass := func(at time.Duration, rps float64) time.Duration {
		t.Helper()
		clk.SetTime(t0.Add(at))
		src.set(rps)
		next, err := r.sync(ctx, "ns", "fam")
		if err != nil {
			t.Fatalf("pass at +%v: %v", at, err)
		}
		return next
	}

	if next := pass(0, 7); len(d.obs) != 1 || next != 5*time.Second {
		t.Fatalf("first pass: %d decisions, next %v; want 1 and 5s (the trigger's check)", len(d.obs), next)
	}
	// 30 RPS on 10 of capacity (10 + 2·√10 ≈ 16 with the allowance).
	pass(5*time.Second, 30)
	if len(d.obs) != 2 || d.obs[1].MinLoad < 32.9 || d.obs[1].MinLoad > 33.1 {
		t.Fatalf("overload: %d decisions (want 2), floor %v (want 33)", len(d.obs), d.obs[len(d.obs)-1].MinLoad)
	}
	if ev := drain(rec.Events); !strings.Contains(ev, "ReactiveDecided") {
		t.Errorf("events %q, want a ReactiveDecided event", ev)
	}
	// Same load: the plan in force was sized for 33 already.
	pass(10*time.Second, 30)
	if len(d.obs) != 2 {
		t.Fatalf("decided again for the load the plan was sized for (%d decisions)", len(d.obs))
	}
	// 2 s later: the reading is not due (every 5 s), so nothing is seen.
	pass(12*time.Second, 100)
	if len(d.obs) != 2 {
		t.Fatalf("decided on a reading that was not taken (%d decisions)", len(d.obs))
	}
	pass(15*time.Second, 100)
	if len(d.obs) != 3 || d.obs[2].MinLoad < 109.9 {
		t.Fatalf("higher overload: %d decisions (want 3), floor %v (want 110)", len(d.obs), d.obs[len(d.obs)-1].MinLoad)
	}
	// Off: the same overload waits for the interval.
	w.graph.SetAnnotations(map[string]string{IntervalKey: "30s", ReactiveKey: "0", PlanKey: w.graph.GetAnnotations()[PlanKey]})
	if next := pass(20*time.Second, 1000); len(d.obs) != 3 || next != 25*time.Second {
		t.Errorf("trigger off: %d decisions (want 3), next %v (want 25s, the interval)", len(d.obs), next)
	}
}

func drain(ch chan string) string {
	var out []string
	for {
		select {
		case e := <-ch:
			out = append(out, e)
		default:
			return strings.Join(out, "; ")
		}
	}
}

func TestRunsAsPlanned(t *testing.T) {
	plan := StoredPlan{Variants: []PlannedVariant{{Name: "a", Cores: 2, Replicas: 1, Percent: 70},
		{Name: "b", Cores: 4, Replicas: 2, Percent: 30}, {Name: "c"}}}
	vs := func(name string, cores, replicas int, share float64) decider.VariantState {
		return decider.VariantState{Name: name, Cores: cores, Replicas: replicas, Share: share}
	}
	for _, tc := range []struct {
		name string
		cur  []decider.VariantState
		want bool
	}{
		{"as planned", []decider.VariantState{vs("a", 2, 1, 0.7), vs("b", 4, 2, 0.3), vs("c", 0, 0, 0)}, true},
		{"weights not moved yet", []decider.VariantState{vs("a", 2, 1, 1), vs("b", 4, 2, 0), vs("c", 0, 0, 0)}, false},
		{"b still on 2 cores", []decider.VariantState{vs("a", 2, 1, 0.7), vs("b", 2, 2, 0.3), vs("c", 0, 0, 0)}, false},
		{"c still has weight", []decider.VariantState{vs("a", 2, 1, 0.6), vs("b", 4, 2, 0.3), vs("c", 1, 1, 0.1)}, false},
		{"an off variant still running without weight", []decider.VariantState{vs("a", 2, 1, 0.7), vs("b", 4, 2, 0.3), vs("c", 1, 1, 0)}, true},
	} {
		if got := runsAsPlanned(plan, tc.cur); got != tc.want {
			t.Errorf("%s: runsAsPlanned = %v, want %v", tc.name, got, tc.want)
		}
	}
}
