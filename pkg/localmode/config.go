package localmode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/forecast"
)

// Policies `run` accepts for the adaptive run.
var Policies = []string{"infadapter", "ms+"}

// Baselines `run` accepts for the comparison run.
var Baselines = []string{"static-best", "static-peak", "none"}

// Config is the one configuration of `infadapter run`.
type Config struct {
	// Duration is the length of the replayed trace, per run (the adaptive
	// run and the baseline run each replay it once).
	Duration time.Duration `json:"duration"`
	// BudgetCores is the CPU budget of the variant servers, in cores
	// (fractions need the cgroup enforcement; under affinity it is
	// rounded down to whole cores).
	BudgetCores float64 `json:"budgetCores"`
	// CoreUnitMilli is the allocation step in thousandths of a core (the
	// optimizer allocates whole units). Default 250 (quarter cores).
	CoreUnitMilli int `json:"coreUnitMilli"`
	// MinUnits is the smallest non-zero allocation of a variant, in units.
	MinUnits int `json:"minUnits"`
	// SLO is the P99 latency objective.
	SLO time.Duration `json:"slo"`
	// Interval between decisions (paper: 30 s). 0 compresses the paper's
	// 30 s by the same factor as the trace: the built-in trace is the
	// paper's 21-minute window played in Duration, so Interval =
	// 30 s × Duration / 21 min (≈ 3 s for 2 min), at least 1 s.
	Interval time.Duration `json:"interval"`
	// FirstDecision is the delay before the first decision (paper: 2 min).
	FirstDecision time.Duration `json:"firstDecision"`
	// HorizonStretch repeats each observed second this many times in the
	// forecaster's history, so its one-minute horizon covers 60/N s. 0
	// means 30 s / Interval × 2 … i.e. a horizon of two intervals.
	HorizonStretch int `json:"horizonStretch"`
	// Policy is the adaptive policy: infadapter or ms+.
	Policy string `json:"policy"`
	// Forecaster is a pkg/forecast spec (default "paper").
	Forecaster string `json:"forecaster"`
	// Alpha and Beta are the objective's cost weights (paper 0.05, 0.001).
	Alpha float64 `json:"alpha"`
	Beta  float64 `json:"beta"`
	// Stabilization decisions before a scale-down (paper: 4).
	Stabilization int `json:"stabilization"`
	// Reactive decides between intervals when a second's arrivals outgrow
	// the capacity of what runs (threshold 0 turns it off; not in the
	// paper, which only decides on its 30 s schedule).
	Reactive decider.Reactive `json:"reactive"`
	// Baseline is the comparison run: static-best (the most accurate
	// variant on the whole budget: what a user would naively deploy),
	// static-peak (the solver's plan for the trace's peak, held fixed) or
	// none.
	Baseline string `json:"baseline"`
	// DryRun decides and journals but keeps the initial deployment.
	DryRun bool `json:"dryRun"`
	// PeakRPS and BaseRPS of the built-in trace; 0 derives them from the
	// profile (see scaleTrace).
	PeakRPS float64 `json:"peakRps"`
	BaseRPS float64 `json:"baseRps"`
	// MaxRPS caps the trace so the load generator and dispatcher, which
	// share the machine with the servers, keep up.
	MaxRPS float64 `json:"maxRps"`
	// Seed for the trace, arrivals and image order.
	Seed uint64 `json:"seed"`
	// ModelsDir holds the variants' .onnx files.
	ModelsDir string `json:"modelsDir"`
	// DatasetDir holds Fashion-MNIST (Debian dataset-fashion-mnist).
	DatasetDir string `json:"datasetDir"`
	// CacheDir keeps profiles and run artefacts.
	CacheDir string `json:"cacheDir"`
	// Profile, when set, is used instead of profiling.
	Profile string `json:"profile"`
	// Reprofile ignores a cached profile.
	Reprofile bool `json:"reprofile"`
	// DashboardAddr is where the dashboard listens ("" disables it).
	DashboardAddr string `json:"dashboardAddr"`
	// Journal is the decision journal file; default <run dir>/decisions.jsonl.
	Journal string `json:"journal"`
	// ServerCommand and ServerEnv start a variant server (default: this
	// executable's serve-model subcommand); tests point them at the test
	// binary.
	ServerCommand []string `json:"-"`
	ServerEnv     []string `json:"-"`
}

// Default returns the demo defaults: a 100 s replay per run (under four
// minutes in all with the baseline; the first run adds about three minutes
// of profiling), decisions every ≈2.4 s (the paper's 30 s compressed like
// the trace), 1 core for the
// variants on this 2-core machine (the load generator and the dispatcher
// need the other), in quarter-core steps.
func Default() Config {
	return Config{
		Duration:      100 * time.Second,
		BudgetCores:   1,
		CoreUnitMilli: 250,
		MinUnits:      2, // 0.5 core: a quarter-core CFS quota throttles too hard for a P99 SLO
		SLO:           100 * time.Millisecond,
		FirstDecision: 6 * time.Second,
		Policy:        "infadapter",
		Forecaster:    "paper",
		Alpha:         0.05,
		Beta:          0.001,
		Stabilization: 4,
		Reactive:      decider.DefaultReactive(),
		Baseline:      "static-best",
		MaxRPS:        400,
		Seed:          1,
		ModelsDir:     "third_party/models/fmnist",
		CacheDir:      defaultCacheDir(),
		DashboardAddr: "127.0.0.1:8080",
	}
}

func defaultCacheDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".cache")
		} else {
			base = os.TempDir()
		}
	}
	return filepath.Join(base, "infadapter")
}

// Units is the budget in core units (rounded down).
func (c Config) Units() int {
	if c.CoreUnitMilli <= 0 {
		return 0
	}
	return int(c.BudgetCores*1000+1e-6) / c.CoreUnitMilli
}

// PaperWindow is the length of the paper's Twitter window, which the
// built-in trace compresses into Duration.
const PaperWindow = 21 * time.Minute

// EffectiveInterval is Interval, or the paper's 30 s compressed like the
// trace when Interval is 0.
func (c Config) EffectiveInterval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	iv := time.Duration(float64(30*time.Second) * float64(c.Duration) / float64(PaperWindow))
	return max(time.Second, iv.Round(100*time.Millisecond))
}

// Stretch is the effective HorizonStretch.
func (c Config) Stretch() int {
	if c.HorizonStretch > 0 {
		return c.HorizonStretch
	}
	// Paper: horizon 60 s = 2 × 30 s intervals. Keep horizon = 2 intervals.
	return max(1, int(forecast.MinuteSeconds*time.Second/(2*c.EffectiveInterval())))
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if c.Duration < 20*time.Second || c.Duration > 24*time.Hour {
		bad("duration: want 20s..24h, got %v", c.Duration)
	}
	if !(c.BudgetCores > 0) || c.BudgetCores > 1024 {
		bad("budget: want > 0 cores, got %v", c.BudgetCores)
	}
	if c.CoreUnitMilli < 10 || c.CoreUnitMilli > 1000 {
		bad("core unit: want 10..1000 millicores, got %d", c.CoreUnitMilli)
	} else if c.Units() < 1 {
		bad("budget %v cores is less than one core unit (%d m)", c.BudgetCores, c.CoreUnitMilli)
	}
	if c.MinUnits < 1 || (c.Units() >= 1 && c.MinUnits > c.Units()) {
		bad("min units: want 1..%d, got %d", max(c.Units(), 1), c.MinUnits)
	}
	if c.SLO < time.Millisecond || c.SLO > time.Minute {
		bad("slo: want 1ms..1m, got %v", c.SLO)
	}
	if c.Interval != 0 && c.Interval < time.Second {
		bad("interval: want 0 (auto) or >= 1s, got %v", c.Interval)
	}
	if c.FirstDecision < 0 {
		bad("first decision delay: want >= 0, got %v", c.FirstDecision)
	}
	if c.HorizonStretch < 0 || c.HorizonStretch > 60 {
		bad("horizon stretch: want 0..60, got %d", c.HorizonStretch)
	}
	if !contains(Policies, c.Policy) {
		bad("policy %q: want one of %v", c.Policy, Policies)
	}
	if !contains(Baselines, c.Baseline) {
		bad("baseline %q: want one of %v", c.Baseline, Baselines)
	}
	if _, err := forecast.New(c.Forecaster); err != nil {
		bad("forecaster: %v", err)
	}
	if !(c.Alpha >= 0) || !(c.Beta >= 0) {
		bad("alpha and beta must be >= 0, got %v and %v", c.Alpha, c.Beta)
	}
	if c.Stabilization < 0 {
		bad("stabilization: want >= 0, got %d", c.Stabilization)
	}
	if err := c.Reactive.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.PeakRPS < 0 || c.BaseRPS < 0 || (c.PeakRPS > 0 && c.BaseRPS > c.PeakRPS) {
		bad("trace: want 0 <= base <= peak, got base %v peak %v", c.BaseRPS, c.PeakRPS)
	}
	if !(c.MaxRPS > 0) {
		bad("max rps: want > 0, got %v", c.MaxRPS)
	}
	if c.ModelsDir == "" {
		bad("models dir: empty")
	}
	if c.CacheDir == "" {
		bad("cache dir: empty")
	}
	return errors.Join(errs...)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// MarshalJSON writes the durations as Go duration strings ("1m40s") so that
// the `run --json` summary is readable, and the interval as the one in
// effect (0 means "compressed like the trace", which a reader cannot use).
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // no methods: no recursion
	return json.Marshal(struct {
		plain
		Duration      string `json:"duration"`
		SLO           string `json:"slo"`
		Interval      string `json:"interval"`
		FirstDecision string `json:"firstDecision"`
	}{plain(c), c.Duration.String(), c.SLO.String(), c.EffectiveInterval().String(), c.FirstDecision.String()})
}
