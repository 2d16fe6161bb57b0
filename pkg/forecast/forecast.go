package forecast

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
