package loop

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/infadapter/infadapter/pkg/decider"
)

// liveLoad is a load source whose history the test changes.
type liveLoad struct {
	mu   sync.Mutex
	hist []float64
}

func (f *liveLoad) set(h ...float64) { f.mu.Lock(); f.hist = h; f.mu.Unlock() }
func (f *liveLoad) History(_ time.Time, n int) []float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n > 0 && len(f.hist) > n {
		return append([]float64(nil), f.hist[len(f.hist)-n:]...)
	}
	return append([]float64(nil), f.hist...)
}

// capDecider is a scriptDecider whose planning model gives every variant
// 100 RPS per core.
type capDecider struct{ scriptDecider }

func (c *capDecider) Capacity(state []decider.VariantState) (float64, bool) {
	best := 0.0
	for i, v := range state {
		cap := 100 * float64(v.Cores) / v.Share
		if i == 0 || cap < best {
			best = cap
		}
	}
	return best, len(state) > 0
}

type reactiveRig struct {
	clock *clocktesting.FakeClock
	load  *liveLoad
	dec   *capDecider
	loop  *Loop
	m     *Metrics
}

func newReactiveRig(t *testing.T, plans ...decider.Plan) *reactiveRig {
	t.Helper()
	r := &reactiveRig{clock: clocktesting.NewFakeClock(t0), load: &liveLoad{}, dec: &capDecider{scriptDecider{plans: plans}}}
	ev := &events{}
	b := &fakeBackend{ev: ev, clock: r.clock, ready: map[string]int{}}
	cfg := testConfig()
	cfg.Reactive = decider.DefaultReactive()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	l, err := New(cfg, Deps{Clock: r.clock, Load: r.load, Decider: r.dec, Backend: b,
		Router: &fakeRouter{ev: ev, backend: b, t: t}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r.loop = l
	if err := l.Apply(context.Background(), []decider.VariantState{vs("a", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReactDecidesWhenLoadOutgrowsCapacity walks the trigger through its
// cases on one loop: within capacity, overloaded, right after a decision,
// already planned for, and overloaded again.
func TestReactDecidesWhenLoadOutgrowsCapacity(t *testing.T) {
	ctx := context.Background()
	r := newReactiveRig(t, plan(330, vs("a", 4, 1)), plan(550, vs("a", 6, 1)))

	// "a" on 1 core takes 100 RPS; 100 arrivals is not above that.
	r.load.set(80, 100)
	if _, ok, _ := r.loop.React(ctx); ok {
		t.Fatal("decided at 100 RPS on a capacity of 100")
	}
	// 300 arrivals: decide now, for at least 300 × 1.1.
	r.load.set(100, 300)
	d, ok, err := r.loop.React(ctx)
	if !ok || err != nil {
		t.Fatalf("no reactive decision at 300 RPS on a capacity of 100 (err %v)", err)
	}
	if d.Trigger != TriggerReactive || d.Result != ResultApplied || !near(d.Inputs.MinLoad, 330) {
		t.Errorf("decision = trigger %q result %q minLoad %v; want reactive, applied, 330", d.Trigger, d.Result, d.Inputs.MinLoad)
	}
	if got := r.dec.calls[0].MinLoad; !near(got, 330) {
		t.Errorf("the decider saw MinLoad %v, want 330", got)
	}
	// The new plan (4 cores, 400 RPS) is sized for 330. Even if that
	// second were still overloaded, nothing fires within a second of the
	// last decision.
	r.load.set(100, 300, 1000)
	if _, ok, _ := r.loop.React(ctx); ok {
		t.Error("decided again less than a second after the last decision")
	}
	// A second later: 380 arrivals are within 400.
	r.clock.Step(time.Second)
	r.load.set(300, 380)
	if _, ok, _ := r.loop.React(ctx); ok {
		t.Error("decided at 380 RPS on a capacity of 400")
	}
	// 500 arrivals outgrow 400: floor 550 > 330, decide.
	r.load.set(380, 500)
	d, ok, _ = r.loop.React(ctx)
	if !ok || !near(d.Inputs.MinLoad, 550) {
		t.Fatalf("second overload: ok=%v minLoad=%v; want a decision for 550", ok, d.Inputs.MinLoad)
	}
	if n := testutil.ToFloat64(r.m.Reactive); n != 2 {
		t.Errorf("reactive decisions metric = %v, want 2", n)
	}
	if got := r.loop.Status().Current; len(got) != 1 || got[0].Cores != 6 {
		t.Errorf("current = %+v, want a on 6 cores", got)
	}
}

// TestReactNotAgainForAnOverloadAlreadyPlannedFor: when the budget cannot
// serve the load, the plan stays short of it; the trigger must not decide
// again every second for the same load.
func TestReactNotAgainForAnOverloadAlreadyPlannedFor(t *testing.T) {
	ctx := context.Background()
	// The decider plans for 1100 but can only run 2 cores (200 RPS).
	infeasible := plan(1100, vs("a", 2, 1))
	r := newReactiveRig(t, infeasible, infeasible)
	r.load.set(1000)
	if _, ok, _ := r.loop.React(ctx); !ok {
		t.Fatal("no decision at 1000 RPS on a capacity of 100")
	}
	r.clock.Step(2 * time.Second)
	if _, ok, _ := r.loop.React(ctx); ok {
		t.Error("decided again for a load the last plan was already sized for")
	}
	r.load.set(1500) // higher than planned: decide again
	if _, ok, _ := r.loop.React(ctx); !ok {
		t.Error("no decision when the load rose above what the last plan was sized for")
	}
}

// TestScheduledStepCarriesTheFloor: a tick that finds the load above what
// runs hands the floor to the decider too.
func TestScheduledStepCarriesTheFloor(t *testing.T) {
	r := newReactiveRig(t, plan(50, vs("a", 1, 1)), plan(50, vs("a", 1, 1)))
	r.load.set(90)
	if _, err := r.loop.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.load.set(200)
	d, err := r.loop.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.dec.calls[0].MinLoad != 0 || !near(r.dec.calls[1].MinLoad, 220) {
		t.Errorf("MinLoad seen = %v, %v; want 0, 220", r.dec.calls[0].MinLoad, r.dec.calls[1].MinLoad)
	}
	if d.Trigger != TriggerSchedule {
		t.Errorf("trigger = %q, want schedule", d.Trigger)
	}
}

// TestReactNeedsCapacity: a decider that cannot report capacity (VPA, a
// static deployment) is never triggered, and a loop without Reactive
// never checks.
func TestReactNeedsCapacity(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	for _, tc := range []struct {
		name string
		dec  decider.Decider
		r    decider.Reactive
	}{
		{"no capacity", &scriptDecider{plans: []decider.Plan{plan(1, vs("a", 1, 1))}}, decider.DefaultReactive()},
		{"trigger off", &capDecider{scriptDecider{plans: []decider.Plan{plan(1, vs("a", 1, 1))}}}, decider.Reactive{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Reactive, cfg.DryRun = tc.r, true
			l, err := New(cfg, Deps{Clock: clk, Load: fakeLoad{hist: []float64{1e6}}, Decider: tc.dec})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Apply(ctx, []decider.VariantState{vs("a", 1, 1)}); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := l.React(ctx); ok {
				t.Error("decided")
			}
		})
	}
}

// firstDecisionOfRun runs the loop on the fake clock, stepping it 250 ms
// (the check period) at a time, until the first decision, and returns it.
func firstDecisionOfRun(t *testing.T, r *reactiveRig) *Decision {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for r.loop.Status().Decisions == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no decision")
		}
		if r.clock.HasWaiters() {
			r.clock.Step(250 * time.Millisecond)
		}
		time.Sleep(time.Millisecond)
	}
	return r.loop.Status().Last
}

// TestRunChecksBetweenTicks: Run takes a reactive decision between two
// scheduled ones (the interval is 5 s).
func TestRunChecksBetweenTicks(t *testing.T) {
	r := newReactiveRig(t, plan(330, vs("a", 4, 1)))
	r.load.set(300)
	if d := firstDecisionOfRun(t, r); d.Trigger != TriggerReactive || d.Time.Sub(t0) >= 5*time.Second {
		t.Errorf("first decision: trigger %q at +%v; want reactive before the 5 s tick", d.Trigger, d.Time.Sub(t0))
	}
}

// TestRunReactsBeforeTheFirstDecision: the trigger does not wait for the
// first-decision delay (which is there for the forecaster's history).
func TestRunReactsBeforeTheFirstDecision(t *testing.T) {
	r := newReactiveRig(t, plan(330, vs("a", 4, 1)))
	r.loop.cfg.FirstDecisionDelay = time.Minute
	r.load.set(300)
	if d := firstDecisionOfRun(t, r); d.Trigger != TriggerReactive || d.Time.Sub(t0) >= time.Minute {
		t.Errorf("first decision: trigger %q at +%v; want reactive within the first minute", d.Trigger, d.Time.Sub(t0))
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
