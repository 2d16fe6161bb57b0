package forecast

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzForecast feeds arbitrary histories (any float64 bit patterns,
// including NaN, ±Inf and negatives) to every forecaster: none may panic,
// and a nil error must come with a finite, non-negative forecast.
func FuzzForecast(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 8*700))
	seed := make([]byte, 0, 8*1300)
	for i := range 1300 {
		seed = binary.LittleEndian.AppendUint64(seed, math.Float64bits(float64(50+i%37)))
	}
	f.Add(seed)
	f.Add(binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN())))
	var fs []Forecaster
	for _, spec := range []string{"last", "max:1m", "ewma", "holt-winters", "linear", "quantile:0.9", "lstm", "paper",
		"last,headroom=10,floor=1,cap=100"} {
		fc, err := New(spec)
		if err != nil {
			f.Fatal(err)
		}
		fs = append(fs, fc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := make([]float64, len(b)/8)
		for i := range h {
			h[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		for _, fc := range fs {
			v, err := fc.Forecast(h)
			if err == nil && (math.IsNaN(v) || math.IsInf(v, 0) || v < 0) {
				// Huge finite counts can overflow to Inf in a weighted sum;
				// that is only acceptable for inputs near MaxFloat64.
				big := false
				for _, x := range h {
					big = big || x > 1e300
				}
				if !big {
					t.Errorf("%s: forecast %v with nil error", fc.Name(), v)
				}
			}
		}
	})
}
