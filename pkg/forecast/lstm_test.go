package forecast

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLSTMGradient compares back-propagation with central differences on a
// small random model. A wrong sign or a missed term in BPTT fails it.
func TestLSTMGradient(t *testing.T) {
	m := newLSTM(4, 5, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range m.B {
		m.B[i] += 0.3 * rng.NormFloat64() // move pre-activations off zero
	}
	m.Scaler = Scaler{Min: 0, Max: 1}
	x := []float64{0.2, 0.9, 0.5, 0.7, 0.3}
	target := 0.4
	var w lstmWork
	w.init(m.Units, m.Lookback)
	g := newGrads(m.Units)
	m.backward(x, target, 1, &w, g)
	loss := func() float64 {
		y := m.forward(x, &w)
		return (y - target) * (y - target)
	}
	check := func(name string, ws, gs []float64) {
		for i := range ws {
			old := ws[i]
			const h = 1e-6
			ws[i] = old + h
			lp := loss()
			ws[i] = old - h
			lm := loss()
			ws[i] = old
			num := (lp - lm) / (2 * h)
			if math.Abs(num-gs[i]) > 1e-6+1e-4*math.Abs(num) {
				t.Errorf("%s[%d]: backprop %.8g, numeric %.8g", name, i, gs[i], num)
			}
		}
	}
	check("Wx", m.Wx, g.wx)
	check("Wh", m.Wh, g.wh)
	check("B", m.B, g.b)
	check("Wd", m.Wd, g.wd)
	bd := []float64{m.Bd}
	old := m.Bd
	m.Bd = old + 1e-6
	lp := loss()
	m.Bd = old - 1e-6
	lm := loss()
	m.Bd = old
	if num := (lp - lm) / 2e-6; math.Abs(num-g.bd) > 1e-6 {
		t.Errorf("Bd: backprop %v, numeric %v", g.bd, num)
	}
	_ = bd
}

// periodic returns per-minute maxima of a noisy sine with a 12-minute
// period around 100 RPS.
func periodic(n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 9))
	out := make([]float64, n)
	for i := range out {
		out[i] = 100 + 40*math.Sin(2*math.Pi*float64(i)/12) + 2*rng.NormFloat64()
	}
	return out
}

// TestLSTMLearnsPeriodic: on a 12-minute sine the last value is off by up
// to ±20 RPS each minute; a trained LSTM must be clearly better. This test
// fails if training does not learn.
func TestLSTMLearnsPeriodic(t *testing.T) {
	train := periodic(1500, 1)
	cfg := DefaultTrainConfig()
	cfg.Epochs = 40
	cfg.LearningRate = 5e-3
	m, err := TrainLSTM(train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	test := periodic(400, 2)
	var lstmAPE, lastAPE float64
	n := 0
	for i := m.Lookback; i < len(test); i++ {
		y, err := m.forecastMinutes(test[:i])
		if err != nil {
			t.Fatal(err)
		}
		lstmAPE += math.Abs(y-test[i]) / test[i]
		lastAPE += math.Abs(test[i-1]-test[i]) / test[i]
		n++
	}
	lstmAPE, lastAPE = 100*lstmAPE/float64(n), 100*lastAPE/float64(n)
	t.Logf("MAPE: lstm %.2f%%, last value %.2f%%", lstmAPE, lastAPE)
	if lstmAPE > lastAPE/2 {
		t.Errorf("LSTM MAPE %.2f%% is not under half of last value's %.2f%%", lstmAPE, lastAPE)
	}
}

func TestLSTMDeterministic(t *testing.T) {
	data := periodic(300, 5)
	cfg := DefaultTrainConfig()
	cfg.Epochs = 3
	var models []*LSTM
	for _, workers := range []int{1, 2, 4, 1} {
		cfg.Workers = workers
		m, err := TrainLSTM(data, cfg)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	for i, m := range models[1:] {
		if !slices.Equal(m.Wh, models[0].Wh) || !slices.Equal(m.Wx, models[0].Wx) || m.Bd != models[0].Bd {
			t.Errorf("run %d differs from run 0 (same seed)", i+1)
		}
	}
	cfg.Seed = 8
	other, err := TrainLSTM(data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(other.Wh, models[0].Wh) {
		t.Error("a different seed gave identical weights")
	}
}

// TestLSTMLiftsLowWindows: a window below the training range is forecast
// at the range's bottom and scaled back (scale-equivariant there), one
// within the range exactly as the network computes it, and a steady low
// load gets a forecast near its level instead of the offset the network
// learned at the trace's levels (the built-in model said 15.3 for a
// steady 9 RPS before the lift).
func TestLSTMLiftsLowWindows(t *testing.T) {
	m, err := DefaultLSTM()
	if err != nil {
		t.Fatal(err)
	}
	steady := func(v float64) []float64 { return slices.Repeat([]float64{v}, m.Lookback) }
	for _, lv := range []float64{0.5, 1, 9, 30} {
		got, err := m.forecastMinutes(steady(lv))
		if err != nil {
			t.Fatal(err)
		}
		if got < 0.8*lv || got > 1.25*lv {
			t.Errorf("steady %v RPS: forecast %v, want within [0.8, 1.25] × the level", lv, got)
		}
	}
	// A varied window with a mean below Scaler.Min (49 for the built-in
	// model): forecasts of its scaled copies scale with it.
	low := []float64{12, 15, 11, 20, 18, 9, 14, 22, 16, 13}
	base, err := m.forecastMinutes(low)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []float64{0.01, 0.3, 2} {
		w := make([]float64, len(low))
		for i, v := range low {
			w[i] = c * v
		}
		got, err := m.forecastMinutes(w)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-c*base) > 1e-9*c*base {
			t.Errorf("window × %v: forecast %v, want %v (× %v of the window's %v)", c, got, c*base, c, base)
		}
	}
	// Within the range: the network's own output, unchanged.
	in := []float64{120, 150, 90, 200, 180, 130, 160, 210, 170, 140}
	x := make([]float64, len(in))
	for i, v := range in {
		x[i] = m.Scaler.scale(v)
	}
	var ws lstmWork
	ws.init(m.Units, m.Lookback)
	want := max(m.Scaler.unscale(m.forward(x, &ws)), 0)
	if got, err := m.forecastMinutes(in); err != nil || got != want {
		t.Errorf("in-range window: forecast %v (%v), want the network's %v", got, err, want)
	}
	if got, err := m.forecastMinutes(steady(0)); err != nil || got != 0 {
		t.Errorf("idle window: forecast %v (%v), want 0", got, err)
	}
}
