package forecast

import (
	"fmt"
	"math"
	"time"
)

// LastValue predicts that the next minute's peak equals the last minute's
// peak: max(history[len-60:]). It is the paper's reference baseline
// ("last minute's max": MAPE 9.3% on the Twitter test split). With less than
// a minute of history it uses the max of what there is.
type LastValue struct{}

var _ Forecaster = LastValue{}

// Name implements Forecaster.
func (LastValue) Name() string { return "last" }

// Forecast implements Forecaster.
func (LastValue) Forecast(history []float64) (float64, error) {
	if err := checkTail(history, MinuteSeconds); err != nil {
		return 0, err
	}
	return MinuteMaxima(history, 1)[0], nil
}

// WindowMax predicts the maximum per-second count of the last Window. It is
// conservative: on the Twitter trace a 10-minute window under-predicts only
// ~10% of minutes but over-provisions by ~36% on average (paper §1.6).
type WindowMax struct {
	// Window is how far back to look; rounded down to whole seconds, >= 1 s.
	Window time.Duration
}

var _ Forecaster = WindowMax{}

// Name implements Forecaster.
func (w WindowMax) Name() string { return "max:" + w.Window.String() }

// Forecast implements Forecaster. With less history than Window it uses the
// whole history.
func (w WindowMax) Forecast(history []float64) (float64, error) {
	n := int(w.Window / time.Second)
	if n < 1 {
		return 0, fmt.Errorf("window max: window %v is shorter than 1s", w.Window)
	}
	if err := checkTail(history, n); err != nil {
		return 0, err
	}
	m := 0.0
	for _, v := range history[max(len(history)-n, 0):] {
		m = max(m, v)
	}
	return m, nil
}

// EWMA is an exponentially weighted mean of the per-minute maxima, exactly
// pandas' Series.ewm(span=Span).mean() (adjust=True) taken at the last
// minute. The paper uses span 10 as its fallback while the LSTM has fewer
// than 10 minutes of input.
//
// With α = 2/(Span+1) the forecast is Σ w_i·m_{n-1-i} / Σ w_i with
// w_i = (1-α)^i over the minute maxima m (newest i = 0). Example, span 10
// (α = 2/11) over maxima [60, 70]: (70 + 0.818·60)/(1 + 0.818) = 65.5.
//
// Only the last MaxMinutes minutes are read (default 300): the weight of
// minute 300 is (9/11)^300 ≈ 1e-26 for span 10, so the result equals the
// full-history value to float64 precision while the cost stays O(1) in
// history length.
type EWMA struct {
	// Span is pandas' span, >= 1. Span 1 is "last value".
	Span float64
	// MaxMinutes bounds how many minutes are read; 0 means 300.
	MaxMinutes int
}

var _ Forecaster = EWMA{}

// Name implements Forecaster.
func (e EWMA) Name() string { return fmt.Sprintf("ewma:%g", e.Span) }

// Forecast implements Forecaster.
func (e EWMA) Forecast(history []float64) (float64, error) {
	if math.IsNaN(e.Span) || e.Span < 1 {
		return 0, fmt.Errorf("ewma: span %v must be >= 1", e.Span)
	}
	k := e.MaxMinutes
	if k <= 0 {
		k = 300
	}
	if err := checkTail(history, k*MinuteSeconds); err != nil {
		return 0, err
	}
	return ewmaLast(MinuteMaxima(history, k), e.Span), nil
}

// ewmaLast is pandas ewm(span).mean().iloc[-1] with adjust=True.
func ewmaLast(xs []float64, span float64) float64 {
	decay := 1 - 2/(span+1)
	num, den, w := 0.0, 0.0, 1.0
	for i := len(xs) - 1; i >= 0; i-- {
		num += w * xs[i]
		den += w
		w *= decay
		if w < 1e-30 {
			break
		}
	}
	return num / den
}
