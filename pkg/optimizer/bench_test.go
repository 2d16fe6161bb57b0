package optimizer

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkSolvePaper is one decision of the paper's problem: 5 ResNets,
// 20 cores, min 2, α 0.05, β 0.001, ResNet152 running at 20 cores, λ = 274.
func BenchmarkSolvePaper(b *testing.B) {
	vs := paperCapacities()
	vs[4].Current = 20
	p := Problem{Budget: 20, MinCores: 2, Services: []Service{{Load: 274, Alpha: 0.05, Beta: 0.001, Variants: vs}}}
	benchSolve(b, p)
}

// BenchmarkSolvePaperSweep solves the paper problem at every λ in 10..380
// (step 10) per iteration; ns/op divided by 38 is the mean per decision.
func BenchmarkSolvePaperSweep(b *testing.B) {
	vs := paperCapacities()
	vs[4].Current = 20
	c0, n := cpuTime(), 0
	defer func() {
		if d := cpuTime() - c0; d > 0 && n > 0 {
			b.ReportMetric(float64(d.Nanoseconds())/float64(n*38), "cpu-ns/decision")
		}
	}()
	for b.Loop() {
		n++
		for l := 10; l <= 380; l += 10 {
			if _, err := Solve(Problem{Budget: 20, MinCores: 2, Services: []Service{{Load: float64(l), Alpha: 0.05, Beta: 0.001, Variants: vs}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchSolve(b *testing.B, p Problem) {
	b.Helper()
	c0, n := cpuTime(), 0
	for b.Loop() {
		if _, err := Solve(p); err != nil {
			b.Fatal(err)
		}
		n++
	}
	// CPU time per solve (GOMAXPROCS-wide; Solve is single-threaded): on a
	// shared machine wall-clock ns/op also counts time spent waiting for a CPU.
	if d := cpuTime() - c0; d > 0 && n > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

func BenchmarkSolve20x200(b *testing.B) { benchSolve(b, BenchmarkInstance("20x200")) }

func BenchmarkSolve50x1000Replicas(b *testing.B) { benchSolve(b, BenchmarkInstance("50x1000r")) }

// BenchmarkSolve50x1000ReplicasVaried solves the eight 50x1000r-vN
// instances per iteration; cpu-ns/solve is the mean per instance.
func BenchmarkSolve50x1000ReplicasVaried(b *testing.B) {
	var ps []Problem
	for v := range 8 {
		ps = append(ps, BenchmarkInstance(fmt.Sprintf("50x1000r-v%d", v)))
	}
	c0, n := cpuTime(), 0
	for b.Loop() {
		for _, p := range ps {
			if _, err := Solve(p); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	if d := cpuTime() - c0; d > 0 && n > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(n), "cpu-ns/solve")
	}
}

// The multi-service instance takes seconds per solve on the 2-core
// benchmark machine (docs/benchmarks.md), so `make bench` skips it unless
// OPTIMIZER_BENCH_LARGE=1.
func BenchmarkSolve20Services10x2000(b *testing.B) {
	large(b)
	benchSolve(b, BenchmarkInstance("20svc10x2000"))
}

func large(b *testing.B) {
	if os.Getenv("OPTIMIZER_BENCH_LARGE") == "" {
		b.Skip("takes minutes per solve; set OPTIMIZER_BENCH_LARGE=1 to run")
	}
}
