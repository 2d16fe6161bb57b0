package forecast

import (
	"fmt"
	"math"
	"slices"
)

// Quantile is a calibrated upper forecast: Base's point forecast times the
// Q-quantile of Base's recent ratios actual/forecast.
//
// For each of the last Window minutes j it replays Base on the history that
// ended at the start of minute j and records r_j = max(minute j) / forecast.
// The forecast is Base(history) × quantile_Q(r). With Q = 0.95 about 5% of
// minutes should come out under-predicted if the recent past is like the
// next minute — headroom that adapts to how noisy the load currently is,
// instead of the paper's fixed +10%. With fewer than 2 minutes of history
// (no ratio yet) it returns Base's forecast.
type Quantile struct {
	Q      float64          // in (0,1), e.g. 0.95
	Window int              // minutes of ratios; 0 means 120
	Base   minuteForecaster // nil means EWMA span 3
}

var _ minuteForecaster = (*Quantile)(nil)

// NewQuantile returns a Quantile over base, which must be a forecaster built
// from per-minute maxima: LastValue, EWMA, *HoltWinters, *LSTM (nil means
// EWMA span 3).
func NewQuantile(q float64, window int, base Forecaster) (*Quantile, error) {
	if !(q > 0 && q < 1) {
		return nil, fmt.Errorf("quantile: q = %v, want (0,1)", q)
	}
	if window < 0 {
		return nil, fmt.Errorf("quantile: window %d minutes must be >= 0", window)
	}
	qf := &Quantile{Q: q, Window: window}
	if base != nil {
		mf, ok := base.(minuteForecaster)
		if !ok {
			return nil, fmt.Errorf("quantile: base %q does not work on per-minute maxima", base.Name())
		}
		qf.Base = mf
	}
	return qf, nil
}

func (q *Quantile) base() minuteForecaster {
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
	return fmt.Sprintf("quantile:%g", q.Q)
}

// Forecast implements Forecaster.
func (q *Quantile) Forecast(history []float64) (float64, error) {
	return forecastViaMinutes(q, history)
}

func (q *Quantile) minutesNeeded() int { return q.base().minutesNeeded() + q.window() }
func (q *Quantile) minMinutes() int    { return q.base().minMinutes() }

func (q *Quantile) forecastMinutes(m []float64) (float64, error) {
	if !(q.Q > 0 && q.Q < 1) {
		return 0, fmt.Errorf("quantile: q = %v, want (0,1)", q.Q)
	}
	b := q.base()
	point, err := b.forecastMinutes(m)
	if err != nil {
		return 0, err
	}
	need, minNeed := b.minutesNeeded(), b.minMinutes()
	ratios := make([]float64, 0, q.window())
	for j := len(m) - 1; j >= max(len(m)-q.window(), minNeed); j-- {
		past := m[max(j-need, 0):j]
		f, err := b.forecastMinutes(past)
		if err != nil {
			return 0, err
		}
		if f <= 0 {
			continue
		}
		ratios = append(ratios, m[j]/f)
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
