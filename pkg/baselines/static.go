package baselines

import (
	"fmt"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/optimizer"
)

// Static never changes its plan.
type Static struct{ plan decider.Plan }

var _ decider.Decider = (*Static)(nil)

// NewStatic solves once at the trace's peak (what a capacity planner with
// hindsight would provision) and returns the decider and its plan, which
// is also the initial state.
func NewStatic(cfg decider.Config, peak float64) (*Static, decider.Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, decider.Plan{}, err
	}
	solve := cfg.Solve
	if solve == nil {
		solve = optimizer.Solve
	}
	vs := append([]optimizer.Variant(nil), cfg.Variants...)
	for i := range vs {
		vs[i].Current, vs[i].CurrentReplicas = 0, 0
	}
	sol, err := solve(optimizer.Problem{Budget: cfg.Budget, MinCores: cfg.MinCores, MaxReplicas: cfg.MaxReplicas,
		MaxCoresPerReplica: cfg.MaxCoresPerReplica,
		Services:           []optimizer.Service{{Load: peak, Alpha: cfg.Alpha, Beta: cfg.Beta, Variants: vs}}})
	if err != nil {
		return nil, decider.Plan{}, fmt.Errorf("static: %w", err)
	}
	p := decider.PlanFromSolution(sol, peak)
	return &Static{plan: p}, p, nil
}

// Name implements decider.Decider.
func (s *Static) Name() string { return "static" }

// Decide always holds.
func (s *Static) Decide(_ time.Time, obs decider.Observation) (decider.Plan, error) {
	return decider.Plan{Variants: obs.Current, Forecast: s.plan.Forecast, Feasible: s.plan.Feasible, Hold: true, Reason: "static"}, nil
}

// Oracle knows the trace: each decision plans for the true peak rate of
// the next interval with no headroom and no stabilisation. Run it with
// zero transition time (sim.TransitionInstant): together that is the
// physical limit of the planning model.
type Oracle struct {
	d        *decider.InfAdapter
	rps      []float64
	start    time.Time
	interval time.Duration
}

var _ decider.Decider = (*Oracle)(nil)

// NewOracle returns the oracle over rps (per-second rates from start).
func NewOracle(cfg decider.Config, rps []float64, start time.Time, interval time.Duration) (*Oracle, error) {
	cfg.Name = "oracle"
	cfg.Stabilization = 0
	d, err := decider.NewInfAdapter(cfg)
	if err != nil {
		return nil, err
	}
	if interval <= 0 {
		return nil, fmt.Errorf("oracle: interval must be > 0")
	}
	return &Oracle{d: d, rps: rps, start: start, interval: interval}, nil
}

// Name implements decider.Decider.
func (o *Oracle) Name() string { return "oracle" }

// Decide plans for max rps over [now, now+interval).
func (o *Oracle) Decide(now time.Time, obs decider.Observation) (decider.Plan, error) {
	from := int(now.Sub(o.start) / time.Second)
	to := from + int(o.interval/time.Second)
	peak := 0.0
	for t := max(from, 0); t < min(to, len(o.rps)); t++ {
		peak = max(peak, o.rps[t])
	}
	return o.d.DecideLoad(now, obs, peak)
}
