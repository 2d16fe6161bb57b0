package forecast

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Linear predicts the next minute's maximum as a linear function of
// features of the last Minutes minutes of per-second history:
//
//	1, and for each of the last Minutes minutes: its max and its mean;
//	the 0.85, 0.92 and 0.97 quantiles of the last minute's seconds;
//	the mean of the last 10 seconds.
//
// Unlike the paper's LSTM it sees the per-minute means, which are far less
// noisy than the maxima, and the shape of the last minute. It is fitted
// (FitLinear) by iteratively reweighted least squares to minimise the mean
// absolute percentage error (or, with Tau > 0, the relative pinball loss of
// the Tau-quantile). It is not in the paper; it is here because it beats
// both last value and the LSTM on the Twitter test split (docs/forecasting.md).
type Linear struct {
	Minutes int       // minutes of features, >= 1
	Tau     float64   // 0: fitted for MAPE; in (0,1): fitted for that quantile
	Weights []float64 // 2 + 2·Minutes + 4 coefficients (see features)
	Trained TrainInfo
}

var _ Forecaster = (*Linear)(nil)

// Name implements Forecaster.
func (l *Linear) Name() string {
	if l != nil && l.Tau > 0 {
		return fmt.Sprintf("linear(q%g)", l.Tau)
	}
	return "linear"
}

func linearFeatures(minutes int) int { return 1 + 2*minutes + 4 }

// Forecast implements Forecaster; it needs Minutes whole minutes of history.
func (l *Linear) Forecast(history []float64) (float64, error) {
	if l == nil || len(l.Weights) == 0 {
		return 0, ErrNotTrained
	}
	n := l.Minutes * MinuteSeconds
	if err := checkTail(history, n); err != nil {
		return 0, err
	}
	if err := needSeconds(history, n); err != nil {
		return 0, fmt.Errorf("linear: %w", err)
	}
	if len(l.Weights) != linearFeatures(l.Minutes) {
		return 0, fmt.Errorf("linear: %d weights, want %d for %d minutes", len(l.Weights), linearFeatures(l.Minutes), l.Minutes)
	}
	f := make([]float64, len(l.Weights))
	fillFeatures(f, history, l.Minutes, make([]float64, MinuteSeconds))
	return max(dot(f, l.Weights), 0), nil
}

// fillFeatures writes the features of the history's last k minutes into f;
// pre: len(history) >= 60k, len(f) = linearFeatures(k), len(buf) = 60.
func fillFeatures(f, history []float64, k int, buf []float64) {
	f[0] = 1
	end := len(history)
	for j := range k {
		c := history[end-(k-j)*MinuteSeconds : end-(k-j-1)*MinuteSeconds]
		mx, sum := c[0], 0.0
		for _, v := range c {
			mx = max(mx, v)
			sum += v
		}
		f[1+2*j] = mx
		f[2+2*j] = sum / MinuteSeconds
	}
	copy(buf, history[end-MinuteSeconds:])
	slices.Sort(buf)
	i := 1 + 2*k
	f[i] = orderStat(buf, 0.85)
	f[i+1] = orderStat(buf, 0.92)
	f[i+2] = orderStat(buf, 0.97)
	sum := 0.0
	for _, v := range history[end-10:] {
		sum += v
	}
	f[i+3] = sum / 10
}

// orderStat is the q-quantile of sorted xs, interpolated linearly.
func orderStat(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	lo := int(pos)
	hi := min(lo+1, len(xs)-1)
	return xs[lo] + (xs[hi]-xs[lo])*(pos-float64(lo))
}

// LinearConfig is how FitLinear fits.
type LinearConfig struct {
	Minutes    int     // feature minutes; default 3
	Tau        float64 // 0 for MAPE, else the quantile in (0,1)
	Iterations int     // IRLS iterations; default 20
	Data       string  // note stored with the model
}

// FitLinear fits a Linear forecaster on series (per-second counts, oldest
// first; minutes aligned to its start): one sample per complete minute i >=
// Minutes, features of series[:60i], target max(series[60i:60i+60]). Minutes
// whose max is 0 are skipped (no percentage error exists for them).
func FitLinear(series []float64, cfg LinearConfig) (*Linear, error) {
	if cfg.Minutes == 0 {
		cfg.Minutes = 3
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 20
	}
	var errs []error
	if cfg.Minutes < 1 || cfg.Minutes > 60 {
		errs = append(errs, fmt.Errorf("minutes %d: want 1..60", cfg.Minutes))
	}
	if !(cfg.Tau >= 0 && cfg.Tau < 1) {
		errs = append(errs, fmt.Errorf("tau %v: want 0 (MAPE) or (0,1)", cfg.Tau))
	}
	if cfg.Iterations < 1 || cfg.Iterations > 1000 {
		errs = append(errs, fmt.Errorf("iterations %d: want 1..1000", cfg.Iterations))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("fit linear: %w", err)
	}
	if err := ValidateSeries(series); err != nil {
		return nil, fmt.Errorf("fit linear: %w", err)
	}
	k := cfg.Minutes
	nf := linearFeatures(k)
	maxima := MinuteMaximaFromStart(series)
	var X, Y []float64
	buf := make([]float64, MinuteSeconds)
	f := make([]float64, nf)
	for i := k; i < len(maxima); i++ {
		if maxima[i] <= 0 {
			continue
		}
		fillFeatures(f, series[:i*MinuteSeconds], k, buf)
		X = append(X, f...)
		Y = append(Y, maxima[i])
	}
	if len(Y) < 4*nf {
		return nil, fmt.Errorf("fit linear: %w: %d usable minutes, need >= %d", ErrShortHistory, len(Y), 4*nf)
	}
	n := len(Y)
	wt := make([]float64, n)
	for r := range wt {
		wt[r] = 1 / (Y[r] * Y[r]) // start from relative least squares
	}
	// A tiny ridge penalty (nf extra rows √λ·e_c, intercept excluded) keeps
	// the solve well-posed when features are collinear, e.g. a flat load
	// where max = mean = every quantile; λ = 1e-9 × trace(XᵀWX)/nf changes
	// a well-conditioned fit by far less than the noise.
	Xw := make([]float64, (n+nf)*nf)
	Yw := make([]float64, n+nf)
	var w mat.VecDense
	for range cfg.Iterations {
		var tr float64
		for r := range n {
			sw := math.Sqrt(wt[r])
			for c := range nf {
				v := X[r*nf+c] * sw
				Xw[r*nf+c] = v
				tr += v * v
			}
			Yw[r] = Y[r] * sw
		}
		ridge := math.Sqrt(1e-9 * tr / float64(nf))
		for c := 1; c < nf; c++ {
			Xw[(n+c)*nf+c] = ridge
		}
		if err := w.SolveVec(mat.NewDense(n+nf, nf, Xw), mat.NewVecDense(n+nf, Yw)); err != nil {
			return nil, fmt.Errorf("fit linear: least squares: %w", err)
		}
		// Reweight so that the squared loss approximates Σ ρ(y−p)/y, with ρ
		// the absolute value (MAPE) or the pinball loss (quantile).
		for r := range n {
			p := dot(X[r*nf:(r+1)*nf], w.RawVector().Data)
			res := Y[r] - p
			tw := 0.5
			if cfg.Tau > 0 {
				tw = 1 - cfg.Tau
				if res > 0 {
					tw = cfg.Tau
				}
			}
			wt[r] = tw / (Y[r] * max(math.Abs(res), 0.5))
		}
	}
	l := &Linear{Minutes: k, Tau: cfg.Tau, Weights: slices.Clone(w.RawVector().Data),
		Trained: TrainInfo{Data: cfg.Data, Samples: n, Epochs: cfg.Iterations}}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("fit linear: %w", err)
	}
	return l, nil
}

// Validate checks the shape and that all weights are finite.
func (l *Linear) Validate() error {
	if l.Minutes < 1 || l.Minutes > 60 {
		return fmt.Errorf("linear: minutes %d, want 1..60", l.Minutes)
	}
	if !(l.Tau >= 0 && l.Tau < 1) {
		return fmt.Errorf("linear: tau %v, want [0,1)", l.Tau)
	}
	if len(l.Weights) != linearFeatures(l.Minutes) {
		return fmt.Errorf("linear: %d weights, want %d for %d minutes", len(l.Weights), linearFeatures(l.Minutes), l.Minutes)
	}
	for i, v := range l.Weights {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("linear: weight %d = %v is not finite", i, v)
		}
	}
	return nil
}
