package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/decider"
)

// Config holds the loop's settings.
type Config struct {
	// Interval between decisions. The paper uses 30 s; the local demo uses a
	// few seconds so a short replay sees many decisions.
	Interval time.Duration
	// FirstDecisionDelay is the wait before the first decision, so the
	// forecaster has some history (paper: 2 min). 0: decide at the first tick.
	FirstDecisionDelay time.Duration
	// HistorySeconds is how many seconds of per-second counts each decision
	// receives (paper: 600).
	HistorySeconds int
	// DryRun decides and journals but never touches the backend or the
	// dispatcher.
	DryRun bool
	// Reactive decides between ticks when the last complete second's
	// arrivals outgrow the capacity of what runs (decider.Reactive; the
	// zero value is off). Only deciders that report capacity
	// (decider.CapacityReporter) are triggered.
	Reactive decider.Reactive
	// ReactiveCheck is how often the trigger looks at the load; default
	// 250 ms (the load source counts whole seconds, so a new second is
	// seen at most this late).
	ReactiveCheck time.Duration
}

// reactiveGap is the least time between a decision and a reactive one:
// the load source's resolution (one second), so one overloaded second
// triggers at most one decision.
const reactiveGap = time.Second

// DefaultConfig returns the paper's settings.
func DefaultConfig() Config {
	return Config{Interval: 30 * time.Second, FirstDecisionDelay: 2 * time.Minute, HistorySeconds: 600}
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("loop interval: must be > 0, got %v", c.Interval))
	}
	if c.FirstDecisionDelay < 0 {
		errs = append(errs, fmt.Errorf("loop first decision delay: must be >= 0, got %v", c.FirstDecisionDelay))
	}
	if c.HistorySeconds <= 0 {
		errs = append(errs, fmt.Errorf("loop history seconds: must be > 0, got %d", c.HistorySeconds))
	}
	if err := c.Reactive.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("loop: %w", err))
	}
	if c.ReactiveCheck < 0 {
		errs = append(errs, fmt.Errorf("loop reactive check: must be >= 0 (0: 250ms), got %v", c.ReactiveCheck))
	}
	return errors.Join(errs...)
}

// Phase is where the loop is; reported by Status.
type Phase string

// Phases of the loop's state machine (see the package comment).
const (
	PhaseWaiting   Phase = "waiting"
	PhaseObserving Phase = "observing"
	PhaseDeciding  Phase = "deciding"
	PhaseApplying  Phase = "applying"
	PhaseStopped   Phase = "stopped"
)

// Deps are the loop's collaborators. Backend and Router may be nil only in
// dry-run mode.
type Deps struct {
	Clock   clock.WithTicker // nil: real clock
	Load    LoadSource
	Decider decider.Decider
	Backend Backend
	Router  Router
	// ForecastTimer splits decide time into forecast and solve (optional;
	// without it the whole decide time counts as solve).
	ForecastTimer PhaseTimer
	Journal       *Journal // nil: memory-only journal
	Metrics       *Metrics // nil: unregistered metrics
	Log           *slog.Logger
}

// Status is a snapshot of the loop for dashboards.
type Status struct {
	Phase   Phase                  `json:"phase"`
	Policy  string                 `json:"policy"`
	DryRun  bool                   `json:"dryRun"`
	Current []decider.VariantState `json:"current"`
	// Endpoints are the ready instances the dispatcher routes to.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	Last      *Decision  `json:"last,omitempty"`
	Decisions int        `json:"decisions"`
}

// Loop adapts one logical model. Step and Apply must not be called
// concurrently with each other (Run serialises them); Status may be called
// from any goroutine.
type Loop struct {
	cfg  Config
	deps Deps

	mu        sync.Mutex
	phase     Phase
	current   []decider.VariantState
	endpoints []Endpoint
	last      *Decision
	seq       int
	// sizedFor is the load the last decision that applied (or kept, or
	// dry-ran) a plan sized it for: a reactive decision is taken only for
	// a floor above it, so an overload the budget cannot serve is not
	// re-decided every second.
	sizedFor float64
}

// New checks cfg and deps and returns a loop that runs nothing yet.
func New(cfg Config, deps Deps) (*Loop, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.Load == nil {
		errs = append(errs, errors.New("loop: no load source"))
	}
	if deps.Decider == nil {
		errs = append(errs, errors.New("loop: no decider"))
	}
	if !cfg.DryRun && (deps.Backend == nil || deps.Router == nil) {
		errs = append(errs, errors.New("loop: backend and router are required unless dry-run"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if deps.Clock == nil {
		deps.Clock = clock.RealClock{}
	}
	if deps.Journal == nil {
		deps.Journal = NewJournal(nil, 0)
	}
	if deps.Metrics == nil {
		deps.Metrics, _ = NewMetrics(nil)
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReactiveCheck == 0 {
		cfg.ReactiveCheck = 250 * time.Millisecond
	}
	deps.Log = deps.Log.With("component", "loop", "policy", deps.Decider.Name())
	return &Loop{cfg: cfg, deps: deps, phase: PhaseWaiting}, nil
}

// Journal returns the loop's decision journal (an http.Handler for
// /api/decisions).
func (l *Loop) Journal() *Journal { return l.deps.Journal }

// Status returns a snapshot of the loop.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Status{
		Phase: l.phase, Policy: l.deps.Decider.Name(), DryRun: l.cfg.DryRun,
		Current:   slices.Clone(l.current),
		Endpoints: slices.Clone(l.endpoints),
		Decisions: l.seq,
	}
	if l.last != nil {
		d := *l.last
		s.Last = &d
	}
	return s
}

func (l *Loop) setPhase(p Phase) {
	l.mu.Lock()
	l.phase = p
	l.mu.Unlock()
}

// Run decides every Interval (after FirstDecisionDelay) until ctx is done,
// then returns ctx's error. From the start it checks the reactive trigger
// every ReactiveCheck when one is configured. A failed decision is
// journaled and the loop goes on with the state it had.
func (l *Loop) Run(ctx context.Context) error {
	defer l.setPhase(PhaseStopped)
	// The reactive check runs from the start: the first-decision delay
	// gives the forecaster history, which the trigger does not need (an
	// initial state too small for the opening load is its first case).
	var check <-chan time.Time
	if l.cfg.Reactive.Enabled() {
		ct := l.deps.Clock.NewTicker(l.cfg.ReactiveCheck)
		defer ct.Stop()
		check = ct.C()
	}
	if d := l.cfg.FirstDecisionDelay; d > 0 {
		t := l.deps.Clock.NewTimer(d)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-check:
				l.react(ctx)
			case <-t.C():
				break wait
			}
		}
		l.step(ctx)
	}
	tick := l.deps.Clock.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C():
			l.step(ctx)
		case <-check:
			l.react(ctx)
		}
	}
}

func (l *Loop) react(ctx context.Context) {
	if d, ok, err := l.React(ctx); ok && err != nil && ctx.Err() == nil {
		l.deps.Log.Warn("reactive decision failed; keeping the current state", "seq", d.Seq, "err", err)
	}
}

func (l *Loop) step(ctx context.Context) {
	d, err := l.Step(ctx)
	if err != nil && ctx.Err() == nil {
		l.deps.Log.Warn("decision failed; keeping the current state", "seq", d.Seq, "err", err)
	}
}

// React checks the reactive trigger at the clock's now and, when it fires,
// takes a decision like Step (trigger "reactive"). It fires when the last
// complete second's arrivals exceed Reactive.Threshold × the capacity of
// what runs, the resulting floor is above the load what runs was sized
// for, and the last decision is at least a second old. ok reports whether
// a decision was taken.
func (l *Loop) React(ctx context.Context) (d Decision, ok bool, err error) {
	if !l.cfg.Reactive.Enabled() {
		return Decision{}, false, nil
	}
	now := l.deps.Clock.Now()
	l.mu.Lock()
	current, sizedFor, last := slices.Clone(l.current), l.sizedFor, l.last
	l.mu.Unlock()
	if last != nil && now.Sub(last.Time) < reactiveGap {
		return Decision{}, false, nil
	}
	floor, over := l.floor(l.deps.Load.History(now, 1), current)
	if !over || floor <= sizedFor {
		return Decision{}, false, nil
	}
	l.deps.Metrics.Reactive.Inc()
	d, err = l.decide(ctx, now, TriggerReactive)
	return d, true, err
}

// floor is the reactive floor for a history whose last entry is the last
// complete second, or false when that second did not outgrow current.
func (l *Loop) floor(hist []float64, current []decider.VariantState) (float64, bool) {
	if len(hist) == 0 {
		return 0, false
	}
	return l.cfg.Reactive.Floor(l.deps.Decider, current, hist[len(hist)-1])
}

// Step takes one decision at the clock's now: observe, decide, and (unless
// dry-run, hold or unchanged) apply. It returns the journaled decision; the
// error is the decision's failure, if any (the state is then unchanged).
//
// A scheduled decision that finds the load above what runs plans for the
// reactive floor too (see React).
func (l *Loop) Step(ctx context.Context) (Decision, error) {
	return l.decide(ctx, l.deps.Clock.Now(), TriggerSchedule)
}

func (l *Loop) decide(ctx context.Context, now time.Time, trigger string) (Decision, error) {
	c := l.deps.Clock
	l.mu.Lock()
	l.seq++
	d := Decision{Seq: l.seq, Time: now, Policy: l.deps.Decider.Name(), Trigger: trigger, DryRun: l.cfg.DryRun}
	current := slices.Clone(l.current)
	l.mu.Unlock()

	// Observe.
	l.setPhase(PhaseObserving)
	t0 := c.Now()
	hist := l.deps.Load.History(now, l.cfg.HistorySeconds)
	obs := decider.Observation{History: hist, Current: current}
	if f, over := l.floor(hist, current); over {
		obs.MinLoad = f
	}
	if vs, ok := l.deps.Load.(VariantLoadSource); ok {
		rps := vs.VariantRPS(now, l.cfg.Interval)
		for _, name := range sortedKeys(rps) {
			obs.Variants = append(obs.Variants, decider.VariantObservation{Name: name, RPS: rps[name]})
		}
	}
	d.Inputs = summarise(hist, l.cfg.Interval, current, obs.Variants)
	d.Inputs.MinLoad = obs.MinLoad
	l.deps.Metrics.ServedRPS.Set(d.Inputs.MeanRPS)
	t1 := c.Now()
	d.Timings.ObserveMillis = millis(t1.Sub(t0))

	// Decide (forecast + solve).
	l.setPhase(PhaseDeciding)
	if l.deps.ForecastTimer != nil {
		l.deps.ForecastTimer.TakeDuration() // drop anything not ours
	}
	plan, err := l.deps.Decider.Decide(now, obs)
	decide := c.Since(t1)
	var fc time.Duration
	if l.deps.ForecastTimer != nil {
		fc = min(l.deps.ForecastTimer.TakeDuration(), decide)
	}
	d.Timings.ForecastMillis = millis(fc)
	d.Timings.SolveMillis = millis(decide - fc)
	l.deps.Metrics.PhaseDuration.WithLabelValues("observe").Observe(t1.Sub(t0).Seconds())
	l.deps.Metrics.PhaseDuration.WithLabelValues("forecast").Observe(fc.Seconds())
	l.deps.Metrics.PhaseDuration.WithLabelValues("solve").Observe((decide - fc).Seconds())
	l.deps.Metrics.SolveDuration.Observe((decide - fc).Seconds())
	if err != nil {
		return l.finish(d, ResultError, fmt.Errorf("decide: %w", err))
	}
	d.Plan, d.Forecast, d.Objective = plan, plan.Forecast, plan.Objective
	l.deps.Metrics.ForecastRPS.Set(plan.Forecast)
	l.deps.Metrics.PlanAccuracy.Set(plan.Accuracy)

	switch {
	case l.cfg.DryRun:
		return l.finish(d, ResultDryRun, nil)
	case plan.Hold:
		return l.finish(d, ResultHold, nil)
	case len(plan.Variants) == 0:
		return l.finish(d, ResultError, errors.New("decider returned an empty plan"))
	}
	if err := validPlan(plan.Variants); err != nil {
		return l.finish(d, ResultError, err)
	}
	if samePlan(current, plan.Variants) {
		return l.finish(d, ResultUnchanged, nil)
	}

	l.setPhase(PhaseApplying)
	tm, err := l.apply(ctx, plan.Variants)
	d.Timings.ApplyMillis, d.Timings.PrepareMillis, d.Timings.WeightsMillis, d.Timings.RetireMillis =
		tm.ApplyMillis, tm.PrepareMillis, tm.WeightsMillis, tm.RetireMillis
	l.deps.Metrics.PhaseDuration.WithLabelValues("apply").Observe(tm.ApplyMillis / 1000)
	if err != nil {
		return l.finish(d, ResultError, err)
	}
	return l.finish(d, ResultApplied, nil)
}

func (l *Loop) finish(d Decision, result string, err error) (Decision, error) {
	d.Result = result
	if err != nil {
		d.Error = err.Error()
	}
	l.deps.Metrics.Decisions.WithLabelValues(result).Inc()
	l.deps.Journal.Record(d)
	l.mu.Lock()
	switch result {
	case ResultApplied, ResultUnchanged, ResultDryRun:
		l.sizedFor = d.Forecast
	}
	l.last = &d
	l.phase = PhaseWaiting
	l.mu.Unlock()
	l.deps.Log.Info("decision", "seq", d.Seq, "trigger", d.Trigger, "result", result, "forecast", d.Forecast,
		"plan", planString(d.Plan.Variants), "err", d.Error)
	return d, err
}

// Apply brings the service to target without a decision (e.g. the initial
// state before Run). Same ordering as a decision: prepare, then weights, then
// retire. In dry-run mode it only records target as the current state.
func (l *Loop) Apply(ctx context.Context, target []decider.VariantState) error {
	if err := validPlan(target); err != nil {
		return err
	}
	if l.cfg.DryRun {
		l.mu.Lock()
		l.current = slices.Clone(target)
		l.mu.Unlock()
		return nil
	}
	_, err := l.apply(ctx, target)
	return err
}

// apply is the create-before-delete sequence. On failure the current state
// and weights stay as they were (Prepare does not stop serving instances,
// and nothing is retired before the weights moved).
func (l *Loop) apply(ctx context.Context, target []decider.VariantState) (tm Timings, err error) {
	c := l.deps.Clock
	t0 := c.Now()
	defer func() { tm.ApplyMillis = millis(c.Since(t0)) }()

	eps, err := l.deps.Backend.Prepare(ctx, target)
	t1 := c.Now()
	tm.PrepareMillis = millis(t1.Sub(t0))
	if err != nil {
		return tm, fmt.Errorf("prepare instances: %w", err)
	}
	routes, err := buildRoutes(target, eps)
	if err != nil {
		return tm, err
	}
	if err := l.deps.Router.SetRoutes(ctx, routes); err != nil {
		tm.WeightsMillis = millis(c.Since(t1))
		return tm, fmt.Errorf("set dispatcher weights: %w", err)
	}
	t2 := c.Now()
	tm.WeightsMillis = millis(t2.Sub(t1))

	// The new plan is in force from here: traffic follows it.
	l.mu.Lock()
	l.current = slices.Clone(target)
	l.endpoints = slices.Clone(eps)
	l.mu.Unlock()
	cores := map[string]int{}
	shares := map[string]float64{}
	for _, v := range target {
		cores[v.Name] = v.Cores * max(v.Replicas, 1)
		shares[v.Name] = v.Share
	}
	l.deps.Metrics.setPlan(cores, shares)

	if err := l.deps.Backend.Retire(ctx, eps); err != nil {
		tm.RetireMillis = millis(c.Since(t2))
		return tm, fmt.Errorf("retire old instances: %w", err)
	}
	tm.RetireMillis = millis(c.Since(t2))
	return tm, nil
}

// buildRoutes pairs each target variant's share with its ready endpoint.
// Shares are renormalised to sum to 1 (plans carry rounded shares).
func buildRoutes(target []decider.VariantState, eps []Endpoint) ([]Route, error) {
	byName := map[string]Endpoint{}
	for _, e := range eps {
		byName[e.Variant] = e
	}
	sum := 0.0
	for _, v := range target {
		sum += v.Share
	}
	routes := make([]Route, 0, len(target))
	for _, v := range target {
		e, ok := byName[v.Name]
		if !ok {
			return nil, fmt.Errorf("backend returned no ready endpoint for variant %q", v.Name)
		}
		w := v.Share
		if sum > 0 {
			w /= sum
		} else {
			w = 1 / float64(len(target))
		}
		routes = append(routes, Route{Variant: v.Name, URL: e.URL, Weight: w})
	}
	return routes, nil
}

// validPlan rejects plans the backend cannot run.
func validPlan(vs []decider.VariantState) error {
	if len(vs) == 0 {
		return errors.New("plan: no variants")
	}
	seen := map[string]bool{}
	var errs []error
	for i, v := range vs {
		switch {
		case v.Name == "":
			errs = append(errs, fmt.Errorf("plan variant %d: empty name", i))
		case seen[v.Name]:
			errs = append(errs, fmt.Errorf("plan variant %q: listed twice", v.Name))
		}
		seen[v.Name] = true
		if v.Cores <= 0 {
			errs = append(errs, fmt.Errorf("plan variant %q: cores must be > 0, got %d", v.Name, v.Cores))
		}
		if v.Share < 0 || v.Share > 1 {
			errs = append(errs, fmt.Errorf("plan variant %q: share must be in [0,1], got %v", v.Name, v.Share))
		}
	}
	return errors.Join(errs...)
}

// samePlan reports whether running b means no change from a: same variants,
// cores, replicas and (to 1e-3) shares.
func samePlan(a, b []decider.VariantState) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]decider.VariantState{}
	for _, v := range a {
		m[v.Name] = v
	}
	for _, v := range b {
		o, ok := m[v.Name]
		if !ok || o.Cores != v.Cores || max(o.Replicas, 1) != max(v.Replicas, 1) {
			return false
		}
		if d := o.Share - v.Share; d > 1e-3 || d < -1e-3 {
			return false
		}
	}
	return true
}

func summarise(hist []float64, interval time.Duration, cur []decider.VariantState, vs []decider.VariantObservation) Inputs {
	in := Inputs{HistorySeconds: len(hist), Current: cur, Variants: vs}
	if in.Current == nil {
		in.Current = []decider.VariantState{}
	}
	if len(hist) == 0 {
		return in
	}
	in.LastRPS = hist[len(hist)-1]
	n := max(int(interval/time.Second), 1)
	tail := hist[max(len(hist)-n, 0):]
	sum := 0.0
	for _, v := range tail {
		sum += v
		in.MaxRPS = max(in.MaxRPS, v)
	}
	in.MeanRPS = sum / float64(len(tail))
	return in
}

func planString(vs []decider.VariantState) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s:%dc/%.0f%%", v.Name, v.Cores, 100*v.Share)
	}
	return s
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
