package forecast

import (
	"fmt"
	"math"
	"time"
)

// The decorators pass ForecastAt through, so a decorated Online still sees
// the decision time.
var (
	_ Clocked = headroom{}
	_ Clocked = floor{}
	_ Clocked = capped{}
)

// WithHeadroom returns f's forecast × (1 + pct/100). The paper adds 10%
// (pct = 10) to every LSTM forecast. pct must be finite and > -100; an
// invalid pct makes every Forecast call fail rather than panic here.
func WithHeadroom(f Forecaster, pct float64) Forecaster { return headroom{f, pct} }

type headroom struct {
	f   Forecaster
	pct float64
}

func (h headroom) Name() string { return fmt.Sprintf("%s,headroom=%g", h.f.Name(), h.pct) }

func (h headroom) Forecast(history []float64) (float64, error) {
	return h.apply(h.f.Forecast(history))
}

func (h headroom) ForecastAt(now time.Time, history []float64) (float64, error) {
	return h.apply(ForecastAt(h.f, now, history))
}

func (h headroom) apply(v float64, err error) (float64, error) {
	if math.IsNaN(h.pct) || math.IsInf(h.pct, 0) || h.pct <= -100 {
		return 0, fmt.Errorf("headroom %v%% must be finite and > -100", h.pct)
	}
	if err != nil {
		return 0, err
	}
	return v * (1 + h.pct/100), nil
}

// WithFloor returns max(f's forecast, min) (RPS), e.g. to keep one replica's
// worth of capacity when the service is idle.
func WithFloor(f Forecaster, min float64) Forecaster { return floor{f, min} }

type floor struct {
	f   Forecaster
	min float64
}

func (d floor) Name() string { return fmt.Sprintf("%s,floor=%g", d.f.Name(), d.min) }

func (d floor) Forecast(history []float64) (float64, error) {
	return d.apply(d.f.Forecast(history))
}

func (d floor) ForecastAt(now time.Time, history []float64) (float64, error) {
	return d.apply(ForecastAt(d.f, now, history))
}

func (d floor) apply(v float64, err error) (float64, error) {
	if math.IsNaN(d.min) {
		return 0, fmt.Errorf("floor is NaN")
	}
	if err != nil {
		return 0, err
	}
	return math.Max(v, d.min), nil
}

// WithCap returns min(f's forecast, max) (RPS), e.g. the most the cluster
// could ever serve, so a wild forecast cannot ask for the impossible.
func WithCap(f Forecaster, max float64) Forecaster { return capped{f, max} }

type capped struct {
	f   Forecaster
	max float64
}

func (d capped) Name() string { return fmt.Sprintf("%s,cap=%g", d.f.Name(), d.max) }

func (d capped) Forecast(history []float64) (float64, error) {
	return d.apply(d.f.Forecast(history))
}

func (d capped) ForecastAt(now time.Time, history []float64) (float64, error) {
	return d.apply(ForecastAt(d.f, now, history))
}

func (d capped) apply(v float64, err error) (float64, error) {
	if math.IsNaN(d.max) {
		return 0, fmt.Errorf("cap is NaN")
	}
	if err != nil {
		return 0, err
	}
	return math.Min(v, d.max), nil
}
