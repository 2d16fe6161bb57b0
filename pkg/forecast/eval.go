package forecast

import (
	"fmt"
	"math"
	"slices"
)

// EvalResult is how well one forecaster predicted each minute's maximum of
// a test series. Percentages are 0..100.
type EvalResult struct {
	Name    string `json:"name"`
	Minutes int    `json:"minutes"` // minutes predicted
	// MAPE is the mean of |F−A|/A over minutes (A = actual max, F = forecast).
	MAPE float64 `json:"mapePct"`
	// P95APE is the 95th percentile of |F−A|/A.
	P95APE float64 `json:"p95AbsPctErr"`
	// UnderPct is the share of minutes with F < A.
	UnderPct float64 `json:"underPct"`
	// UnderAfterHeadroomPct is the share with F·(1+headroom) < A.
	UnderAfterHeadroomPct float64 `json:"underAfterHeadroomPct"`
	// OverPct is the mean of max(0, F−A)/A: capacity asked for beyond the
	// actual peak, averaged over all minutes.
	OverPct float64 `json:"overPct"`
	// OverAfterHeadroomPct is OverPct of F·(1+headroom).
	OverAfterHeadroomPct float64 `json:"overAfterHeadroomPct"`
	HeadroomPct          float64 `json:"headroomPct"`
}

// Evaluate predicts every minute i in [fromMinute, len(series)/60) of
// series from series[:60·i] and compares with max(series[60i : 60i+60]).
// Minutes are aligned to the start of series, as the paper windows the
// trace; callers drop zero-seconds first to match it. Forecasters built on
// per-minute maxima are fed precomputed maxima (same result, much faster).
func Evaluate(f Forecaster, series []float64, fromMinute int, headroomPct float64) (EvalResult, error) {
	if err := ValidateSeries(series); err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	maxima := MinuteMaximaFromStart(series)
	if fromMinute < 1 || fromMinute >= len(maxima) {
		return EvalResult{}, fmt.Errorf("evaluate: first test minute %d outside 1..%d", fromMinute, len(maxima)-1)
	}
	if !(headroomPct > -100) || math.IsInf(headroomPct, 0) {
		return EvalResult{}, fmt.Errorf("evaluate: headroom %v%%", headroomPct)
	}
	mf, fast := f.(minuteForecaster)
	res := EvalResult{Name: f.Name(), HeadroomPct: headroomPct}
	hr := 1 + headroomPct/100
	apes := make([]float64, 0, len(maxima)-fromMinute)
	var sumAPE, under, underH, over, overH float64
	for i := fromMinute; i < len(maxima); i++ {
		var (
			p   float64
			err error
		)
		if hw, ok := f.(*HoltWinters); ok {
			lo := max(i-hw.minutesNeeded(), 0)
			p, err = hw.forecastAt(maxima[lo:i], lo)
		} else if fast {
			p, err = mf.forecastMinutes(maxima[max(i-mf.minutesNeeded(), 0):i])
		} else {
			p, err = f.Forecast(series[:i*MinuteSeconds])
		}
		if err != nil {
			return EvalResult{}, fmt.Errorf("evaluate %s at minute %d: %w", f.Name(), i, err)
		}
		a := maxima[i]
		if a <= 0 {
			continue // no percentage error for an idle minute
		}
		ape := math.Abs(p-a) / a
		apes = append(apes, ape)
		sumAPE += ape
		if p < a {
			under++
		}
		if p*hr < a {
			underH++
		}
		over += max(p-a, 0) / a
		overH += max(p*hr-a, 0) / a
	}
	n := float64(len(apes))
	if n == 0 {
		return EvalResult{}, fmt.Errorf("evaluate: no minute with load after minute %d", fromMinute)
	}
	slices.Sort(apes)
	res.Minutes = len(apes)
	res.MAPE = 100 * sumAPE / n
	res.P95APE = 100 * apes[min(int(math.Ceil(0.95*n))-1, len(apes)-1)]
	res.UnderPct = 100 * under / n
	res.UnderAfterHeadroomPct = 100 * underH / n
	res.OverPct = 100 * over / n
	res.OverAfterHeadroomPct = 100 * overH / n
	return res, nil
}
