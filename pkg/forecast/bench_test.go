package forecast

import (
	"testing"
)

// benchHistory is one day of synthetic per-second load (a periodic level
// with a fixed pseudo-random pattern), the history a decider would pass
// after a day of running.
func benchHistory() []float64 {
	ms := periodic(1440, 11)
	return minutes(ms...)
}

// BenchmarkForecast measures one Forecast call per forecaster on a day of
// history (what every 30 s decision pays).
func BenchmarkForecast(b *testing.B) {
	h := benchHistory()
	for _, spec := range []string{"last", "max:10m", "ewma", "holt-winters", "linear", "quantile:0.95", "lstm", "paper"} {
		f, err := New(spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Forecast(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLSTMEpoch measures one training epoch of the paper's LSTM (25
// units, 10 minutes, batch 64) over 20,150 windows — the size of the
// Twitter train split — so 30 epochs ≈ 30 × this.
func BenchmarkLSTMEpoch(b *testing.B) {
	data := periodic(20160, 12)
	cfg := DefaultTrainConfig()
	cfg.Epochs = 1
	for _, workers := range []int{1, 2} {
		cfg.Workers = workers
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[workers], func(b *testing.B) {
			for b.Loop() {
				if _, err := TrainLSTM(data, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFitLinear measures fitting the linear forecaster on 14 days of
// per-second history (20,160 minutes).
func BenchmarkFitLinear(b *testing.B) {
	h := minutes(periodic(20160, 13)...)
	for b.Loop() {
		if _, err := FitLinear(h, LinearConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}
