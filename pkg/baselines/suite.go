package baselines

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/forecast"
	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/sim"
)

// Setup is what every policy of a comparison shares.
type Setup struct {
	// Plan is the planning model (capacities the policies believe).
	Plan []optimizer.Variant
	// Budget, MinCores, Alpha, Beta as in decider.Config.
	Budget, MinCores int
	Alpha, Beta      float64
	// Forecast is the forecaster spec for InfAdapter and MS+ ("paper").
	Forecast string
	// Interval and FirstDecision schedule InfAdapter, MS+ and VPA
	// (paper: 30 s and 2 min).
	Interval, FirstDecision time.Duration
	// MaxReplicas > 1 lets InfAdapter and MS+... use replicas (InfAdapter only).
	MaxReplicas int
	// HPACores is the per-replica size of HPA baselines (default MinCores).
	HPACores int
	// Start is the sim's Config.Start; RPS the trace (oracle, static).
	Start time.Time
	RPS   []float64
	// Reactive is the trigger between intervals for InfAdapter and MS+
	// (off when zero; see decider.Reactive).
	Reactive decider.Reactive
}

// PolicyNames is the default comparison set for the given variants
// (ascending accuracy): infadapter, ms+, vpa-<each>, hpa-<least accurate>,
// static, oracle.
func PolicyNames(plan []optimizer.Variant) []string {
	out := []string{"infadapter", "ms+"}
	for _, v := range plan {
		out = append(out, "vpa-"+v.Name)
	}
	if len(plan) > 0 {
		least := slices.MinFunc(plan, func(a, b optimizer.Variant) int {
			switch {
			case a.Accuracy < b.Accuracy:
				return -1
			case a.Accuracy > b.Accuracy:
				return 1
			}
			return 0
		})
		out = append(out, "hpa-"+least.Name)
	}
	return append(out, "static", "oracle")
}

func (s Setup) deciderConfig() (decider.Config, error) {
	c := decider.DefaultConfig()
	c.Variants, c.Budget, c.MinCores, c.Alpha, c.Beta = s.Plan, s.Budget, s.MinCores, s.Alpha, s.Beta
	c.MaxReplicas = s.MaxReplicas
	spec := s.Forecast
	if spec == "" {
		spec = "paper"
	}
	f, err := forecast.New(spec)
	if err != nil {
		return c, err
	}
	c.Forecaster = f
	return c, c.Validate()
}

func (s Setup) variant(name string) (optimizer.Variant, error) {
	for _, v := range s.Plan {
		if v.Name == name {
			return v, nil
		}
	}
	names := make([]string, len(s.Plan))
	for i, v := range s.Plan {
		names[i] = v.Name
	}
	return optimizer.Variant{}, fmt.Errorf("unknown variant %q (have %s)", name, strings.Join(names, ", "))
}

// mostAccurate returns the initial InfAdapter/MS+ state: the most accurate
// variant with the whole budget (paper: ResNet152 @ 20 cores).
func (s Setup) mostAccurate() []decider.VariantState {
	best := slices.MaxFunc(s.Plan, func(a, b optimizer.Variant) int {
		switch {
		case a.Accuracy < b.Accuracy:
			return -1
		case a.Accuracy > b.Accuracy:
			return 1
		}
		return 0
	})
	return []decider.VariantState{{Name: best.Name, Cores: s.Budget, Replicas: 1, Share: 1}}
}

// Build returns the named policy ready for sim.Run.
func Build(name string, s Setup) (sim.Policy, error) {
	if len(s.Plan) == 0 {
		return sim.Policy{}, errors.New("no variants")
	}
	dc, err := s.deciderConfig()
	if err != nil {
		return sim.Policy{}, err
	}
	p := sim.Policy{Interval: s.Interval, FirstDecision: s.FirstDecision}
	switch {
	case name == "infadapter":
		p.Decider, err = decider.NewInfAdapter(dc)
		p.Initial = s.mostAccurate()
		p.Reactive = s.Reactive
	case name == "ms+":
		dc.MaxReplicas = 0
		p.Decider, err = NewMSPlus(dc)
		p.Initial = s.mostAccurate()
		p.Reactive = s.Reactive
	case strings.HasPrefix(name, "vpa-"):
		v := strings.TrimPrefix(name, "vpa-")
		if _, err := s.variant(v); err != nil {
			return p, fmt.Errorf("policy %s: %w", name, err)
		}
		cfg := DefaultVPAConfig(v, s.Start)
		cfg.MinCores, cfg.MaxCores = s.MinCores, s.Budget
		cfg.FirstApply = s.FirstDecision
		p.Decider, err = NewVPA(cfg)
		// The recommender samples from the VPA object's creation (60 s);
		// the adapter applies from FirstDecision.
		p.FirstDecision = min(cfg.CreateAfter, s.FirstDecision)
		p.Initial = []decider.VariantState{{Name: v, Cores: s.Budget, Replicas: 1, Share: 1}}
	case strings.HasPrefix(name, "hpa-"):
		v := strings.TrimPrefix(name, "hpa-")
		if _, err := s.variant(v); err != nil {
			return p, fmt.Errorf("policy %s: %w", name, err)
		}
		cfg := DefaultHPAConfig(v, s.Budget)
		if s.HPACores > 0 {
			cfg.Cores = s.HPACores
		} else {
			cfg.Cores = s.MinCores
		}
		cfg.MaxReplicas = max(1, s.Budget/cfg.Cores)
		p.Decider, err = NewHPA(cfg)
		// Like every policy, start with the whole budget; the HPA controller
		// syncs every 15 s from the start.
		p.Initial = []decider.VariantState{{Name: v, Cores: cfg.Cores, Replicas: cfg.MaxReplicas, Share: 1}}
		p.Interval, p.FirstDecision = 15*time.Second, 15*time.Second
	case name == "static":
		peak := 0.0
		for _, x := range s.RPS {
			peak = max(peak, x)
		}
		var plan decider.Plan
		p.Decider, plan, err = NewStatic(dc, peak)
		p.Initial = plan.Variants
	case name == "oracle":
		p.Decider, err = NewOracle(dc, s.RPS, s.Start, s.Interval)
		p.FirstDecision = 0
		p.Transition = &sim.Transition{Mode: sim.TransitionInstant}
	default:
		return p, fmt.Errorf("unknown policy %q (want infadapter, ms+, vpa-<variant>, hpa-<variant>, static, oracle)", name)
	}
	if err != nil {
		return p, fmt.Errorf("policy %s: %w", name, err)
	}
	return p, nil
}
