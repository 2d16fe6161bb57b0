package decider

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/forecast"
	"github.com/infadapter/infadapter/pkg/optimizer"
)

// SolveFunc solves one allocation problem (optimizer.Solve, or a baseline's
// restricted solver such as MS+).
type SolveFunc func(optimizer.Problem) (optimizer.Solution, error)

// Config configures an InfAdapter-style decider: forecast → solve →
// scale-down stabilisation (reference §1.3, adapter/main.py make_decision).
type Config struct {
	// Name is the policy name in reports; default "infadapter".
	Name string
	// Variants are the planning model: accuracy, load time and capacity per
	// core count (Current is filled from each observation).
	Variants []optimizer.Variant
	// Budget B in cores; MinCores the smallest non-zero size (paper: 2).
	Budget   int
	MinCores int
	// MaxReplicas > 1 lets the solver use horizontal replicas of
	// MaxCoresPerReplica cores at most (0 = Budget).
	MaxReplicas        int
	MaxCoresPerReplica int
	// Alpha weighs Σcores/B, Beta the loading cost (paper 0.05 and 0.001).
	Alpha, Beta float64
	// Forecaster predicts the next interval's peak RPS including any
	// headroom; nil means forecast.New("paper") (×1.10 included).
	Forecaster forecast.Forecaster
	// Stabilization is how many consecutive decisions whose forecast is
	// ≤ the load of the last applied plan are held before scaling down
	// (paper: 4). 0 disables it.
	Stabilization int
	// Solve defaults to optimizer.Solve.
	Solve SolveFunc
}

// DefaultConfig returns the paper's parameters without variants.
func DefaultConfig() Config {
	return Config{Name: "infadapter", Budget: 20, MinCores: 2, Alpha: 0.05, Beta: 0.001, Stabilization: 4}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Variants) == 0 {
		errs = append(errs, errors.New("decider: no variants"))
	}
	if c.Budget <= 0 {
		errs = append(errs, fmt.Errorf("decider: budget must be > 0 cores, got %d", c.Budget))
	}
	if c.MinCores < 1 || c.MinCores > max(c.Budget, 1) {
		errs = append(errs, fmt.Errorf("decider: min cores must be in 1..budget, got %d", c.MinCores))
	}
	if !(c.Alpha >= 0) || !(c.Beta >= 0) {
		errs = append(errs, fmt.Errorf("decider: alpha and beta must be ≥ 0, got %v and %v", c.Alpha, c.Beta))
	}
	if c.Stabilization < 0 {
		errs = append(errs, fmt.Errorf("decider: stabilization must be ≥ 0 decisions, got %d", c.Stabilization))
	}
	if c.MaxReplicas < 0 || c.MaxCoresPerReplica < 0 {
		errs = append(errs, errors.New("decider: max replicas and max cores per replica must be ≥ 0"))
	}
	return errors.Join(errs...)
}

// InfAdapter is the paper's decider. Not safe for concurrent use; one
// instance per service.
type InfAdapter struct {
	cfg     Config
	counter int     // consecutive held scale-downs
	load    float64 // λ of the last applied plan; <0 until known
}

var (
	_ Decider          = (*InfAdapter)(nil)
	_ CapacityReporter = (*InfAdapter)(nil)
)

// NewInfAdapter validates cfg and returns the decider.
func NewInfAdapter(cfg Config) (*InfAdapter, error) {
	if cfg.Name == "" {
		cfg.Name = "infadapter"
	}
	if cfg.Solve == nil {
		cfg.Solve = optimizer.Solve
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Forecaster == nil {
		f, err := forecast.New("paper")
		if err != nil {
			return nil, fmt.Errorf("decider: default forecaster: %w", err)
		}
		cfg.Forecaster = f
	}
	return &InfAdapter{cfg: cfg, load: -1}, nil
}

// Name implements Decider.
func (d *InfAdapter) Name() string { return d.cfg.Name }

// Decide forecasts the next interval's peak and plans for it.
func (d *InfAdapter) Decide(now time.Time, obs Observation) (Plan, error) {
	// ForecastAt lets clocked forecasters (online retraining) keep their own
	// record of the load across calls that each see only a sliding window.
	f, err := forecast.ForecastAt(d.cfg.Forecaster, now, obs.History)
	if err != nil {
		if !(obs.MinLoad > 0) {
			return Plan{}, fmt.Errorf("forecast: %w", err)
		}
		// A reactive decision needs no forecast (e.g. the LSTM before it
		// has its 10 minutes of history): plan for the load seen.
		f = 0
	}
	// The paper truncates λ to whole RPS: int((1+err%)·prediction).
	lambda := math.Floor(f)
	if m := math.Ceil(obs.MinLoad); m > lambda && !math.IsInf(m, 0) {
		// The load already outgrew what runs (the reactive trigger):
		// the forecaster has not caught up, so plan for what is seen.
		p, err := d.DecideLoad(now, obs, m)
		if err == nil {
			p.Reason = strings.TrimPrefix(p.Reason+"; ", "; ") +
				fmt.Sprintf("reactive: planned for %.0f RPS seen, above the forecast %.0f", m, lambda)
		}
		return p, err
	}
	return d.DecideLoad(now, obs, lambda)
}

// DecideLoad plans for a given load λ (RPS), skipping the forecaster; the
// oracle uses it with the true next-interval peak.
//
// Stabilisation, exactly as the paper's adapter: if λ ≤ the load the
// current plan was sized for and fewer than Stabilization decisions have
// been held in a row, hold (counter+1); otherwise reset the counter, adopt
// λ and solve. Upscales therefore apply at once and a downscale waits
// Stabilization+1 decisions (2.5 min at 30 s).
func (d *InfAdapter) DecideLoad(_ time.Time, obs Observation, lambda float64) (Plan, error) {
	if !(lambda >= 0) || math.IsInf(lambda, 0) {
		return Plan{}, fmt.Errorf("load %v is not a non-negative number", lambda)
	}
	if d.load < 0 {
		// Like the paper: the initial state is taken to be sized for
		// its own planning capacity.
		d.load = d.capacityOf(obs.Current)
	}
	if lambda <= d.load && d.counter < d.cfg.Stabilization {
		d.counter++
		return Plan{Variants: obs.Current, Forecast: lambda, Feasible: true, Hold: true,
			Accuracy: accuracyOf(d.cfg.Variants, obs.Current),
			Reason:   fmt.Sprintf("scale-down stabilisation %d/%d (forecast %.0f ≤ planned %.0f RPS)", d.counter, d.cfg.Stabilization, lambda, d.load)}, nil
	}
	d.counter = 0
	d.load = lambda
	p := d.problem(obs.Current, lambda)
	sol, err := d.cfg.Solve(p)
	if err != nil {
		return Plan{}, fmt.Errorf("solve: %w", err)
	}
	return PlanFromSolution(sol, lambda), nil
}

// problem builds the optimiser input with the current sizes.
func (d *InfAdapter) problem(current []VariantState, lambda float64) optimizer.Problem {
	vs := make([]optimizer.Variant, len(d.cfg.Variants))
	copy(vs, d.cfg.Variants)
	for i := range vs {
		vs[i].Current, vs[i].CurrentReplicas = 0, 0
		for _, c := range current {
			if c.Name == vs[i].Name && c.Cores > 0 {
				vs[i].Current, vs[i].CurrentReplicas = c.Cores, max(c.Replicas, 1)
			}
		}
	}
	return optimizer.Problem{Budget: d.cfg.Budget, MinCores: d.cfg.MinCores, MaxReplicas: d.cfg.MaxReplicas,
		MaxCoresPerReplica: d.cfg.MaxCoresPerReplica,
		Services:           []optimizer.Service{{Load: lambda, Alpha: d.cfg.Alpha, Beta: d.cfg.Beta, Variants: vs}}}
}

// Capacity implements CapacityReporter: the service load at which the
// first variant of state reaches its planning capacity under state's
// shares (min over variants of capacity × replicas / share).
func (d *InfAdapter) Capacity(state []VariantState) (float64, bool) {
	best, any := math.Inf(1), false
	for _, c := range state {
		if c.Cores <= 0 || c.Share <= 0 {
			continue
		}
		i := slices.IndexFunc(d.cfg.Variants, func(v optimizer.Variant) bool { return v.Name == c.Name })
		if i < 0 {
			return 0, false
		}
		best = min(best, CapacityAt(d.cfg.Variants[i], c.Cores)*float64(max(c.Replicas, 1))/c.Share)
		any = true
	}
	if !any {
		return 0, false
	}
	return best, true
}

func (d *InfAdapter) capacityOf(cur []VariantState) float64 {
	sum := 0.0
	for _, c := range cur {
		for _, v := range d.cfg.Variants {
			if v.Name == c.Name {
				sum += CapacityAt(v, c.Cores) * float64(max(c.Replicas, 1))
			}
		}
	}
	return sum
}

// CapacityAt is v's planning capacity at c cores (last entry beyond the table).
func CapacityAt(v optimizer.Variant, c int) float64 {
	if c <= 0 || len(v.Capacity) == 0 {
		return 0
	}
	return v.Capacity[min(c, len(v.Capacity)-1)]
}

func accuracyOf(vs []optimizer.Variant, cur []VariantState) float64 {
	a := 0.0
	for _, c := range cur {
		for _, v := range vs {
			if v.Name == c.Name {
				a += c.Share * v.Accuracy
			}
		}
	}
	return a
}

// PlanFromSolution turns a solver answer for load lambda into a Plan with
// shares proportional to the assigned RPS.
func PlanFromSolution(sol optimizer.Solution, lambda float64) Plan {
	p := Plan{Forecast: lambda, Feasible: sol.Feasible, Objective: sol.Objective, Accuracy: sol.Accuracy}
	total := 0.0
	for _, a := range sol.Allocations {
		total += a.RPS
	}
	for _, a := range sol.Allocations {
		if a.Cores <= 0 {
			continue
		}
		share := 0.0
		if total > 0 {
			share = a.RPS / total
		}
		p.Variants = append(p.Variants, VariantState{Name: a.Variant, Cores: a.Cores, Replicas: max(a.Replicas, 1), Share: share, RPS: a.RPS})
	}
	if !sol.Feasible {
		p.Reason = "load exceeds what the budget can serve; serving as much as possible"
	}
	return p
}
