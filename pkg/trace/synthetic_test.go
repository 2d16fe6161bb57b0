package trace

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSyntheticShapes(t *testing.T) {
	for _, s := range Shapes {
		t.Run(string(s), func(t *testing.T) {
			sp := DefaultSynthetic(s)
			a, err := sp.Generate()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := sp.Generate()
			if !slices.Equal(a.RPS, b.RPS) {
				t.Fatal("same seed, different trace")
			}
			sp.Seed++
			c, _ := sp.Generate()
			if slices.Equal(a.RPS, c.RPS) {
				t.Fatal("different seed, same trace")
			}
			st := a.Stats()
			if st.Seconds != 1260 || st.Min < 0 {
				t.Fatalf("stats %+v", st)
			}
			// Every shape spends time near base and reaches near peak
			// (noise 5%: allow 20% either way).
			if st.Max < 0.8*sp.Peak || st.Max > 1.2*sp.Peak || st.Min > 1.2*sp.Base {
				t.Fatalf("stats %+v, want range ≈ [%v, %v]", st, sp.Base, sp.Peak)
			}
			// The spec string round-trips.
			back, err := ParseSynthetic(a.Name)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := back.Generate()
			if !slices.Equal(a.RPS, d.RPS) {
				t.Fatal("spec string does not round-trip")
			}
		})
	}
}

func TestStepsExact(t *testing.T) {
	tr, err := Synthetic{Shape: ShapeSteps, Seconds: 9, Base: 10, Peak: 30, Period: 1}.Generate()
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{10, 10, 10, 30, 30, 30, 10, 10, 10}
	if !slices.Equal(tr.RPS, want) {
		t.Fatalf("got %v, want %v", tr.RPS, want)
	}
}

func TestParseSyntheticErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"sawtooth":                    "unknown synthetic shape",
		"steps:seconds=x":             "not a number",
		"steps:foo=1":                 "unknown synthetic option",
		"steps:base=100,peak=10":      "peak must be",
		"steps:seconds=0,noise=2":     "seconds must be",
		"diurnal:period=0":            "period must be",
		"bursts:seconds=10,noise=1.5": "noise must be",
		"steps:seconds":               "key=value",
	} {
		_, err := ParseSynthetic(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSynthetic(%q) err = %v, want %q", spec, err, want)
		}
	}
	if _, err := ParseSynthetic("diurnal:seconds=3600,base=20,peak=120,period=900,noise=0.1,seed=7"); err != nil {
		t.Fatal(err)
	}
}

func TestArrivals(t *testing.T) {
	rps := []float64{100, 0, 0, 250.4, 10}
	for _, mode := range []ArrivalMode{ArrivalPoisson, ArrivalExactUniform, ArrivalEven} {
		t.Run(string(mode), func(t *testing.T) {
			counts := make([]int, len(rps))
			total := 0
			// Average over seeds to check the rate for the Poisson mode.
			const seeds = 200
			for seed := range uint64(seeds) {
				a := NewArrivals(rps, mode, seed)
				prev := -1.0
				for {
					x, ok := a.Next()
					if !ok {
						break
					}
					if x < prev || x < 0 || x >= float64(len(rps)) {
						t.Fatalf("arrival %v after %v out of order/range", x, prev)
					}
					prev = x
					counts[int(x)]++
					total++
				}
			}
			for i, r := range rps {
				mean := float64(counts[i]) / seeds
				want := r
				if mode != ArrivalPoisson {
					want = math.Round(r)
				}
				// Poisson: σ of the mean over 200 seeds = sqrt(r/200) ≤ 1.12.
				if math.Abs(mean-want) > 4*math.Sqrt(want/seeds)+1e-9 {
					t.Errorf("second %d: mean count %.2f, want %.2f", i, mean, want)
				}
			}
		})
	}
	// Same seed → same arrivals.
	a, b := NewArrivals(rps, ArrivalPoisson, 3), NewArrivals(rps, ArrivalPoisson, 3)
	for {
		x, ok := a.Next()
		y, ok2 := b.Next()
		if x != y || ok != ok2 {
			t.Fatal("same seed, different arrivals")
		}
		if !ok {
			break
		}
	}
}

func BenchmarkArrivalsPoisson(b *testing.B) {
	rps := make([]float64, 3600)
	for i := range rps {
		rps[i] = 100
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		a := NewArrivals(rps, ArrivalPoisson, 1)
		for {
			if _, ok := a.Next(); !ok {
				break
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "arrivals/s")
}

func FuzzParseSynthetic(f *testing.F) {
	for _, s := range []string{"steps", "diurnal:seconds=60,peak=10", "bursts:seed=3,period=5", "twitter-like:seconds=21", "x:y", "steps:seconds=1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSynthetic(spec)
		if err != nil || s.Seconds > 100_000 {
			return
		}
		tr, err := s.Generate()
		if err != nil {
			t.Fatalf("valid spec %q failed: %v", spec, err)
		}
		for _, v := range tr.RPS {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("spec %q: bad value %v", spec, v)
			}
		}
	})
}
