package loop

import (
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/forecast"
)

// TimedForecaster wraps a Forecaster and adds up how long its calls take on
// an injected clock. Deciders are pure and cannot time themselves; wrapping
// the forecaster they are built with lets the loop report the forecast and
// the solve phase of a decision separately (solve = decide − forecast).
type TimedForecaster struct {
	forecast.Forecaster
	clock clock.PassiveClock

	mu    sync.Mutex
	spent time.Duration
}

var (
	_ forecast.Forecaster = (*TimedForecaster)(nil)
	_ PhaseTimer          = (*TimedForecaster)(nil)
)

// NewTimedForecaster wraps f; c nil means the real clock.
func NewTimedForecaster(f forecast.Forecaster, c clock.PassiveClock) *TimedForecaster {
	if c == nil {
		c = clock.RealClock{}
	}
	return &TimedForecaster{Forecaster: f, clock: c}
}

// Forecast calls the wrapped forecaster and records the time it took.
func (t *TimedForecaster) Forecast(history []float64) (float64, error) {
	start := t.clock.Now()
	v, err := t.Forecaster.Forecast(history)
	d := t.clock.Since(start)
	t.mu.Lock()
	t.spent += d
	t.mu.Unlock()
	return v, err
}

// TakeDuration returns the time spent forecasting since the last call and
// resets it.
func (t *TimedForecaster) TakeDuration() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.spent
	t.spent = 0
	return d
}
