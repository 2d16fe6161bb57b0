package forecast

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFitLinearRecoversScale: each minute's seconds are Poisson-like noise
// around a level that follows a slow sine; the next minute's max is about
// level + 3√level. A fitted Linear must beat last value clearly, because
// it can use the minute means, which are far less noisy than the maxima.
func TestFitLinearBeatsLastValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	mk := func(mins int) []float64 {
		s := make([]float64, mins*60)
		for i := range s {
			level := 80 + 30*math.Sin(2*math.Pi*float64(i)/(60*90))
			s[i] = math.Max(0, math.Round(level+math.Sqrt(level)*rng.NormFloat64()))
		}
		return s
	}
	train, test := mk(3000), mk(600)
	l, err := FitLinear(train, LinearConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lin, err := Evaluate(l, test, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := Evaluate(LastValue{}, test, 10, 10)
	t.Logf("MAPE linear %.2f%%, last %.2f%%", lin.MAPE, last.MAPE)
	if lin.MAPE > 0.8*last.MAPE {
		t.Errorf("linear MAPE %.2f%% not 20%% better than last value's %.2f%%", lin.MAPE, last.MAPE)
	}
	// The quantile fit (tau 0.9) must under-predict about 10% of minutes.
	q, err := FitLinear(train, LinearConfig{Tau: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	qr, _ := Evaluate(q, test, 10, 0)
	if qr.UnderPct < 5 || qr.UnderPct > 16 {
		t.Errorf("tau 0.9 under-predicts %.1f%% of minutes, want about 10%%", qr.UnderPct)
	}
}

func TestFitLinearErrors(t *testing.T) {
	if _, err := FitLinear(make([]float64, 60*5), LinearConfig{}); !errors.Is(err, ErrShortHistory) {
		t.Errorf("5 idle minutes: %v", err)
	}
	if _, err := FitLinear([]float64{1, math.NaN()}, LinearConfig{}); !errors.Is(err, ErrBadValue) {
		t.Errorf("NaN: %v", err)
	}
	if _, err := FitLinear(nil, LinearConfig{Minutes: 99, Tau: 2}); err == nil {
		t.Error("bad config: want an error")
	}
	if _, err := (&Linear{Minutes: 3, Weights: make([]float64, 11)}).Forecast(make([]float64, 100)); !errors.Is(err, ErrShortHistory) {
		t.Errorf("100 s for 3 minutes: %v", err)
	}
	if _, err := (*Linear)(nil).Forecast(minutes(1)); !errors.Is(err, ErrNotTrained) {
		t.Errorf("nil linear: %v", err)
	}
}
