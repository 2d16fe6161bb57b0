package forecast

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Forecaster predicts the peak request rate of the next interval.
//
// history holds per-second request counts, oldest first, ending at the
// moment of the decision. The result is the expected maximum per-second
// rate (RPS) over the next interval. Implementations are pure and
// deterministic; they return an error (never panic) for unusable input such
// as an empty history, NaN or negative counts.
type Forecaster interface {
	Name() string
	Forecast(history []float64) (float64, error)
}

// Clocked is implemented by forecasters that keep their own record of the
// load (Online) and so must know when a sliding window of history ends.
// Callers that pass only a window of history (the live loop passes the last
// 600 s) should call the package function ForecastAt.
type Clocked interface {
	// ForecastAt is Forecast for a window of per-second counts whose last
	// entry is the second ending at now. now must not go backwards.
	ForecastAt(now time.Time, window []float64) (float64, error)
}

// ForecastAt forecasts with f.ForecastAt when f is Clocked (decorators pass
// it through), else with f.Forecast. Deciders should call this rather than
// f.Forecast so "online:..." specs work with a sliding history window.
func ForecastAt(f Forecaster, now time.Time, history []float64) (float64, error) {
	if c, ok := f.(Clocked); ok {
		return c.ForecastAt(now, history)
	}
	return f.Forecast(history)
}

// MinuteSeconds is the length of the forecast interval in seconds: every
// forecaster predicts the maximum per-second count of the next 60 seconds,
// as the paper's LSTM does (one minute's max RPS).
const MinuteSeconds = 60

// Sentinel errors. Callers branch on them with errors.Is; the returned errors
// wrap them with the details (index, value, how much history was needed).
var (
	// ErrEmptyHistory: no samples at all.
	ErrEmptyHistory = errors.New("empty history")
	// ErrShortHistory: fewer samples than the forecaster needs.
	ErrShortHistory = errors.New("history too short")
	// ErrBadValue: a NaN, infinite or negative count.
	ErrBadValue = errors.New("bad history value")
	// ErrNotTrained: a learned forecaster was used before it has weights.
	ErrNotTrained = errors.New("forecaster not trained")
)

// checkTail validates the last n samples of history (all of it if shorter).
// Only the part a forecaster reads is checked, so a forecast over weeks of
// history costs O(what is read), not O(len(history)).
func checkTail(history []float64, n int) error {
	if len(history) == 0 {
		return ErrEmptyHistory
	}
	start := max(len(history)-n, 0)
	for i := start; i < len(history); i++ {
		v := history[i]
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("%w: history[%d] = %v (counts must be finite and >= 0)", ErrBadValue, i, v)
		}
	}
	return nil
}

// needSeconds returns ErrShortHistory unless history has at least n samples.
func needSeconds(history []float64, n int) error {
	if len(history) == 0 {
		return ErrEmptyHistory
	}
	if len(history) < n {
		return fmt.Errorf("%w: need %d s, have %d s", ErrShortHistory, n, len(history))
	}
	return nil
}

// MinuteMaxima returns the maxima of the last k minutes of history, oldest
// first. Minutes are 60-second chunks aligned to the END of history (the
// last chunk ends at the decision time); a leading partial chunk (when
// len(history) is not a multiple of 60) counts as one minute. So a non-empty
// history always yields at least one value, and fewer than k values when
// history is shorter than k minutes. k <= 0 means all minutes.
//
// Example: len(history) = 130, k = 5 → 3 values: max(h[0:10]),
// max(h[10:70]), max(h[70:130]).
func MinuteMaxima(history []float64, k int) []float64 {
	n := len(history)
	if n == 0 {
		return nil
	}
	total := (n + MinuteSeconds - 1) / MinuteSeconds
	if k <= 0 || k > total {
		k = total
	}
	out := make([]float64, k)
	end := n
	for j := k - 1; j >= 0; j-- {
		start := max(end-MinuteSeconds, 0)
		m := history[start]
		for _, v := range history[start+1 : end] {
			if v > m {
				m = v
			}
		}
		out[j] = m
		end = start
	}
	return out
}

// MinuteMaximaFromStart splits series into 60-second chunks aligned to its
// START (the paper's windowing of the trace) and returns each complete
// chunk's maximum; a trailing partial chunk is dropped.
func MinuteMaximaFromStart(series []float64) []float64 {
	n := len(series) / MinuteSeconds
	out := make([]float64, n)
	for i := range n {
		chunk := series[i*MinuteSeconds : (i+1)*MinuteSeconds]
		m := chunk[0]
		for _, v := range chunk[1:] {
			if v > m {
				m = v
			}
		}
		out[i] = m
	}
	return out
}

// DropZeros returns series without its zero entries, as the paper does
// before windowing the Twitter trace (its zero-seconds are collection gaps,
// not idle seconds).
func DropZeros(series []float64) []float64 {
	out := make([]float64, 0, len(series))
	for _, v := range series {
		if v != 0 {
			out = append(out, v)
		}
	}
	return out
}

// ValidateSeries checks every value of series (finite, >= 0) and names the
// first bad index. Use it once at the edge for whole traces.
func ValidateSeries(series []float64) error {
	return checkTail(series, len(series))
}
