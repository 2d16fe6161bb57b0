package forecast

import (
	"fmt"
	"math"
)

// minuteForecaster is implemented by forecasters whose forecast depends only
// on the per-minute maxima. Quantile and Evaluate use it to compute the
// maxima once instead of once per call.
type minuteForecaster interface {
	Forecaster
	// minutesNeeded is how many trailing minute maxima forecastMinutes reads
	// (it may be given fewer, down to minMinutes).
	minutesNeeded() int
	// minMinutes is the fewest maxima forecastMinutes accepts.
	minMinutes() int
	// forecastMinutes predicts the next minute's max from maxima, oldest
	// first; pre: len(maxima) >= minMinutes(), values validated.
	forecastMinutes(maxima []float64) (float64, error)
}

var (
	_ minuteForecaster = LastValue{}
	_ minuteForecaster = EWMA{}
	_ minuteForecaster = (*HoltWinters)(nil)
)

func (LastValue) minutesNeeded() int { return 1 }
func (LastValue) minMinutes() int    { return 1 }
func (LastValue) forecastMinutes(m []float64) (float64, error) {
	return m[len(m)-1], nil
}

func (e EWMA) minutesNeeded() int {
	if e.MaxMinutes <= 0 {
		return 300
	}
	return e.MaxMinutes
}
func (EWMA) minMinutes() int { return 1 }
func (e EWMA) forecastMinutes(m []float64) (float64, error) {
	if math.IsNaN(e.Span) || e.Span < 1 {
		return 0, fmt.Errorf("ewma: span %v must be >= 1", e.Span)
	}
	return ewmaLast(m, e.Span), nil
}

// HoltWinters is additive triple exponential smoothing on the per-minute
// maxima with a season of Season minutes (default 1440: the Twitter trace
// has a daily cycle). It re-runs the recursion over the last Lookback
// minutes on every call (pure; no hidden state):
//
//	level_t  = α(x_t − s[b(t)]) + (1−α)(level_{t−1} + trend_{t−1})
//	trend_t  = β(level_t − level_{t−1}) + (1−β)trend_{t−1}
//	s[b(t)]  = γ(x_t − level_t) + (1−γ)s[b(t)]
//	forecast = level_n + trend_n + s[b(n)]
//
// The seasonal profile has one term per Block minutes (default 60), b(t) =
// ((start+t) mod Season)/Block: one term per minute of the day would be estimated
// from one noisy maximum per day, and on the Twitter trace such a profile
// adds more noise than it explains. The first two seasons of the window
// initialise level, trend and the profile. With fewer than two seasons of
// history it degrades to Holt's linear method (no seasonal term), which
// needs >= 2 minutes and starts with a zero trend. Fit picks α, β, γ by
// one-step-ahead squared error on a training series.
type HoltWinters struct {
	Alpha, Beta, Gamma float64 // smoothing factors in [0,1]
	Season             int     // minutes per season; 0 means 1440
	Block              int     // minutes per seasonal term; 0 means 60
	Lookback           int     // minutes read per call; 0 means 3 seasons
}

// NewHoltWinters returns Holt-Winters with the factors fitted on the Twitter
// train split by `infadapter forecast train` (docs/forecasting.md) and a
// daily season.
func NewHoltWinters() *HoltWinters {
	return &HoltWinters{Alpha: 0.9, Beta: 0, Gamma: 0.2, Season: 1440, Block: 60}
}

var _ Forecaster = (*HoltWinters)(nil)

// Name implements Forecaster.
func (h *HoltWinters) Name() string { return "holt-winters" }

// Forecast implements Forecaster. The season's phase is anchored at the
// start of history (minute 0 = the first 60 s, or the leading partial
// chunk), so history must start at the same time of day on every call —
// pass the whole history, not a sliding window of it.
func (h *HoltWinters) Forecast(history []float64) (float64, error) {
	k := h.minutesNeeded()
	if err := checkTail(history, k*MinuteSeconds); err != nil {
		return 0, err
	}
	if err := needSeconds(history, MinuteSeconds+1); err != nil {
		return 0, fmt.Errorf("%s: %w", h.Name(), err)
	}
	total := (len(history) + MinuteSeconds - 1) / MinuteSeconds
	m := MinuteMaxima(history, k)
	return h.forecastAt(m, total-len(m))
}

func (h *HoltWinters) season() int {
	if h.Season <= 0 {
		return 1440
	}
	return h.Season
}

func (h *HoltWinters) block() int {
	if h.Block <= 0 {
		return min(60, h.season())
	}
	return min(h.Block, h.season())
}

func (h *HoltWinters) minutesNeeded() int {
	if h.Lookback > 0 {
		return h.Lookback
	}
	return 3 * h.season()
}
func (h *HoltWinters) minMinutes() int { return 2 }

func (h *HoltWinters) check() error {
	for _, p := range []struct {
		n string
		v float64
	}{{"alpha", h.Alpha}, {"beta", h.Beta}, {"gamma", h.Gamma}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("holt-winters: %s = %v, want [0,1]", p.n, p.v)
		}
	}
	if h.Season > 1<<20 || h.Lookback > 1<<22 {
		return fmt.Errorf("holt-winters: season %d or lookback %d minutes too large", h.Season, h.Lookback)
	}
	return nil
}

// forecastMinutes treats x[0] as minute 0 of the season; the phase-aware
// forecastAt is used wherever the absolute minute is known.
func (h *HoltWinters) forecastMinutes(x []float64) (float64, error) {
	return h.forecastAt(x, 0)
}

// forecastAt forecasts from maxima x whose first element is absolute minute
// start (for the season's phase).
func (h *HoltWinters) forecastAt(x []float64, start int) (float64, error) {
	if err := h.check(); err != nil {
		return 0, err
	}
	return hwRun(x, start, h.Alpha, h.Beta, h.Gamma, h.season(), h.block(), nil), nil
}

// hwRun runs the recursion over x and returns the one-step forecast after
// the last value. If sse is non-nil it accumulates the squared one-step
// errors from the first forecastable point on (used by Fit).
// start is the absolute minute of x[0]: block b(t) = ((start+t) mod m)/blk.
func hwRun(x []float64, start int, a, b, g float64, m, blk int, sse *float64) float64 {
	n := len(x)
	if n < 2*m { // Holt's linear trend method
		level, trend := x[0], 0.0
		for t := 1; t < n; t++ {
			if sse != nil {
				e := x[t] - (level + trend)
				*sse += e * e
			}
			prev := level
			level = a*x[t] + (1-a)*(level+trend)
			trend = b*(level-prev) + (1-b)*trend
		}
		return level + trend
	}
	var m1, m2 float64
	for i := range m {
		m1 += x[i]
		m2 += x[m+i]
	}
	m1 /= float64(m)
	m2 /= float64(m)
	level, trend := m1, (m2-m1)/float64(m)
	nb := (m + blk - 1) / blk
	s := make([]float64, nb)
	cnt := make([]float64, nb)
	for i := range m {
		bi := ((start + i) % m) / blk
		s[bi] += (x[i] - m1) + (x[m+i] - m2)
		cnt[bi] += 2
	}
	for i := range s {
		s[i] /= cnt[i]
	}
	for t := range n {
		si := ((start + t) % m) / blk
		if sse != nil && t >= m {
			e := x[t] - (level + trend + s[si])
			*sse += e * e
		}
		prev := level
		level = a*(x[t]-s[si]) + (1-a)*(level+trend)
		trend = b*(level-prev) + (1-b)*trend
		s[si] = g*(x[t]-level) + (1-g)*s[si]
	}
	return level + trend + s[((start+n)%m)/blk]
}

// Fit chooses Alpha, Beta and Gamma on a grid by the one-step squared error
// over maxima (per-minute maxima of a training series, oldest first). It
// needs at least 2 seasons + 1 minute when Gamma matters; shorter series fit
// Holt's linear method only.
func (h *HoltWinters) Fit(maxima []float64) error {
	if len(maxima) < 3 {
		return fmt.Errorf("holt-winters fit: %w: need >= 3 minutes, have %d", ErrShortHistory, len(maxima))
	}
	if err := ValidateSeries(maxima); err != nil {
		return fmt.Errorf("holt-winters fit: %w", err)
	}
	m := h.season()
	best := math.Inf(1)
	var ba, bb, bg float64
	gammas := []float64{0, 0.01, 0.02, 0.05, 0.1, 0.2}
	if len(maxima) < 2*m {
		gammas = []float64{0}
	}
	for _, a := range []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9} {
		for _, b := range []float64{0, 0.01, 0.05, 0.1} {
			for _, g := range gammas {
				var sse float64
				hwRun(maxima, 0, a, b, g, m, h.block(), &sse)
				if sse < best {
					best, ba, bb, bg = sse, a, b, g
				}
			}
		}
	}
	h.Alpha, h.Beta, h.Gamma = ba, bb, bg
	return nil
}
