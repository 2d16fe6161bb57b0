package optimizer

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// BenchmarkInstanceNames lists the seeded benchmark instances that the Go
// benchmarks and hack/milp-bench share.
var BenchmarkInstanceNames = []string{"paper", "20x200", "50x1000r", "20svc10x2000"}

// BenchmarkInstance returns a seeded, deterministic benchmark instance:
//
//   - "paper": 5 ResNets, 20 cores, min 2, paper capacities (§1.5 refit ×0.8),
//     λ 274, α 0.05, β 0.001, ResNet152 running at 20 cores;
//   - "20x200": 20 synthetic variants, 200 cores, λ ≈ 55% of the best
//     single-variant capacity at 200 cores;
//   - "50x1000r": 50 variants, 1,000 cores, replicas of up to 32 cores,
//     up to 64 replicas per variant;
//   - "20svc10x2000": 20 services of 10 variants sharing 2,000 cores;
//   - "50x1000r-v0" … "50x1000r-v7": eight more of the 50x1000r shape, with
//     λ from 30% to 70% of the best single-variant capacity, β from 0.001
//     to 0.004 and one to three variants running (the spread of run times
//     matters as much as one instance's).
//
// Synthetic variants: accuracy rises and throughput per core falls with the
// index (a model family), concave integer capacity curves, one variant
// currently running so that β matters. It panics on an unknown name.
func BenchmarkInstance(name string) Problem {
	rng := rand.New(rand.NewPCG(42, uint64(len(name))))
	switch name {
	case "paper":
		return Problem{Budget: 20, MinCores: 2, Services: []Service{{Name: "resnet", Load: 274, Alpha: 0.05, Beta: 0.001, Variants: paperCapacities()}}}
	case "20x200":
		vs := synthVariants(rng, 20, 200)
		vs[19].Current = 40
		return Problem{Budget: 200, MinCores: 2, Services: []Service{{Name: "s0", Load: loadFor(vs, 200, 0.55), Alpha: 0.05, Beta: 0.001, Variants: vs}}}
	case "50x1000r":
		vs := synthVariants(rng, 50, 32)
		vs[49].Current, vs[49].CurrentReplicas = 16, 4
		return Problem{Budget: 1000, MinCores: 2, MaxCoresPerReplica: 32, MaxReplicas: 64,
			Services: []Service{{Name: "s0", Load: loadFor(vs, 1000, 0.5), Alpha: 0.05, Beta: 0.001, Variants: vs}}}
	case "20svc10x2000":
		p := Problem{Budget: 2000, MinCores: 2}
		for s := 0; s < 20; s++ {
			vs := synthVariants(rng, 10, 2000)
			vs[9].Current = 50
			p.Services = append(p.Services, Service{Name: fmt.Sprintf("s%02d", s), Load: loadFor(vs, 100, 0.5+0.4*rng.Float64()),
				Alpha: 0.05, Beta: 0.001, Variants: vs})
		}
		return p
	}
	var v int
	if _, err := fmt.Sscanf(name, "50x1000r-v%d", &v); err == nil && v >= 0 && v < 8 && name == fmt.Sprintf("50x1000r-v%d", v) {
		return variedInstance(v)
	}
	panic("optimizer: unknown benchmark instance " + name)
}

// variedInstance is "50x1000r-v<seed>".
func variedInstance(seed int) Problem {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	vs := synthVariants(rng, 50, 32)
	for range 1 + seed%3 {
		v := rng.IntN(50)
		vs[v].Current, vs[v].CurrentReplicas = 2+rng.IntN(31), 1+rng.IntN(8)
	}
	frac := 0.3 + 0.4*float64(seed%8)/7
	return Problem{Budget: 1000, MinCores: 2, MaxCoresPerReplica: 32, MaxReplicas: 64,
		Services: []Service{{Name: "s0", Load: loadFor(vs, 1000, frac), Alpha: 0.05, Beta: 0.001 * float64(1+seed%4), Variants: vs}}}
}

// loadFor is frac of the best capacity any single variant reaches with
// `cores` cores (linearly extrapolated per core beyond its curve).
func loadFor(vs []Variant, cores int, frac float64) float64 {
	best := 0.0
	for _, v := range vs {
		n := len(v.Capacity) - 1
		c := v.Capacity[n] / float64(n) * float64(cores)
		if cores <= n {
			c = v.Capacity[cores]
		}
		best = max(best, c)
	}
	return float64(int(frac * best))
}

// paperCapacities builds the paper's five ResNets (reference §1.5/§1.7) with
// the paper's capacity rule, computed here independently of pkg/profile: a
// least-squares line on cores {1,2,4,8,16} at SLA 750 ms, intercept clipped
// to ≤ 0.99 and truncated, capacity = int(0.8·(a·n + b)) floored at 0.
func paperCapacities() []Variant {
	const maxCores = 20
	type row struct {
		name     string
		acc, lt  float64
		measured [5]float64 // at 1, 2, 4, 8, 16 cores
	}
	rows := []row{
		{"resnet18", 0.69758, 6.44, [5]float64{19, 43, 90, 190, 385}},
		{"resnet34", 0.73314, 6.79, [5]float64{12, 25, 54, 94, 210}},
		{"resnet50", 0.7613, 6.82, [5]float64{8, 17, 36, 78, 162}},
		{"resnet101", 0.77374, 7.77, [5]float64{5, 10, 22, 39, 82}},
		{"resnet152", 0.78312, 8.52, [5]float64{1, 5, 15, 27, 59}},
	}
	xs := []float64{1, 2, 4, 8, 16}
	var out []Variant
	for _, r := range rows {
		var mx, my float64
		for i := range xs {
			mx += xs[i] / 5
			my += r.measured[i] / 5
		}
		var sxy, sxx float64
		for i := range xs {
			sxy += (xs[i] - mx) * (r.measured[i] - my)
			sxx += (xs[i] - mx) * (xs[i] - mx)
		}
		a := sxy / sxx
		b := math.Trunc(math.Min(my-a*mx, 0.99))
		capac := make([]float64, maxCores+1)
		for n := 1; n <= maxCores; n++ {
			capac[n] = math.Max(0, math.Trunc(0.8*(a*float64(n)+b)))
		}
		out = append(out, Variant{Name: r.name, Accuracy: r.acc, LoadTime: r.lt, Capacity: capac})
	}
	return out
}

// synthVariants makes n variants with concave-ish integer capacity curves
// up to maxCores: accuracy rises and throughput per core falls with the index,
// like a model family. Seeded, so every run solves the same instance.
func synthVariants(rng *rand.Rand, n, maxCores int) []Variant {
	vs := make([]Variant, n)
	for i := range vs {
		perCore := 25.0 * float64(n-i) / float64(n) // faster variants first
		capac := make([]float64, maxCores+1)
		for c := 1; c <= maxCores; c++ {
			// concave, a little noise, kept monotone
			x := perCore * float64(c) * (1 - 0.15*float64(c)/float64(maxCores+c)) * (0.9 + 0.2*rng.Float64())
			capac[c] = float64(int(x))
			if capac[c] < capac[c-1] {
				capac[c] = capac[c-1]
			}
		}
		vs[i] = Variant{
			Name:     "v" + string(rune('A'+i%26)) + string(rune('a'+i/26)),
			Accuracy: 0.6 + 0.2*float64(i)/float64(n) + 0.001*rng.Float64(),
			LoadTime: 5 + 5*rng.Float64(),
			Capacity: capac,
		}
	}
	return vs
}
