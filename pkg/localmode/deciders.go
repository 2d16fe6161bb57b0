package localmode

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/infadapter/infadapter/pkg/baselines"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/forecast"
	"github.com/infadapter/infadapter/pkg/loop"
	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
)

// stretched repeats each second of a load source k times, so a forecaster
// whose horizon is 60 history entries looks 60/k real seconds ahead (the
// demo's time compression; see the package comment). Rates are unchanged.
type stretched struct {
	src loop.LoadSource
	k   int
}

var _ loop.LoadSource = stretched{}

func (s stretched) History(now time.Time, n int) []float64 {
	if s.k <= 1 {
		return s.src.History(now, n)
	}
	want := 0
	if n > 0 {
		want = (n + s.k - 1) / s.k
	}
	h := s.src.History(now, want)
	out := make([]float64, 0, len(h)*s.k)
	for _, v := range h {
		for range s.k {
			out = append(out, v)
		}
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// VariantRPS passes per-variant rates through when the source has them.
func (s stretched) VariantRPS(now time.Time, window time.Duration) map[string]float64 {
	if vs, ok := s.src.(loop.VariantLoadSource); ok {
		return vs.VariantRPS(now, window)
	}
	return nil
}

// planVariants turns a profile whose capacity points are in core units into
// the optimizer's planning model for budget units: Capacity[c] for
// c = 0..units by monotone piecewise-linear interpolation (0 below the
// smallest measured point, last slope beyond the largest), times the
// profile's coefficient.
func planVariants(p profile.Profile, units int) []optimizer.Variant {
	coef := p.Coefficient
	if coef == 0 {
		coef = 1
	}
	out := make([]optimizer.Variant, 0, len(p.Variants))
	for _, v := range p.Variants {
		caps := make([]float64, units+1)
		pts := slices.Clone(v.Capacity)
		slices.SortFunc(pts, func(a, b profile.Point) int { return a.Cores - b.Cores })
		for c := 1; c <= units; c++ {
			caps[c] = coef * interpolate(pts, c)
			if caps[c] < caps[c-1] {
				caps[c] = caps[c-1]
			}
		}
		out = append(out, optimizer.Variant{Name: v.Name, Accuracy: v.Accuracy, LoadTime: v.LoadTimeSeconds, Capacity: caps})
	}
	return out
}

func interpolate(pts []profile.Point, c int) float64 {
	if len(pts) == 0 || c < pts[0].Cores {
		return 0
	}
	for i := 1; i < len(pts); i++ {
		if c <= pts[i].Cores {
			a, b := pts[i-1], pts[i]
			return a.RPS + (b.RPS-a.RPS)*float64(c-a.Cores)/float64(b.Cores-a.Cores)
		}
	}
	last := pts[len(pts)-1]
	if len(pts) == 1 {
		return last.RPS * float64(c) / float64(last.Cores)
	}
	prev := pts[len(pts)-2]
	slope := max(0, (last.RPS-prev.RPS)/float64(last.Cores-prev.Cores))
	return last.RPS + slope*float64(c-last.Cores)
}

// mostAccurate returns the index of the most accurate variant.
func mostAccurate(vs []optimizer.Variant) int {
	best := 0
	for i, v := range vs {
		if v.Accuracy > vs[best].Accuracy {
			best = i
		}
	}
	return best
}

// fixed is the static single-variant deployment: it never changes what
// runs. It still forecasts, so the dashboard shows the same forecast line.
type fixed struct {
	name string
	f    forecast.Forecaster
	acc  float64
}

var _ decider.Decider = (*fixed)(nil)

func (s *fixed) Name() string { return s.name }

func (s *fixed) Decide(_ time.Time, obs decider.Observation) (decider.Plan, error) {
	fc := 0.0
	if s.f != nil {
		if v, err := s.f.Forecast(obs.History); err == nil {
			fc = v
		}
	}
	return decider.Plan{Variants: obs.Current, Forecast: fc, Feasible: true, Accuracy: s.acc, Hold: true,
		Reason: "static deployment"}, nil
}

// policy is a decider and the deployment it starts from.
type policy struct {
	d       decider.Decider
	initial []decider.VariantState
	timer   loop.PhaseTimer
}

func (r *runner) newPolicy(name string, peak float64) (policy, error) {
	cfg := r.cfg
	f, err := forecast.New(cfg.Forecaster)
	if err != nil {
		return policy{}, err
	}
	tf := loop.NewTimedForecaster(f, nil)
	dc := decider.DefaultConfig()
	dc.Variants = r.plan
	dc.Budget = cfg.Units()
	dc.MinCores = cfg.MinUnits
	dc.Alpha, dc.Beta = cfg.Alpha, cfg.Beta
	dc.Stabilization = cfg.Stabilization
	dc.Forecaster = tf
	best := r.plan[mostAccurate(r.plan)]
	// The paper's initial state: the most accurate variant on the whole
	// budget (ResNet152 @ 20 cores).
	bestFull := []decider.VariantState{{Name: best.Name, Cores: cfg.Units(), Replicas: 1, Share: 1}}
	switch name {
	case "infadapter":
		d, err := decider.NewInfAdapter(dc)
		return policy{d: d, initial: bestFull, timer: tf}, err
	case "ms+":
		dc.Name = "ms+"
		d, err := baselines.NewMSPlus(dc)
		return policy{d: d, initial: bestFull, timer: tf}, err
	case "static-best":
		return policy{d: &fixed{name: "static-" + best.Name, f: tf, acc: best.Accuracy}, initial: bestFull, timer: tf}, nil
	case "static-peak":
		s, p, err := baselines.NewStatic(dc, peak)
		if err != nil {
			return policy{}, err
		}
		if len(p.Variants) == 0 {
			return policy{}, fmt.Errorf("static-peak: the solver found no plan for %.0f RPS", peak)
		}
		return policy{d: s, initial: p.Variants, timer: tf}, nil
	}
	return policy{}, fmt.Errorf("unknown policy %q", name)
}

// plannedAccuracy is Σ share × accuracy of a state.
func plannedAccuracy(vs []decider.VariantState, acc map[string]float64) float64 {
	sum, w := 0.0, 0.0
	for _, v := range vs {
		sum += v.Share * acc[v.Name]
		w += v.Share
	}
	if w == 0 {
		return 0
	}
	return sum / w
}

func round(v float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}
