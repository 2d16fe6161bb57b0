// Package forecast predicts the next interval's peak request rate from
// per-second history: simple baselines, Holt-Winters, a quantile forecaster
// and the paper's LSTM in pure Go, plus decorators (headroom, floor, cap).
// Pure and deterministic given a seed.
package forecast
