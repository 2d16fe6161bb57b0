package trace

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Shape names a synthetic load shape.
type Shape string

const (
	// ShapeSteps holds Base, jumps to Peak for the middle third, and
	// returns to Base: the cleanest test of reaction time.
	ShapeSteps Shape = "steps"
	// ShapeSpikes is Base with short (Period/10 s) spikes to Peak every
	// Period seconds.
	ShapeSpikes Shape = "spikes"
	// ShapeDiurnal is a sine between Base and Peak with period Period and
	// multiplicative Gaussian noise of relative size Noise.
	ShapeDiurnal Shape = "diurnal"
	// ShapeBursts is Base with bursts of random height (up to Peak) and
	// random length (Period/4..Period) at random times (about one per
	// 2·Period s).
	ShapeBursts Shape = "bursts"
	// ShapeTwitter mimics the paper's Twitter window: a steady level with
	// per-second noise, then a burst of ~4.5× that ramps up within a
	// minute, holds about seven minutes with jitter, and decays over a few
	// minutes. It is what the local demo replays without the real trace.
	ShapeTwitter Shape = "twitter-like"
)

// Shapes lists the synthetic shapes.
var Shapes = []Shape{ShapeSteps, ShapeSpikes, ShapeDiurnal, ShapeBursts, ShapeTwitter}

// Synthetic describes a generated trace. Zero fields take the defaults in
// DefaultSynthetic.
type Synthetic struct {
	Shape   Shape   `json:"shape"`
	Seconds int     `json:"seconds"` // length
	Base    float64 `json:"base"`    // RPS at rest
	Peak    float64 `json:"peak"`    // RPS at the top
	Period  int     `json:"period"`  // seconds; shape-specific
	Noise   float64 `json:"noise"`   // relative per-second noise (σ/level)
	Seed    uint64  `json:"seed"`
}

// DefaultSynthetic returns the defaults for a shape: 1,260 s (the paper's
// 21 minutes), 60 → 270 RPS like the Twitter window, 5% noise.
func DefaultSynthetic(s Shape) Synthetic {
	d := Synthetic{Shape: s, Seconds: 1260, Base: 60, Peak: 270, Period: 300, Noise: 0.05, Seed: 1}
	if s == ShapeDiurnal {
		d.Period = 600
	}
	return d
}

// ParseSynthetic parses "shape[:key=value,...]", e.g.
// "diurnal:seconds=3600,base=20,peak=120,period=900,noise=0.1,seed=7".
func ParseSynthetic(spec string) (Synthetic, error) {
	name, opts, _ := strings.Cut(spec, ":")
	s := Shape(strings.TrimSpace(name))
	ok := false
	for _, k := range Shapes {
		ok = ok || k == s
	}
	if !ok {
		return Synthetic{}, fmt.Errorf("unknown synthetic shape %q (want one of %v)", name, Shapes)
	}
	d := DefaultSynthetic(s)
	if strings.TrimSpace(opts) == "" {
		return d, d.Validate()
	}
	var errs []error
	for _, kv := range strings.Split(opts, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(kv), "=")
		if !found {
			errs = append(errs, fmt.Errorf("synthetic option %q: want key=value", kv))
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("synthetic option %s: %q is not a number", k, v))
			continue
		}
		switch k {
		case "seconds":
			d.Seconds = int(f)
		case "base":
			d.Base = f
		case "peak":
			d.Peak = f
		case "period":
			d.Period = int(f)
		case "noise":
			d.Noise = f
		case "seed":
			d.Seed = uint64(f)
		default:
			errs = append(errs, fmt.Errorf("unknown synthetic option %q (want seconds, base, peak, period, noise, seed)", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Synthetic{}, err
	}
	return d, d.Validate()
}

// Validate reports every problem with s.
func (s Synthetic) Validate() error {
	var errs []error
	if s.Seconds <= 0 || s.Seconds > 100_000_000 {
		errs = append(errs, fmt.Errorf("synthetic seconds must be in 1..1e8, got %d", s.Seconds))
	}
	if !(s.Base >= 0) || math.IsInf(s.Base, 0) {
		errs = append(errs, fmt.Errorf("synthetic base must be ≥ 0, got %v", s.Base))
	}
	if !(s.Peak >= s.Base) || math.IsInf(s.Peak, 0) {
		errs = append(errs, fmt.Errorf("synthetic peak must be ≥ base (%v), got %v", s.Base, s.Peak))
	}
	if s.Period <= 0 {
		errs = append(errs, fmt.Errorf("synthetic period must be > 0 s, got %d", s.Period))
	}
	if !(s.Noise >= 0 && s.Noise <= 1) {
		errs = append(errs, fmt.Errorf("synthetic noise must be in [0,1], got %v", s.Noise))
	}
	return errors.Join(errs...)
}

// Generate builds the trace. Same Synthetic → same trace.
func (s Synthetic) Generate() (Trace, error) {
	if err := s.Validate(); err != nil {
		return Trace{}, err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x7472616365)) // "trace"
	n, P := s.Seconds, float64(s.Period)
	out := make([]float64, n)
	switch s.Shape {
	case ShapeSteps:
		for i := range out {
			out[i] = s.Base
			if i >= n/3 && i < 2*n/3 {
				out[i] = s.Peak
			}
		}
	case ShapeSpikes:
		w := max(1, s.Period/10)
		for i := range out {
			out[i] = s.Base
			if i%s.Period >= s.Period-w {
				out[i] = s.Peak
			}
		}
	case ShapeDiurnal:
		mid, amp := (s.Base+s.Peak)/2, (s.Peak-s.Base)/2
		for i := range out {
			out[i] = mid - amp*math.Cos(2*math.Pi*float64(i)/P)
		}
	case ShapeBursts:
		for i := range out {
			out[i] = s.Base
		}
		for t := 0; t < n; {
			t += int(rng.ExpFloat64() * 2 * P)
			if t >= n {
				break
			}
			length := int(P/4 + rng.Float64()*P*3/4)
			h := s.Base + (s.Peak-s.Base)*(0.3+0.7*rng.Float64())
			for j := t; j < min(n, t+length); j++ {
				out[j] = max(out[j], h)
			}
			t += length
		}
	case ShapeTwitter:
		// Phase boundaries as fractions of the paper's 21-minute window:
		// steady 9.5 min, ramp 1 min, hold 6.5 min (with ±10% minute-level
		// jitter), decay 3 min back to base, steady to the end.
		f := func(min float64) int { return int(min / 21 * float64(n)) }
		rampS, holdS, decayS, endS := f(9.5), f(10.5), f(17), f(20)
		level := s.Base
		for i := range out {
			switch {
			case i < rampS:
				level = s.Base
			case i < holdS:
				level = s.Base + (s.Peak-s.Base)*float64(i-rampS)/float64(max(1, holdS-rampS))
			case i < decayS:
				if (i-holdS)%60 == 0 {
					level = s.Peak * (0.82 + 0.18*rng.Float64())
				}
			case i < endS:
				x := float64(i-decayS) / float64(max(1, endS-decayS))
				level = s.Base + (s.Peak*0.75-s.Base)*math.Exp(-3*x)
			default:
				level = s.Base
			}
			out[i] = level
		}
	default:
		return Trace{}, fmt.Errorf("unknown synthetic shape %q", s.Shape)
	}
	if s.Noise > 0 {
		for i, v := range out {
			out[i] = max(0, v*(1+s.Noise*rng.NormFloat64()))
		}
	}
	for i, v := range out {
		out[i] = math.Round(v) // whole requests, like a measured trace
	}
	return Trace{Name: s.String(), RPS: out}, nil
}

// String is the canonical spec, parseable by ParseSynthetic.
func (s Synthetic) String() string {
	return fmt.Sprintf("%s:seconds=%d,base=%g,peak=%g,period=%d,noise=%g,seed=%d",
		s.Shape, s.Seconds, s.Base, s.Peak, s.Period, s.Noise, s.Seed)
}

// ShapeNames returns the shape names sorted, for help texts.
func ShapeNames() []string {
	out := make([]string, len(Shapes))
	for i, s := range Shapes {
		out[i] = string(s)
	}
	sort.Strings(out)
	return out
}
