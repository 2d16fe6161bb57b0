// Package forecast predicts the next interval's peak request rate from
// per-second history: simple baselines (LastValue, WindowMax, EWMA),
// HoltWinters, a Linear feature model, a calibrated (conformal) Quantile
// forecaster and the paper's LSTM in pure Go (Paper wraps it as the paper's
// online forecaster), plus decorators (WithHeadroom, WithFloor, WithCap) in
// the style of VPA's estimators, a spec registry (New), online retraining
// (Online), versioned model files (LSTM.Save, LoadLSTM, LoadModel) with
// built-in models trained on the Twitter trace, and Evaluate for the
// paper's train/test protocol. docs/forecasting.md has the results.
//
// Conventions: history is per-second request counts, oldest first, ending
// at the decision time; a forecast is the maximum per-second count (RPS)
// expected over the next 60 seconds. Minutes are 60-second chunks aligned
// to the end of history (MinuteMaxima). Everything is pure: no I/O, no
// clocks, seeded randomness only; bad input is an error, never a panic.
package forecast
