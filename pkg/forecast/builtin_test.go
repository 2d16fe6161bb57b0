package forecast

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/infadapter/infadapter/pkg/trace"
)

func TestBuiltinModels(t *testing.T) {
	m, err := DefaultLSTM()
	if err != nil {
		t.Fatalf("built-in LSTM: %v", err)
	}
	if m.Units != 25 || m.Lookback != 10 || m.Trained.Epochs != 30 || m.Trained.Seed != 7 {
		t.Errorf("built-in LSTM is not the paper's configuration: %d units, %d minutes, %+v", m.Units, m.Lookback, m.Trained)
	}
	l, err := DefaultLinear()
	if err != nil {
		t.Fatalf("built-in linear: %v", err)
	}
	// A steady load whose minute maxima are 80 and means 60: every sane
	// next-minute-peak forecast lies between the mean and ~1.3 × the max.
	h := make([]float64, 20*60)
	for i := range h {
		h[i] = 60
		if i%60 == 30 {
			h[i] = 80
		}
	}
	for _, f := range []Forecaster{m, l, Paper{Model: m}} {
		v, err := f.Forecast(h)
		if err != nil {
			t.Fatalf("%s: %v", f.Name(), err)
		}
		if v < 60 || v > 105 {
			t.Errorf("%s forecast %v for a steady 60 RPS (peaks 80) load", f.Name(), v)
		}
	}
}

func TestLSTMTrainerWarmStart(t *testing.T) {
	h := minutes(periodic(300, 3)...)
	cfg := DefaultTrainConfig()
	cfg.Epochs, cfg.Units = 2, 6
	tr := LSTMTrainer{Config: cfg, WarmStart: true, WarmEpochs: 1}
	first, err := tr.Train(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(first.(*LSTM).Wh)
	second, err := tr.Train(h, first)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, first.(*LSTM).Wh) {
		t.Error("warm start modified the previous model")
	}
	if slices.Equal(before, second.(*LSTM).Wh) {
		t.Error("warm start did not train")
	}
	if second.(*LSTM).Scaler != first.(*LSTM).Scaler {
		t.Error("warm start changed the scaler")
	}
}

// twitterSeries reads the Twitter trace from ../shared/data beside the
// repository, with zero-seconds dropped; it skips (fails in CI) if absent.
func twitterSeries(t testing.TB) []float64 {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "data", "twitter-trace", "workload.tbz2")
	f, err := os.Open(p)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Twitter trace missing in CI: %v", err)
		}
		t.Skipf("Twitter trace not found at %s: %v", p, err)
	}
	defer f.Close()
	tr, err := trace.Read(f, p)
	if err != nil {
		t.Fatal(err)
	}
	return DropZeros(tr.RPS)
}

// TestTwitterEvaluation checks Evaluate against paper.md §1.6's independent
// figures for last value, and guards the built-in models' test-split
// accuracy (docs/forecasting.md).
func TestTwitterEvaluation(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the 22-day trace")
	}
	s := twitterSeries(t)
	from := 14 * 1440
	r, err := Evaluate(LastValue{}, s, from, 10)
	if err != nil {
		t.Fatal(err)
	}
	round1 := func(x float64) float64 { return math.Round(10*x) / 10 }
	if r.Minutes != 10859 || round1(r.MAPE) != 9.3 || round1(r.P95APE) != 27.4 || round1(r.UnderPct) != 45.8 || round1(r.UnderAfterHeadroomPct) != 15.1 {
		t.Errorf("last value on the test split: %+v; paper.md: 10859 minutes, MAPE 9.3, P95 27.4, under 45.8, under+10%% 15.1", r)
	}
	l, _ := DefaultLinear()
	lr, err := Evaluate(l, s, from, 10)
	if err != nil {
		t.Fatal(err)
	}
	if lr.MAPE >= 7 || lr.UnderAfterHeadroomPct >= r.UnderAfterHeadroomPct {
		t.Errorf("built-in linear: MAPE %.2f%% (want < 7), under after +10%% %.1f%% (want < last's %.1f%%)",
			lr.MAPE, lr.UnderAfterHeadroomPct, r.UnderAfterHeadroomPct)
	}
	m, _ := DefaultLSTM()
	mr, err := Evaluate(m, s, from, 10)
	if err != nil {
		t.Fatal(err)
	}
	if mr.MAPE >= r.MAPE {
		t.Errorf("built-in LSTM MAPE %.2f%% does not beat last value's %.2f%%", mr.MAPE, r.MAPE)
	}
}
