package loop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/infadapter/infadapter/pkg/decider"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// events records the order of backend and router calls across fakes.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) { e.mu.Lock(); e.log = append(e.log, s); e.mu.Unlock() }
func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// fakeBackend tracks ready instances: Prepare makes target variants ready
// (advancing the clock by prepareTook), Retire drops the rest.
type fakeBackend struct {
	ev          *events
	clock       *clocktesting.FakeClock
	prepareTook time.Duration
	ready       map[string]int // variant → cores of the ready instance(s)
	running     []string       // instance ids "variant@cores"
	nextErr     error
}

var _ Backend = (*fakeBackend)(nil)

func (b *fakeBackend) Prepare(_ context.Context, target []decider.VariantState) ([]Endpoint, error) {
	if b.nextErr != nil {
		err := b.nextErr
		b.nextErr = nil
		b.ev.add("prepare-failed")
		return nil, err
	}
	b.clock.Step(b.prepareTook)
	var eps []Endpoint
	for _, v := range target {
		id := v.Name + "@" + itoa(v.Cores)
		if !contains(b.running, id) {
			b.running = append(b.running, id)
			b.ev.add("start " + id)
		}
		b.ev.add("ready " + id)
		eps = append(eps, Endpoint{Variant: v.Name, URL: "http://" + id, Cores: v.Cores})
	}
	return eps, nil
}

func (b *fakeBackend) Retire(_ context.Context, keep []Endpoint) error {
	var still []string
	for _, id := range b.running {
		kept := false
		for _, e := range keep {
			if "http://"+id == e.URL {
				kept = true
			}
		}
		if kept {
			still = append(still, id)
		} else {
			b.ev.add("stop " + id)
		}
	}
	b.running = still
	return nil
}

type fakeRouter struct {
	ev     *events
	routes []Route
	// readyCheck fails the test if a route points at a non-running instance.
	backend *fakeBackend
	t       *testing.T
}

func (r *fakeRouter) SetRoutes(_ context.Context, routes []Route) error {
	for _, rt := range routes {
		id := strings.TrimPrefix(rt.URL, "http://")
		if !contains(r.backend.running, id) {
			r.t.Errorf("route to %s, which is not running/ready", id)
		}
		r.ev.add("route " + id + " " + ftoa(rt.Weight))
	}
	r.routes = routes
	return nil
}

type fakeLoad struct{ hist []float64 }

func (f fakeLoad) History(_ time.Time, n int) []float64 {
	if n > 0 && len(f.hist) > n {
		return f.hist[len(f.hist)-n:]
	}
	return f.hist
}

// scriptDecider returns the next plan of its script on each call.
type scriptDecider struct {
	plans []decider.Plan
	errs  []error
	calls []decider.Observation
}

func (s *scriptDecider) Name() string { return "script" }
func (s *scriptDecider) Decide(_ time.Time, obs decider.Observation) (decider.Plan, error) {
	i := len(s.calls)
	s.calls = append(s.calls, obs)
	if i < len(s.errs) && s.errs[i] != nil {
		return decider.Plan{}, s.errs[i]
	}
	return s.plans[i], nil
}

func plan(forecast float64, vs ...decider.VariantState) decider.Plan {
	return decider.Plan{Variants: vs, Forecast: forecast, Feasible: true, Objective: 0.5, Accuracy: 0.9}
}

func vs(name string, cores int, share float64) decider.VariantState {
	return decider.VariantState{Name: name, Cores: cores, Replicas: 1, Share: share}
}

type rig struct {
	clock   *clocktesting.FakeClock
	ev      *events
	backend *fakeBackend
	router  *fakeRouter
	dec     *scriptDecider
	loop    *Loop
	journal *bytes.Buffer
	reg     *prometheus.Registry
	metrics *Metrics
}

func newRig(t *testing.T, cfg Config, d *scriptDecider) *rig {
	t.Helper()
	r := &rig{clock: clocktesting.NewFakeClock(t0), ev: &events{}, dec: d, journal: &bytes.Buffer{}, reg: prometheus.NewRegistry()}
	r.backend = &fakeBackend{ev: r.ev, clock: r.clock, prepareTook: 3 * time.Second, ready: map[string]int{}}
	r.router = &fakeRouter{ev: r.ev, backend: r.backend, t: t}
	m, err := NewMetrics(r.reg)
	if err != nil {
		t.Fatal(err)
	}
	r.metrics = m
	l, err := New(cfg, Deps{
		Clock: r.clock, Load: fakeLoad{hist: []float64{10, 12, 14, 20}},
		Decider: d, Backend: r.backend, Router: r.router,
		Journal: NewJournal(r.journal, 10), Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.loop = l
	return r
}

func testConfig() Config {
	return Config{Interval: 5 * time.Second, HistorySeconds: 600}
}

func TestStepOrdering(t *testing.T) {
	d := &scriptDecider{plans: []decider.Plan{
		// Resize "big" 2→1 core and add "small": both new instances must be
		// ready before any weight moves, and big@2 stops only afterwards.
		plan(30, vs("big", 1, 0.25), vs("small", 1, 0.75)),
	}}
	r := newRig(t, testConfig(), d)
	ctx := context.Background()
	if err := r.loop.Apply(ctx, []decider.VariantState{vs("big", 2, 1)}); err != nil {
		t.Fatal(err)
	}
	start := len(r.ev.get())
	dec, err := r.loop.Step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := r.ev.get()[start:]
	want := []string{
		"start big@1", "ready big@1", "start small@1", "ready small@1",
		"route big@1 0.25", "route small@1 0.75",
		"stop big@2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("call order (-want +got):\n%s", diff)
	}
	if dec.Result != ResultApplied {
		t.Errorf("result = %q, want applied", dec.Result)
	}
	// The fake backend took 3 s to prepare on the fake clock.
	if dec.Timings.PrepareMillis != 3000 || dec.Timings.ApplyMillis != 3000 {
		t.Errorf("timings = %+v, want prepare = apply = 3000 ms", dec.Timings)
	}
	if diff := cmp.Diff([]decider.VariantState{vs("big", 1, 0.25), vs("small", 1, 0.75)}, r.loop.Status().Current); diff != "" {
		t.Errorf("current (-want +got):\n%s", diff)
	}
	// History reached the decider; the inputs summary covers the last 5 s.
	if n := len(d.calls[0].History); n != 4 {
		t.Errorf("history len = %d, want 4", n)
	}
	if dec.Inputs.MeanRPS != 14 || dec.Inputs.MaxRPS != 20 || dec.Inputs.LastRPS != 20 {
		t.Errorf("inputs = %+v, want mean 14 max 20 last 20", dec.Inputs)
	}
}

func TestStepPrepareFailureKeepsState(t *testing.T) {
	d := &scriptDecider{plans: []decider.Plan{plan(50, vs("small", 2, 1))}}
	r := newRig(t, testConfig(), d)
	ctx := context.Background()
	if err := r.loop.Apply(ctx, []decider.VariantState{vs("big", 2, 1)}); err != nil {
		t.Fatal(err)
	}
	start := len(r.ev.get())
	r.backend.nextErr = errors.New("boom")
	dec, err := r.loop.Step(ctx)
	if err == nil || dec.Result != ResultError || !strings.Contains(dec.Error, "boom") {
		t.Fatalf("want a journaled prepare error, got result %q err %v", dec.Result, err)
	}
	if got := r.ev.get()[start:]; !cmp.Equal(got, []string{"prepare-failed"}) {
		t.Errorf("after failed prepare: calls %v, want no routes and no stops", got)
	}
	if diff := cmp.Diff([]decider.VariantState{vs("big", 2, 1)}, r.loop.Status().Current); diff != "" {
		t.Errorf("current changed after failure (-want +got):\n%s", diff)
	}
}

func TestDryRunTouchesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.DryRun = true
	d := &scriptDecider{plans: []decider.Plan{plan(30, vs("small", 1, 1)), plan(60, vs("big", 2, 1))}}
	r := newRig(t, cfg, d)
	ctx := context.Background()
	for i := range 2 {
		dec, err := r.loop.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if dec.Result != ResultDryRun || !dec.DryRun {
			t.Errorf("step %d: result %q dryRun %v, want dry_run", i, dec.Result, dec.DryRun)
		}
	}
	if got := r.ev.get(); len(got) != 0 {
		t.Errorf("dry-run called the backend/router: %v", got)
	}
	lines := strings.Split(strings.TrimSpace(r.journal.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("journal has %d lines, want 2", len(lines))
	}
	var last Decision
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil {
		t.Fatal(err)
	}
	if last.Forecast != 60 || last.Plan.Variants[0].Name != "big" || last.Result != ResultDryRun {
		t.Errorf("journal line 2 = %+v", last)
	}
	if v := testutil.ToFloat64(r.metrics.Decisions.WithLabelValues(ResultDryRun)); v != 2 {
		t.Errorf("decisions_total{dry_run} = %v, want 2", v)
	}
}

func TestHoldUnchangedAndDecideError(t *testing.T) {
	hold := plan(10, vs("big", 2, 1))
	hold.Hold = true
	d := &scriptDecider{
		plans: []decider.Plan{hold, plan(10, vs("big", 2, 1)), {}},
		errs:  []error{nil, nil, errors.New("short history")},
	}
	r := newRig(t, testConfig(), d)
	ctx := context.Background()
	if err := r.loop.Apply(ctx, []decider.VariantState{vs("big", 2, 1)}); err != nil {
		t.Fatal(err)
	}
	start := len(r.ev.get())
	var results []string
	for range 3 {
		dec, _ := r.loop.Step(ctx)
		results = append(results, dec.Result)
	}
	if diff := cmp.Diff([]string{ResultHold, ResultUnchanged, ResultError}, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := r.ev.get()[start:]; len(got) != 0 {
		t.Errorf("hold/unchanged/error touched the backend: %v", got)
	}
	// The decider saw the current state.
	if diff := cmp.Diff([]decider.VariantState{vs("big", 2, 1)}, d.calls[0].Current); diff != "" {
		t.Errorf("observation.Current (-want +got):\n%s", diff)
	}
}

func TestMetricsDeleteGoneVariants(t *testing.T) {
	d := &scriptDecider{plans: []decider.Plan{plan(30, vs("small", 1, 1))}}
	r := newRig(t, testConfig(), d)
	ctx := context.Background()
	if err := r.loop.Apply(ctx, []decider.VariantState{vs("big", 2, 0.5), vs("mid", 1, 0.5)}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(r.metrics.PlanCores); n != 2 {
		t.Fatalf("plan_cores series = %d, want 2", n)
	}
	if _, err := r.loop.Step(ctx); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP infadapter_loop_plan_cores Cores the applied plan gives each variant (backend core units).
# TYPE infadapter_loop_plan_cores gauge
infadapter_loop_plan_cores{variant="small"} 1
`
	if err := testutil.CollectAndCompare(r.metrics.PlanCores, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(r.metrics.ForecastRPS); v != 30 {
		t.Errorf("forecast gauge = %v, want 30", v)
	}
	if v := testutil.ToFloat64(r.metrics.PlanCoresSum); v != 1 {
		t.Errorf("cores total = %v, want 1", v)
	}
}

func TestRunTicksOnInterval(t *testing.T) {
	cfg := testConfig()
	cfg.FirstDecisionDelay = 10 * time.Second
	cfg.DryRun = true
	d := &scriptDecider{plans: []decider.Plan{plan(1, vs("a", 1, 1)), plan(2, vs("a", 1, 1)), plan(3, vs("a", 1, 1))}}
	r := newRig(t, cfg, d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for r.loop.Status().Decisions < n {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for decision %d", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for !r.clock.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	r.clock.Step(9 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := r.loop.Status().Decisions; n != 0 {
		t.Fatalf("decided %d times before the first-decision delay", n)
	}
	r.clock.Step(time.Second) // t = 10 s: first decision
	waitFor(1)
	for !r.clock.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	r.clock.Step(5 * time.Second) // t = 15 s: second
	waitFor(2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	got := r.loop.Journal().Last(0)
	if got[0].Time != t0.Add(10*time.Second) || got[1].Time != t0.Add(15*time.Second) {
		t.Errorf("decision times %v, %v; want +10s, +15s", got[0].Time, got[1].Time)
	}
	if r.loop.Status().Phase != PhaseStopped {
		t.Errorf("phase after Run = %q", r.loop.Status().Phase)
	}
}

func TestJournalHTTP(t *testing.T) {
	j := NewJournal(nil, 3)
	for i := 1; i <= 5; i++ {
		j.Record(Decision{Seq: i})
	}
	srv := httptest.NewServer(j)
	defer srv.Close()
	tests := []struct {
		name, query string
		code        int
		seqs        []int
	}{
		{"all kept", "", 200, []int{3, 4, 5}},
		{"limit", "?limit=2", 200, []int{4, 5}},
		{"bad limit", "?limit=x", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/api/decisions" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code != 200 {
				return
			}
			var ds []Decision
			if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil {
				t.Fatal(err)
			}
			var seqs []int
			for _, d := range ds {
				seqs = append(seqs, d.Seq)
			}
			if diff := cmp.Diff(tc.seqs, seqs); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Interval: 0, HistorySeconds: 0}, Deps{})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"interval", "history seconds", "no load source", "no decider", "backend and router"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestValidPlan(t *testing.T) {
	err := validPlan([]decider.VariantState{vs("a", 0, 0.5), vs("a", 1, 2), vs("", 1, 0)})
	for _, want := range []string{"cores must be > 0", "listed twice", "share must be in [0,1]", "empty name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func itoa(i int) string     { b, _ := json.Marshal(i); return string(b) }
func ftoa(f float64) string { b, _ := json.Marshal(f); return string(b) }
