package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/trace"
)

// Variant is one model variant as the simulator sees it.
type Variant struct {
	Name     string  `json:"name"`
	Accuracy float64 `json:"accuracy"`
	// LoadTime is the model load time of a fresh instance (seconds).
	LoadTime float64 `json:"loadTime"`
	// Capacity[c] is the measured highest RPS one instance with c cores
	// serves with P99 ≤ SLO (the calibration target); the last entry holds
	// for larger c. Capacity[0] is unused.
	Capacity []float64 `json:"capacity"`
}

// TransitionMode says how a plan change takes effect.
type TransitionMode string

const (
	TransitionRestart TransitionMode = "restart"  // new instance, old drains after it is ready
	TransitionInPlace TransitionMode = "in-place" // resize running instances after InPlaceDelay
	TransitionInstant TransitionMode = "instant"  // zero transition time (oracle)
)

// Transition configures reconfiguration delays.
type Transition struct {
	Mode TransitionMode `json:"mode"`
	// PodStart is scheduling + container start before the model loads (s).
	PodStart float64 `json:"podStart"`
	// WarmupRequests are served one by one before readiness (paper: 3).
	WarmupRequests int `json:"warmupRequests"`
	// ProbePeriod is the readiness probe period (s); readiness is seen at
	// the next multiple after the instance is warm (paper: 1 s).
	ProbePeriod float64 `json:"probePeriod"`
	// InPlaceDelay is how long an in-place resize takes (s).
	InPlaceDelay float64 `json:"inPlaceDelay"`
}

// Config is one simulation setting shared by every policy.
type Config struct {
	Variants []Variant `json:"variants"`
	// SLO is the P99 latency objective.
	SLO time.Duration `json:"slo"`
	// Budget B and Alpha α define the objective reported relative to the
	// oracle: effective accuracy − α·avgCores/B.
	Budget int     `json:"budget"`
	Alpha  float64 `json:"alpha"`
	// ServiceCV is the service-time coefficient of variation (lognormal).
	ServiceCV float64 `json:"serviceCV"`
	// QueueFactor × capacity is an instance's queue limit (0 = none).
	QueueFactor float64 `json:"queueFactor"`
	// Timeout abandons requests that would wait longer.
	Timeout time.Duration `json:"timeout"`
	// Window is the length of the paper-style P99 windows.
	Window     time.Duration     `json:"window"`
	Transition Transition        `json:"transition"`
	Arrivals   trace.ArrivalMode `json:"arrivals"`
	Seed       uint64            `json:"seed"`
	// Start is the wall time of the trace's second 0 as seen by deciders.
	Start time.Time `json:"start"`
}

// DefaultConfig returns the paper's setting without variants: SLO 750 ms,
// 20 cores, α 0.05, CV 0.3, queue 1.25 × capacity, timeout 30 s, 5 s
// windows, restart transitions (2 s pod start, 3 warm-up requests, 1 s
// probe), 1 s in-place delay, Poisson arrivals, seed 1.
func DefaultConfig() Config {
	return Config{
		SLO: 750 * time.Millisecond, Budget: 20, Alpha: 0.05, ServiceCV: 0.3,
		QueueFactor: 1.25, Timeout: 30 * time.Second, Window: 5 * time.Second,
		Transition: Transition{Mode: TransitionRestart, PodStart: 2, WarmupRequests: 3, ProbePeriod: 1, InPlaceDelay: 1},
		Arrivals:   trace.ArrivalPoisson, Seed: 1,
		Start: time.Unix(0, 0).UTC(),
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Variants) == 0 {
		errs = append(errs, errors.New("sim: no variants"))
	}
	seen := map[string]bool{}
	for i, v := range c.Variants {
		if v.Name == "" || seen[v.Name] {
			errs = append(errs, fmt.Errorf("sim: variant %d: empty or duplicate name %q", i, v.Name))
		}
		seen[v.Name] = true
		if !(v.Accuracy >= 0 && v.Accuracy <= 1) {
			errs = append(errs, fmt.Errorf("sim: variant %s: accuracy %v not in [0,1]", v.Name, v.Accuracy))
		}
		if !(v.LoadTime >= 0) || math.IsInf(v.LoadTime, 0) {
			errs = append(errs, fmt.Errorf("sim: variant %s: load time %v s must be ≥ 0", v.Name, v.LoadTime))
		}
		if len(v.Capacity) < 2 {
			errs = append(errs, fmt.Errorf("sim: variant %s: capacity table needs entries for ≥ 1 core", v.Name))
		}
		for k, x := range v.Capacity {
			if !(x >= 0) || math.IsInf(x, 0) {
				errs = append(errs, fmt.Errorf("sim: variant %s: capacity at %d cores is %v", v.Name, k, x))
			}
		}
	}
	if c.SLO <= 0 {
		errs = append(errs, fmt.Errorf("sim: SLO must be > 0, got %v", c.SLO))
	}
	if c.Budget <= 0 {
		errs = append(errs, fmt.Errorf("sim: budget must be > 0 cores, got %d", c.Budget))
	}
	if !(c.Alpha >= 0) {
		errs = append(errs, fmt.Errorf("sim: alpha must be ≥ 0, got %v", c.Alpha))
	}
	if !(c.ServiceCV > 0 && c.ServiceCV <= 3) {
		errs = append(errs, fmt.Errorf("sim: service CV must be in (0, 3], got %v", c.ServiceCV))
	}
	if !(c.QueueFactor >= 0) {
		errs = append(errs, fmt.Errorf("sim: queue factor must be ≥ 0, got %v", c.QueueFactor))
	}
	if c.Timeout < c.SLO {
		errs = append(errs, fmt.Errorf("sim: timeout %v must be ≥ the SLO %v", c.Timeout, c.SLO))
	}
	if c.Window < time.Second || c.Window%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sim: window must be whole seconds ≥ 1 s, got %v", c.Window))
	}
	t := c.Transition
	switch t.Mode {
	case TransitionRestart, TransitionInPlace, TransitionInstant:
	default:
		errs = append(errs, fmt.Errorf("sim: unknown transition mode %q (want restart, in-place or instant)", t.Mode))
	}
	if t.PodStart < 0 || t.WarmupRequests < 0 || t.ProbePeriod < 0 || t.InPlaceDelay < 0 {
		errs = append(errs, fmt.Errorf("sim: transition delays must be ≥ 0, got %+v", t))
	}
	if _, err := trace.ParseArrivalMode(string(c.Arrivals)); err != nil {
		errs = append(errs, fmt.Errorf("sim: %w", err))
	}
	return errors.Join(errs...)
}

// capacity returns the variant's true capacity at c cores.
func (v Variant) capacity(c int) float64 {
	if c <= 0 {
		return 0
	}
	if c < len(v.Capacity) {
		return v.Capacity[c]
	}
	return v.Capacity[len(v.Capacity)-1]
}

// Policy is one decider with its schedule and starting state.
type Policy struct {
	Decider decider.Decider
	// Initial runs (ready) at second 0.
	Initial []decider.VariantState
	// FirstDecision and Interval schedule Decide calls.
	FirstDecision time.Duration
	Interval      time.Duration
	// Transition overrides Config.Transition when non-nil (the oracle uses
	// TransitionInstant).
	Transition *Transition
	// Reactive, when enabled, also decides between scheduled decisions:
	// after every complete second whose arrivals outgrow the capacity of
	// what runs (decider.Reactive; as the live loop does). Only deciders
	// that report capacity are triggered.
	Reactive decider.Reactive
}
