package forecast

import (
	"fmt"
	"math"
	"slices"
)

// Quantile is a calibrated upper forecast: Base's point forecast times the
// Q-quantile of Base's recent ratios actual/forecast (split-conformal
// prediction on a sliding window).
//
// For each of the last Window minutes j it replays Base on the history that
// ended at the start of minute j and records r_j = max(minute j) / forecast.
// The forecast is Base(history) × quantile_Q(r). With Q = 0.95 about 5% of
// minutes should come out under-predicted if the recent past is like the
// next minute: headroom that adapts to how noisy the load currently is,
// instead of the paper's fixed +10%. Until Base can forecast for at least
// one past minute it returns Base's forecast unchanged.
type Quantile struct {
	Q      float64    // in (0,1), e.g. 0.95
	Window int        // minutes of ratios; 0 means 120
	Base   Forecaster // nil means EWMA span 3
}

var _ Forecaster = (*Quantile)(nil)

// NewQuantile returns a Quantile over base (nil means EWMA span 3).
func NewQuantile(q float64, window int, base Forecaster) (*Quantile, error) {
	if !(q > 0 && q < 1) {
		return nil, fmt.Errorf("quantile: q = %v, want (0,1)", q)
	}
	if window < 0 || window > 100000 {
		return nil, fmt.Errorf("quantile: window %d minutes, want 0..100000", window)
	}
	return &Quantile{Q: q, Window: window, Base: base}, nil
}

func (q *Quantile) base() Forecaster {
	if q.Base == nil {
		return EWMA{Span: 3, MaxMinutes: 60}
	}
	return q.Base
}

func (q *Quantile) window() int {
	if q.Window <= 0 {
		return 120
	}
	return q.Window
}

// Name implements Forecaster.
func (q *Quantile) Name() string {
	return fmt.Sprintf("quantile:%g(%s)", q.Q, q.base().Name())
}

// Forecast implements Forecaster.
func (q *Quantile) Forecast(history []float64) (float64, error) {
	if !(q.Q > 0 && q.Q < 1) {
		return 0, fmt.Errorf("quantile: q = %v, want (0,1)", q.Q)
	}
	b := q.base()
	if err := checkTail(history, q.window()*MinuteSeconds+MinuteSeconds); err != nil {
		return 0, err
	}
	point, err := b.Forecast(history)
	if err != nil {
		return 0, err
	}
	W := q.window()
	ratios := make([]float64, 0, W)
	if mf, ok := b.(minuteForecaster); ok {
		// Fast path: compute the maxima once and replay on them.
		need := mf.minutesNeeded()
		if err := checkTail(history, (need+W)*MinuteSeconds); err != nil {
			return 0, err
		}
		m := MinuteMaxima(history, need+W)
		for j := len(m) - 1; j >= max(len(m)-W, mf.minMinutes()); j-- {
			f, err := mf.forecastMinutes(m[max(j-need, 0):j])
			if err != nil {
				return 0, err
			}
			if f > 0 {
				ratios = append(ratios, m[j]/f)
			}
		}
	} else {
		for j := 1; j <= W && len(history)-j*MinuteSeconds > 0; j++ {
			end := len(history) - j*MinuteSeconds
			f, err := b.Forecast(history[:end])
			if err != nil {
				break // base needs more history than is left
			}
			a := history[end]
			for _, v := range history[end+1 : end+MinuteSeconds] {
				a = max(a, v)
			}
			if f > 0 {
				ratios = append(ratios, a/f)
			}
		}
	}
	if len(ratios) == 0 {
		return point, nil
	}
	return point * quantileOf(ratios, q.Q), nil
}

// quantileOf returns the q-quantile of xs with linear interpolation between
// order statistics (numpy's default); it sorts xs in place.
func quantileOf(xs []float64, q float64) float64 {
	slices.Sort(xs)
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	frac := pos - float64(lo)
	return xs[lo]*(1-frac) + xs[hi]*frac
}
