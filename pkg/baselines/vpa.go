package baselines

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
)

// Histogram is the VPA recommender's decaying exponential histogram
// (vertical-pod-autoscaler/pkg/recommender/util): buckets 5% wider each,
// first bucket 0.01 core, max 1000 cores; a sample's weight grows as
// 2^((t − ref)/halfLife) so older samples count relatively less.
type Histogram struct {
	first, ratio float64
	weights      []float64
	total        float64
	halfLife     time.Duration
	ref          time.Time
	hasRef       bool
}

// NewCPUHistogram returns VPA's CPU histogram with the given half-life.
func NewCPUHistogram(halfLife time.Duration) *Histogram {
	first, ratio, maxV := 0.01, 1.05, 1000.0
	n := int(math.Ceil(math.Log(maxV*(ratio-1)/first+1)/math.Log(ratio))) + 1
	return &Histogram{first: first, ratio: ratio, weights: make([]float64, n), halfLife: halfLife}
}

func (h *Histogram) bucketStart(b int) float64 {
	if b == 0 {
		return 0
	}
	return h.first * (math.Pow(h.ratio, float64(b)) - 1) / (h.ratio - 1)
}

func (h *Histogram) bucket(v float64) int {
	if v < h.first {
		return 0
	}
	b := int(math.Log(v*(h.ratio-1)/h.first+1) / math.Log(h.ratio))
	return min(b, len(h.weights)-1)
}

// Add records value (cores) with weight at time t.
func (h *Histogram) Add(value, weight float64, t time.Time) {
	if !h.hasRef {
		h.ref, h.hasRef = t, true
	}
	w := weight * math.Exp2(t.Sub(h.ref).Seconds()/h.halfLife.Seconds())
	h.weights[h.bucket(value)] += w
	h.total += w
}

// Percentile returns the upper edge of the bucket where the cumulative
// weight reaches p·total (the start of the last bucket for the last one),
// 0 when empty — VPA's semantics.
func (h *Histogram) Percentile(p float64) float64 {
	if h.total <= 0 {
		return 0
	}
	th := p * h.total
	sum := 0.0
	b := 0
	for ; b < len(h.weights)-1; b++ {
		sum += h.weights[b]
		if sum >= th {
			break
		}
	}
	if b < len(h.weights)-1 {
		return h.bucketStart(b + 1)
	}
	return h.bucketStart(b)
}

// VPAConfig drives VPA-<variant> the paper's way (reference §1.8, §2a).
type VPAConfig struct {
	Variant string
	// Start is when the experiment started; the VPA object is created
	// CreateAfter later (paper: 60 s), in updateMode Off.
	Start       time.Time
	CreateAfter time.Duration
	// FirstApply is when the adapter's first decision reads the
	// recommendation (paper: 2 min); the recommender samples from creation.
	FirstApply time.Duration
	// RecommenderInterval is how often the recommender samples usage and
	// updates status (VPA default 1 min).
	RecommenderInterval time.Duration
	HalfLife            time.Duration // 24 h
	TargetPercentile    float64       // 0.9
	LowerPercentile     float64       // 0.5
	UpperPercentile     float64       // 0.95
	Margin              float64       // 0.15
	MinCores, MaxCores  int           // minAllowed/maxAllowed: 2 and 20
	// Stabilization is the "P" type's downscale hold (paper: 4 decisions).
	Stabilization int
}

// DefaultVPAConfig returns the paper's setting for variant.
func DefaultVPAConfig(variant string, start time.Time) VPAConfig {
	return VPAConfig{Variant: variant, Start: start, CreateAfter: time.Minute, FirstApply: 2 * time.Minute, RecommenderInterval: time.Minute,
		HalfLife: 24 * time.Hour, TargetPercentile: 0.9, LowerPercentile: 0.5, UpperPercentile: 0.95,
		Margin: 0.15, MinCores: 2, MaxCores: 20, Stabilization: 4}
}

// Validate reports every problem.
func (c VPAConfig) Validate() error {
	var errs []error
	if c.Variant == "" {
		errs = append(errs, errors.New("vpa: no variant"))
	}
	if c.RecommenderInterval <= 0 || c.HalfLife <= 0 {
		errs = append(errs, errors.New("vpa: recommender interval and half-life must be > 0"))
	}
	for _, p := range []float64{c.TargetPercentile, c.LowerPercentile, c.UpperPercentile} {
		if !(p > 0 && p <= 1) {
			errs = append(errs, fmt.Errorf("vpa: percentile %v not in (0,1]", p))
		}
	}
	if c.MinCores < 1 || c.MaxCores < c.MinCores {
		errs = append(errs, fmt.Errorf("vpa: want 1 ≤ min cores ≤ max cores, got %d..%d", c.MinCores, c.MaxCores))
	}
	if c.Margin < 0 || c.Stabilization < 0 {
		errs = append(errs, errors.New("vpa: margin and stabilization must be ≥ 0"))
	}
	return errors.Join(errs...)
}

// Recommendation is VPA status for the container, in cores.
type Recommendation struct {
	Target, Lower, Upper float64
}

// VPA is the VPA-<variant> baseline: one variant, sized by the VPA
// recommender, applied by restart (the paper patches the Deployment).
type VPA struct {
	cfg        VPAConfig
	hist       *Histogram
	first      time.Time
	last       time.Time
	samples    int
	lastSample time.Time
	rec        *Recommendation
	counter    int
}

var _ decider.Decider = (*VPA)(nil)

// NewVPA validates cfg and returns the baseline.
func NewVPA(cfg VPAConfig) (*VPA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &VPA{cfg: cfg, hist: NewCPUHistogram(cfg.HalfLife)}, nil
}

// Name implements decider.Decider.
func (v *VPA) Name() string { return "vpa-" + v.cfg.Variant }

// Recommendation returns the latest recommendation (nil before the first).
func (v *VPA) Recommendation() *Recommendation { return v.rec }

// AddSample feeds one CPU usage sample (cores) of a container whose CPU
// request is requestCores, and recomputes the recommendation.
func (v *VPA) AddSample(t time.Time, usage, requestCores float64) {
	if v.samples == 0 {
		v.first = t
	}
	v.samples++
	v.last = t
	v.hist.Add(usage, math.Max(requestCores, 0.1), t)
	// estimator.go: confidence = min(lifespan days, samples/1440).
	conf := math.Min(v.last.Sub(v.first).Hours()/24, float64(v.samples)/1440)
	m := 1 + v.cfg.Margin
	minCPU := 0.025
	target := math.Max(v.hist.Percentile(v.cfg.TargetPercentile)*m, minCPU)
	lower := math.Max(v.hist.Percentile(v.cfg.LowerPercentile)*m*math.Pow(1+0.001/conf, -2), minCPU)
	upper := math.Max(v.hist.Percentile(v.cfg.UpperPercentile)*m*(1+1/conf), minCPU)
	if conf == 0 {
		lower, upper = minCPU, math.Inf(1)
	}
	clamp := func(x float64) float64 {
		return math.Min(math.Max(x, float64(v.cfg.MinCores)), float64(v.cfg.MaxCores))
	}
	v.rec = &Recommendation{Target: clamp(target), Lower: clamp(lower), Upper: clamp(upper)}
}

// Decide samples usage once per recommender interval after the VPA object
// exists (call it at least that often, e.g. every 30 s from 60 s), and from
// FirstApply on applies ceil(target) (clamped) — at once when larger, after
// Stabilization held decisions when not.
func (v *VPA) Decide(now time.Time, obs decider.Observation) (decider.Plan, error) {
	cur := 0
	for _, c := range obs.Current {
		if c.Name == v.cfg.Variant {
			cur = c.Cores
		}
	}
	hold := decider.Plan{Variants: obs.Current, Feasible: true, Hold: true}
	if now.Before(v.cfg.Start.Add(v.cfg.CreateAfter)) {
		hold.Reason = "VPA object not created yet"
		return hold, nil
	}
	if v.lastSample.IsZero() || now.Sub(v.lastSample) >= v.cfg.RecommenderInterval {
		usage := 0.0
		for _, o := range obs.Variants {
			if o.Name == v.cfg.Variant {
				usage = o.CPUUsageCores
			}
		}
		v.AddSample(now, usage, float64(cur))
		v.lastSample = now
	}
	if v.rec == nil || now.Before(v.cfg.Start.Add(v.cfg.FirstApply)) {
		hold.Reason = "no recommendation applied yet"
		return hold, nil
	}
	target := int(math.Ceil(v.rec.Target - 1e-9))
	target = min(max(target, v.cfg.MinCores), v.cfg.MaxCores)
	if target <= cur && v.counter < v.cfg.Stabilization {
		v.counter++
		hold.Reason = fmt.Sprintf("target %d cores ≤ current %d: stabilisation %d/%d", target, cur, v.counter, v.cfg.Stabilization)
		return hold, nil
	}
	v.counter = 0
	return decider.Plan{Variants: []decider.VariantState{{Name: v.cfg.Variant, Cores: target, Replicas: 1, Share: 1}},
		Feasible: true, Reason: fmt.Sprintf("VPA target %.2f cores → %d", v.rec.Target, target)}, nil
}
