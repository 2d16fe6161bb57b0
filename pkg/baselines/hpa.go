package baselines

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
)

// HPAConfig configures HPA-<variant> (reference §2b): one variant with a
// fixed size per replica, replicas from CPU utilisation.
type HPAConfig struct {
	Variant     string
	Cores       int     // per replica
	MinReplicas int     // 1
	MaxReplicas int     // Budget / Cores
	Target      float64 // target CPU utilisation (fraction of the request)
	Tolerance   float64 // 0.1
	// DownscaleWindow: the highest recommendation of this window is used
	// (behavior.scaleDown.stabilizationWindowSeconds, 300 s).
	DownscaleWindow time.Duration
}

// DefaultHPAConfig: 2 cores per replica, up to budget/2 replicas, 70% CPU.
func DefaultHPAConfig(variant string, budget int) HPAConfig {
	return HPAConfig{Variant: variant, Cores: 2, MinReplicas: 1, MaxReplicas: max(1, budget/2), Target: 0.7,
		Tolerance: 0.1, DownscaleWindow: 5 * time.Minute}
}

// Validate reports every problem.
func (c HPAConfig) Validate() error {
	var errs []error
	if c.Variant == "" || c.Cores < 1 {
		errs = append(errs, errors.New("hpa: need a variant and ≥ 1 core per replica"))
	}
	if c.MinReplicas < 1 || c.MaxReplicas < c.MinReplicas {
		errs = append(errs, fmt.Errorf("hpa: want 1 ≤ min ≤ max replicas, got %d..%d", c.MinReplicas, c.MaxReplicas))
	}
	if !(c.Target > 0 && c.Target <= 1) || c.Tolerance < 0 {
		errs = append(errs, fmt.Errorf("hpa: target %v must be in (0,1], tolerance ≥ 0", c.Target))
	}
	return errors.Join(errs...)
}

type rec struct {
	at time.Time
	n  int
}

// HPA is the horizontal baseline.
type HPA struct {
	cfg  HPAConfig
	recs []rec
}

var _ decider.Decider = (*HPA)(nil)

// NewHPA validates cfg.
func NewHPA(cfg HPAConfig) (*HPA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &HPA{cfg: cfg}, nil
}

// Name implements decider.Decider.
func (h *HPA) Name() string { return "hpa-" + h.cfg.Variant }

// Desired is the HPA ratio rule: within tolerance keep ready, else
// ceil(utilisation%/target% · ready), clamped to [min, max]; scale-ups limited to
// max(2×, +4) per sync.
func (h *HPA) Desired(ready int, usageCores float64) int {
	if ready <= 0 {
		return h.cfg.MinReplicas
	}
	// Like the controller: utilisation and target as whole percents of
	// the request (integer division), so ratio 105%/70% is exactly 1.5.
	utilPct := int64(usageCores * 100 / (float64(ready) * float64(h.cfg.Cores)))
	targetPct := int64(math.Round(h.cfg.Target * 100))
	ratio := float64(utilPct) / float64(targetPct)
	n := ready
	if math.Abs(1-ratio) > h.cfg.Tolerance {
		n = int(math.Ceil(ratio * float64(ready)))
	}
	n = min(n, max(2*ready, ready+4))
	return min(max(n, h.cfg.MinReplicas), h.cfg.MaxReplicas)
}

// Decide applies the rule with the 5-minute downscale stabilisation window.
func (h *HPA) Decide(now time.Time, obs decider.Observation) (decider.Plan, error) {
	ready := 0
	for _, c := range obs.Current {
		if c.Name == h.cfg.Variant {
			ready = c.Replicas
		}
	}
	usage := 0.0
	for _, o := range obs.Variants {
		if o.Name == h.cfg.Variant {
			usage = o.CPUUsageCores
		}
	}
	n := h.Desired(ready, usage)
	h.recs = append(h.recs, rec{now, n})
	keep := h.recs[:0]
	final := n
	for _, r := range h.recs {
		if now.Sub(r.at) <= h.cfg.DownscaleWindow {
			keep = append(keep, r)
			final = max(final, r.n)
		}
	}
	h.recs = keep
	if final > n && n >= ready {
		final = n
	}
	if n < ready {
		final = min(final, ready)
	}
	return decider.Plan{Variants: []decider.VariantState{{Name: h.cfg.Variant, Cores: h.cfg.Cores, Replicas: final, Share: 1}},
		Feasible: true, Forecast: 0, Hold: final == ready, Reason: fmt.Sprintf("usage %.2f cores on %d replicas → %d", usage, ready, final)}, nil
}
