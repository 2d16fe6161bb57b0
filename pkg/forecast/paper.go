package forecast

import (
	"errors"
	"fmt"
)

// PaperHeadroomPct is the paper's fixed safety margin on every forecast.
const PaperHeadroomPct = 10

// PaperLookbackMinutes is how many per-minute maxima the paper's LSTM reads.
const PaperLookbackMinutes = 10

// Paper is the paper's online forecaster (adapter/main.py): with fewer than
// 10 minutes of history, pandas ewm(span=10).mean() over the per-minute
// maxima; otherwise the LSTM on the last 10 per-minute maxima; either way
// × 1.10. When Model is nil (no LSTM loaded) it uses the EWMA at every
// step, still × 1.10 — so a missing model degrades accuracy, never
// availability. The paper also truncates the result to an integer; we keep
// the fraction and leave rounding to the solver.
type Paper struct {
	// Model is the LSTM (or any forecaster on 10 minutes); nil → EWMA only.
	Model Forecaster
}

var _ Forecaster = Paper{}

// Name implements Forecaster.
func (p Paper) Name() string {
	if p.Model == nil {
		return "paper(ewma-only)"
	}
	return "paper"
}

// Forecast implements Forecaster.
func (p Paper) Forecast(history []float64) (float64, error) {
	if err := checkTail(history, 300*MinuteSeconds); err != nil {
		return 0, err
	}
	var (
		v   float64
		err error
	)
	if p.Model != nil && len(history) >= PaperLookbackMinutes*MinuteSeconds {
		v, err = p.Model.Forecast(history)
		if err != nil && !errors.Is(err, ErrNotTrained) {
			return 0, fmt.Errorf("paper: %w", err)
		}
		if err == nil {
			return max(v, 0) * (1 + PaperHeadroomPct/100.0), nil
		}
	}
	v, err = EWMA{Span: 10}.Forecast(history)
	if err != nil {
		return 0, fmt.Errorf("paper: %w", err)
	}
	return v * (1 + PaperHeadroomPct/100.0), nil
}
