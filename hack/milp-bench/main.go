// Command milp-bench compares optimizer.Solve with an off-the-shelf MILP
// solver (CBC, Debian package coinor-cbc) on the same instances in the same
// run: it writes each instance as a CPLEX-LP model, solves it with CBC,
// times both and checks that the objectives agree.
//
//	go run ./hack/milp-bench -instances paper-sweep,20x200 -timelimit 300
//
// The MILP is independent of our solver's tricks: one binary per variant
// and per (cores per replica, replicas) configuration allowed by the
// problem (not only our Pareto-pruned options), Σ choices ≤ 1 per variant,
// load l_i ≤ Σ capacity·choice, Σ_i l_i = λ per service, Σ cores ≤ B,
// LC ≥ loadTime_i·(Σ choices other than the current configuration), and
// maximise Σ_s [Σ_i acc_i·l_i/λ_s − α_s·Σcores/B − β_s·LC_s/maxLoadTime_s].
// The most-accurate-first fill needs no constraint: for fixed capacities the
// maximum of Σ acc_i·l_i is exactly that fill (a fractional knapsack).
// Only feasible instances are modelled (the equality Σ l_i = λ).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/optimizer"
)

func main() {
	instances := flag.String("instances", "paper-sweep,20x200,50x1000r,20svc10x2000",
		"comma-separated instances: "+strings.Join(optimizer.BenchmarkInstanceNames, ", ")+", or paper-sweep (the paper problem at λ = 30, 50, 100, 200, 274, 301)")
	cbc := flag.String("cbc", "cbc", "CBC binary")
	limit := flag.Duration("timelimit", 5*time.Minute, "time limit per solver per instance")
	dir := flag.String("dir", "", "where to write the .lp models (default: a temporary directory)")
	child := flag.String("child", "", "internal: time Solve on this instance (name[@load]) and print the result")
	flag.Parse()
	if *child != "" {
		runChild(*child)
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "milp-bench")
		if err != nil {
			fatal(err)
		}
		*dir = d
	}
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %s/%s, %d CPUs (GOMAXPROCS %d), %s; date %s\n",
		host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("command: %s\n\n", strings.Join(os.Args, " "))
	fmt.Println("| instance | variants × cores | MILP binaries | ours | CBC | CBC / ours | objective (ours) | objective (CBC) | agree |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, name := range strings.Split(*instances, ",") {
		name = strings.TrimSpace(name)
		var probs []struct {
			label string
			p     optimizer.Problem
		}
		if name == "paper-sweep" {
			for _, l := range []float64{30, 50, 100, 200, 274, 301} {
				probs = append(probs, struct {
					label string
					p     optimizer.Problem
				}{fmt.Sprintf("paper@%g", l), instance(fmt.Sprintf("paper@%g", l))})
			}
		} else {
			probs = append(probs, struct {
				label string
				p     optimizer.Problem
			}{name, instance(name)})
		}
		for _, pr := range probs {
			row(pr.label, pr.p, *cbc, *dir, *limit)
		}
	}
}

func row(label string, p optimizer.Problem, cbc, dir string, limit time.Duration) {
	nv := 0
	for _, s := range p.Services {
		nv += len(s.Variants)
	}
	size := fmt.Sprintf("%d × %d", nv, p.Budget)
	if len(p.Services) > 1 {
		size = fmt.Sprintf("%d svc × %d × %d", len(p.Services), nv/len(p.Services), p.Budget)
	}
	if p.MaxReplicas > 1 {
		size += fmt.Sprintf(" (≤%d cores × ≤%d replicas)", p.MaxCoresPerReplica, p.MaxReplicas)
	}

	ours, oursObj, oursErr := timeOurs(label, limit)
	file := filepath.Join(dir, sanitize(label)+".lp")
	nbin, err := writeLP(file, p)
	if err != nil {
		fatal(err)
	}
	cbcTime, cbcObj, cbcErr := runCBC(cbc, file, limit)

	fmtT := func(d time.Duration, err error) string {
		if err != nil {
			return err.Error()
		}
		return fmtDur(d)
	}
	ratio, agree := "—", "—"
	if oursErr == nil && cbcErr == nil {
		ratio = fmt.Sprintf("%.0f×", float64(cbcTime)/float64(ours))
		if math.Abs(oursObj-cbcObj) <= 1e-6 {
			agree = "yes"
		} else {
			agree = fmt.Sprintf("**NO** (Δ %.2g)", oursObj-cbcObj)
		}
	}
	objS := func(x float64, err error) string {
		if err != nil {
			return "—"
		}
		return strconv.FormatFloat(x, 'f', 6, 64)
	}
	fmt.Printf("| %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", label, size, nbin,
		fmtT(ours, oursErr), fmtT(cbcTime, cbcErr), ratio, objS(oursObj, oursErr), objS(cbcObj, cbcErr), agree)
}

// instance returns a benchmark instance by name, "name@load" overriding
// the first service's load.
func instance(spec string) optimizer.Problem {
	name, load, hasLoad := strings.Cut(spec, "@")
	p := optimizer.BenchmarkInstance(name)
	if hasLoad {
		l, err := strconv.ParseFloat(load, 64)
		if err != nil {
			fatal(err)
		}
		p.Services[0].Load = l
	}
	return p
}

// runChild times Solve on one instance for at least 1 s (at least once)
// and prints "<ns per solve> <objective>".
func runChild(spec string) {
	p := instance(spec)
	var n int
	var obj float64
	start := time.Now()
	for n == 0 || time.Since(start) < time.Second {
		sol, err := optimizer.Solve(p)
		if err != nil {
			fatal(err)
		}
		if !sol.Feasible {
			fatal(errors.New("infeasible"))
		}
		obj = sol.Objective
		n++
	}
	fmt.Printf("%d %.17g\n", int64(time.Since(start))/int64(n), obj)
}

// timeOurs runs our solver in a child process (so that a run over the
// limit can be stopped and does not compete with CBC for the CPU) and
// returns the mean time per solve and the objective.
func timeOurs(spec string, limit time.Duration) (time.Duration, float64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, self, "-child", spec).Output()
	if ctx.Err() != nil {
		return 0, 0, fmt.Errorf("> %s (stopped)", limit)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("ours: %v", err)
	}
	var ns int64
	var obj float64
	if _, err := fmt.Sscan(string(out), &ns, &obj); err != nil {
		return 0, 0, fmt.Errorf("ours: bad output %q", out)
	}
	return time.Duration(ns), obj, nil
}

var (
	objRe  = regexp.MustCompile(`Objective value:\s*(-?[0-9.eE+-]+)`)
	bestRe = regexp.MustCompile(`Search completed - best objective (-?[0-9.eE+-]+)`)
)

// runCBC solves the model and returns CBC's wall time (process start to
// exit, including reading the LP file) and objective.
func runCBC(cbc, file string, limit time.Duration) (time.Duration, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit+10*time.Second)
	defer cancel()
	sol := strings.TrimSuffix(file, ".lp") + ".sol"
	_ = os.Remove(sol)
	cmd := exec.CommandContext(ctx, cbc, file, "-sec", strconv.Itoa(int(limit.Seconds())),
		"-ratioGap", "0", "-allowableGap", "1e-9", "-threads", "1", "-solve", "-solution", sol)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("cbc: %v", err)
	}
	text := string(out)
	if strings.Contains(text, "Stopped on time") || strings.Contains(text, "stopped on time") {
		return 0, 0, fmt.Errorf("> %s (stopped on time)", limit)
	}
	if !strings.Contains(text, "Optimal solution found") && !strings.Contains(text, "Result - Optimal") {
		return 0, 0, fmt.Errorf("cbc did not prove optimality: %s", lastLines(text, 3))
	}
	// CBC minimises −objective internally; "best objective" has full
	// precision (negated), "Objective value:" only 8 digits.
	if m := bestRe.FindStringSubmatch(text); m != nil {
		obj, err := strconv.ParseFloat(m[1], 64)
		return d, -obj, err
	}
	m := objRe.FindStringSubmatch(text)
	if m == nil {
		return 0, 0, fmt.Errorf("no objective in cbc output: %s", lastLines(text, 3))
	}
	obj, err := strconv.ParseFloat(m[1], 64)
	return d, obj, err
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " / ")
}

// writeLP writes p as a CPLEX-LP maximisation and returns the number of
// binaries.
func writeLP(file string, p optimizer.Problem) (int, error) {
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	minC := max(1, p.MinCores)
	maxC := p.MaxCoresPerReplica
	if maxC <= 0 || maxC > p.Budget {
		maxC = p.Budget
	}
	maxR := max(1, p.MaxReplicas)
	type opt struct {
		name       string
		cores, cap float64
		changed    bool
	}
	opts := make([][][]opt, len(p.Services))
	nbin := 0
	for si, s := range p.Services {
		opts[si] = make([][]opt, len(s.Variants))
		for vi, v := range s.Variants {
			curR := v.CurrentReplicas
			if v.Current > 0 && curR <= 0 {
				curR = 1
			}
			for c := minC; c <= maxC; c++ {
				one := 0.0
				if len(v.Capacity) > 0 {
					one = v.Capacity[min(c, len(v.Capacity)-1)]
				}
				for r := 1; r <= maxR && r*c <= p.Budget; r++ {
					opts[si][vi] = append(opts[si][vi], opt{
						name: fmt.Sprintf("y_%d_%d_%d_%d", si, vi, c, r), cores: float64(c * r), cap: one * float64(r),
						changed: c != v.Current || r != curR,
					})
					nbin++
				}
			}
		}
	}
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 15, 64) }
	// objective
	fmt.Fprintln(w, "Maximize")
	fmt.Fprint(w, " obj:")
	for si, s := range p.Services {
		maxLT := 0.0
		for _, v := range s.Variants {
			maxLT = max(maxLT, v.LoadTime)
		}
		for vi, v := range s.Variants {
			if s.Load > 0 {
				fmt.Fprintf(w, " + %s l_%d_%d", g(v.Accuracy/s.Load), si, vi)
			}
			for _, o := range opts[si][vi] {
				fmt.Fprintf(w, " - %s %s", g(s.Alpha*o.cores/float64(p.Budget)), o.name)
			}
			fmt.Fprintln(w)
		}
		if maxLT > 0 && s.Beta > 0 {
			fmt.Fprintf(w, " - %s lc_%d\n", g(s.Beta/maxLT), si)
		}
	}
	fmt.Fprintln(w, "Subject To")
	// budget
	fmt.Fprint(w, " budget:")
	for si := range p.Services {
		for vi := range p.Services[si].Variants {
			for _, o := range opts[si][vi] {
				fmt.Fprintf(w, " + %s %s", g(o.cores), o.name)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, " <= %d\n", p.Budget)
	for si, s := range p.Services {
		fmt.Fprintf(w, " load_%d:", si)
		for vi := range s.Variants {
			fmt.Fprintf(w, " + l_%d_%d", si, vi)
		}
		fmt.Fprintf(w, " = %s\n", g(s.Load))
		for vi, v := range s.Variants {
			if len(opts[si][vi]) == 0 {
				fmt.Fprintf(w, " cap_%d_%d: l_%d_%d <= 0\n", si, vi, si, vi)
				continue
			}
			fmt.Fprintf(w, " one_%d_%d:", si, vi)
			for _, o := range opts[si][vi] {
				fmt.Fprintf(w, " + %s", o.name)
			}
			fmt.Fprintln(w, " <= 1")
			fmt.Fprintf(w, " cap_%d_%d: l_%d_%d", si, vi, si, vi)
			for _, o := range opts[si][vi] {
				if o.cap != 0 {
					fmt.Fprintf(w, " - %s %s", g(o.cap), o.name)
				}
			}
			fmt.Fprintln(w, " <= 0")
			if v.LoadTime > 0 && s.Beta > 0 {
				fmt.Fprintf(w, " lc_%d_%d: lc_%d", si, vi, si)
				for _, o := range opts[si][vi] {
					if o.changed {
						fmt.Fprintf(w, " - %s %s", g(v.LoadTime), o.name)
					}
				}
				fmt.Fprintln(w, " >= 0")
			}
		}
	}
	fmt.Fprintln(w, "Binary")
	for si := range p.Services {
		for vi := range p.Services[si].Variants {
			for _, o := range opts[si][vi] {
				fmt.Fprintln(w, " "+o.name)
			}
		}
	}
	fmt.Fprintln(w, "End")
	return nbin, w.Flush()
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "milp-bench:", err)
	os.Exit(1)
}
