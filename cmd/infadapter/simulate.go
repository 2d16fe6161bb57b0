package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/baselines"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/profile"
	"github.com/infadapter/infadapter/pkg/report"
	"github.com/infadapter/infadapter/pkg/sim"
	"github.com/infadapter/infadapter/pkg/trace"
)

// The paper's experiment window of the Twitter trace (reference §1.4).
const paperFrom, paperTo = 1300920, 1302180

const twitterHint = `The Twitter trace is workload.tbz2 from github.com/reconfigurable-ml-pipeline/web-service-datasets
(dataset/twitter_trace/workload.tbz2); put it at ../shared/data/twitter-trace/workload.tbz2 beside the
repository or pass --trace PATH. --scenario synthetic runs without it.`

type simFlags struct {
	scenario, tracePath, synthetic, profileName, policies, forecaster, transition, reportDir, arrivals string
	from, to, budget, minCores, workers, replicas                                                      int
	scale, peak, alpha, beta, cv, reactive                                                             float64
	slo, interval, firstDecision                                                                       time.Duration
	seed                                                                                               uint64
	asJSON                                                                                             bool
}

func init() { rootCmd.AddCommand(newSimulateCmd()) }

// newSimulateCmd builds the command with fresh flags (tests build their own).
func newSimulateCmd() *cobra.Command {
	f := simFlags{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay a trace through InfAdapter and baselines in the request-level simulator",
		Long: `simulate replays a per-second request trace (Poisson arrivals, seeded) through a
discrete-event model of the service — a dispatcher splitting requests by the
plan's shares over variant instances modelled as M/G/c queues whose service
times are calibrated so P99 at the profiled capacity equals the SLO — once per
policy, and compares SLO violations, latency, accuracy and cores.

Policies: infadapter, ms+, vpa-<variant>, hpa-<variant>, static, oracle.

  --scenario paper      the paper's setting: seconds [1300920, 1302180) of the
                        Twitter trace, the resnet-paper profile (measured
                        ResNet capacities; policies plan with the paper's
                        linear fit × 0.8), 20 cores, P99 750 ms, α 0.05,
                        β 0.001, decisions every 30 s from 2 min.
  --scenario synthetic  the same on a built-in synthetic trace
                        (--synthetic SPEC, default "twitter-like").

Any flag overrides the scenario. Same --seed → identical output.`,
		Example: `  infadapter simulate --scenario paper
  infadapter simulate --scenario synthetic --synthetic diurnal:seconds=3600,peak=300 --json
  infadapter simulate --trace workload.tbz2 --from 1382400 --to 1386000 --policies infadapter,vpa-resnet50,oracle
  infadapter simulate --scenario paper --report out/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenario, "scenario", "paper", "paper or synthetic")
	fl.StringVar(&f.tracePath, "trace", "", "trace file (per-second counts, .tbz2/.bz2/tar, or CSV second,rps); default: the Twitter trace for --scenario paper")
	fl.StringVar(&f.synthetic, "synthetic", "", "synthetic trace spec shape[:key=value,...]; shapes: "+strings.Join(trace.ShapeNames(), ", ")+" (keys seconds, base, peak, period, noise, seed)")
	fl.IntVar(&f.from, "from", -1, "first second of the trace window (default: paper window for --scenario paper, else 0)")
	fl.IntVar(&f.to, "to", -1, "end second (exclusive) of the window (default: paper window / end of trace)")
	fl.Float64Var(&f.scale, "scale", 0, "multiply the trace's rates by this factor")
	fl.Float64Var(&f.peak, "peak", 0, "scale the trace so its busiest second has this many RPS")
	fl.StringVar(&f.profileName, "profile", "resnet-paper", "variant profile: built-in ("+strings.Join(profile.BuiltinNames(), ", ")+") or a YAML file")
	fl.IntVar(&f.budget, "budget", 20, "CPU budget B (cores)")
	fl.IntVar(&f.minCores, "min-cores", 2, "smallest non-zero cores per variant")
	fl.DurationVar(&f.slo, "slo", 750*time.Millisecond, "P99 latency SLO")
	fl.Float64Var(&f.alpha, "alpha", 0.05, "α: weight of Σcores/B in the objective")
	fl.Float64Var(&f.beta, "beta", 0.001, "β: weight of the loading cost")
	fl.StringVar(&f.policies, "policies", "", "comma-separated policies (default: infadapter, ms+, vpa-<each variant>, hpa-<least accurate>, static, oracle)")
	fl.StringVar(&f.forecaster, "forecaster", "paper", "forecaster spec for infadapter and ms+ (see `infadapter forecast --help`)")
	fl.StringVar(&f.transition, "transition", "restart", "how size changes apply: restart (new instance, old drains when it is ready), in-place (resize after --in-place-delay)")
	fl.IntVar(&f.replicas, "max-replicas", 0, "let infadapter use up to this many replicas per variant (0/1: one)")
	fl.DurationVar(&f.interval, "interval", 30*time.Second, "decision interval (infadapter, ms+, vpa, oracle)")
	fl.Float64Var(&f.reactive, "reactive", 0, "infadapter and ms+ also decide between intervals when a second's arrivals exceed this × the capacity of what runs (0: only on the interval, as the paper; `run` uses 1)")
	fl.DurationVar(&f.firstDecision, "first-decision", 2*time.Minute, "time of the first decision")
	fl.Float64Var(&f.cv, "service-cv", 0.3, "coefficient of variation of service times (lognormal)")
	fl.StringVar(&f.arrivals, "arrivals", "poisson", "arrivals within a second: poisson, exact (round(rps) at uniform times) or even")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed (arrivals, service times)")
	fl.IntVar(&f.workers, "workers", 0, "policies simulated at once (0: one per CPU)")
	fl.BoolVar(&f.asJSON, "json", false, "print the comparison as JSON")
	fl.StringVar(&f.reportDir, "report", "", "write an HTML report (index.html with SVG plots) to this directory")
	return cmd
}

// simulateJSON is the --json shape.
type simulateJSON struct {
	Policies []simulatePolicyJSON `json:"policies"`
}

type simulatePolicyJSON struct {
	Name              string  `json:"name"`
	SLOViolationPct   float64 `json:"sloViolationPct"`
	P99Ms             float64 `json:"p99Ms"`
	AvgAccuracy       float64 `json:"avgAccuracy"`
	EffectiveAccuracy float64 `json:"effectiveAccuracy"`
	AvgCores          float64 `json:"avgCores"`
	CoreSeconds       float64 `json:"coreSeconds"`
	Reconfigurations  int     `json:"reconfigurations"`
	ObjectiveVsOracle float64 `json:"objectiveVsOracle"`
}

func runSimulate(cmd *cobra.Command, f simFlags) error {
	if f.slo <= 0 || f.budget <= 0 {
		return badInput(fmt.Errorf("--slo (%v) and --budget (%d) must be > 0", f.slo, f.budget))
	}
	tr, err := simLoadTrace(cmd, f)
	if err != nil {
		return err
	}
	prof, err := simLoadProfile(f.profileName)
	if err != nil {
		return badInput(err)
	}
	if prof.SLOMillis > 0 && float64(f.slo.Milliseconds()) != prof.SLOMillis {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: profile %s was measured at P99 %g ms; simulating --slo %v with those capacities\n", prof.Name, prof.SLOMillis, f.slo)
	}
	cfg := sim.DefaultConfig()
	cfg.Variants = sim.VariantsFromProfile(prof, f.budget)
	cfg.SLO, cfg.Budget, cfg.Alpha, cfg.ServiceCV, cfg.Seed = f.slo, f.budget, f.alpha, f.cv, f.seed
	cfg.Arrivals = trace.ArrivalMode(f.arrivals)
	switch f.transition {
	case "restart":
		cfg.Transition.Mode = sim.TransitionRestart
	case "in-place":
		cfg.Transition.Mode = sim.TransitionInPlace
	default:
		return badInput(fmt.Errorf("--transition %q: want restart or in-place", f.transition))
	}
	if err := cfg.Validate(); err != nil {
		return badInput(err)
	}
	plan := prof.OptimizerVariants(f.budget)
	setup := baselines.Setup{Plan: plan, Budget: f.budget, MinCores: f.minCores, Alpha: f.alpha, Beta: f.beta,
		Forecast: f.forecaster, Interval: f.interval, FirstDecision: f.firstDecision, MaxReplicas: f.replicas,
		Start: cfg.Start, RPS: tr.RPS, Reactive: decider.ReactiveAt(f.reactive)}
	if err := setup.Reactive.Validate(); err != nil {
		return badInput(err)
	}
	names := baselines.PolicyNames(plan)
	if f.policies != "" {
		names = nil
		for _, n := range strings.Split(f.policies, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	var pols []sim.Policy
	var errs []error
	for _, n := range names {
		p, err := baselines.Build(n, setup)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pols = append(pols, p)
	}
	if err := errors.Join(errs...); err != nil {
		return badInput(err)
	}
	if len(pols) == 0 {
		return badInput(errors.New("--policies: no policy given"))
	}

	var progress func(int)
	if !f.asJSON && simStderrIsTerminal() {
		bar := progressbar.NewOptions64(int64(len(pols)*tr.Len()), progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("simulating"), progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("sim-s"), progressbar.OptionShowIts(), progressbar.OptionClearOnFinish())
		progress = func(n int) { _ = bar.Add(n) }
		defer bar.Finish()
	}
	workers := f.workers
	if workers <= 0 {
		workers = max(1, min(len(pols), runtime.NumCPU()))
	}
	results, err := sim.RunAll(cfg, tr.RPS, pols, workers, progress)
	if err != nil {
		return err
	}
	var oracle *sim.Result
	for _, r := range results {
		if r.Name == "oracle" {
			oracle = r
		}
	}
	sim.RelativeTo(results, oracle)

	if f.reportDir != "" {
		in := report.Input{Title: "InfAdapter simulation: " + tr.Name, Command: "infadapter " + strings.Join(os.Args[1:], " "),
			Trace: tr.Name, SLOMillis: float64(f.slo.Milliseconds()), Budget: f.budget, Results: results,
			AccuracyNote: simAccuracyNote(prof)}
		if err := report.WriteDir(f.reportDir, in); err != nil {
			return err
		}
		if !f.asJSON {
			fmt.Fprintf(cmd.ErrOrStderr(), "report: %s\n", filepath.Join(f.reportDir, "index.html"))
		}
	}
	if f.asJSON {
		out := simulateJSON{Policies: []simulatePolicyJSON{}}
		for _, r := range results {
			m := r.Metrics
			out.Policies = append(out.Policies, simulatePolicyJSON{Name: r.Name, SLOViolationPct: round(m.SLOViolationPct, 3),
				P99Ms: round(m.P99Ms, 1), AvgAccuracy: round(m.AvgAccuracy, 4), EffectiveAccuracy: round(m.EffectiveAccuracy, 4),
				AvgCores: round(m.AvgCores, 2), CoreSeconds: round(m.CoreSeconds, 0), Reconfigurations: m.Reconfigurations,
				ObjectiveVsOracle: round(m.ObjectiveVsOracle, 4)})
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	st := tr.Stats()
	fmt.Fprintf(cmd.OutOrStdout(), "trace %s: %d s, %.0f requests, mean %.1f RPS, peak %.0f RPS; profile %s; budget %d cores; SLO P99 %v; seed %d\n\n",
		tr.Name, st.Seconds, st.Requests, st.Mean, st.Max, prof.Name, f.budget, f.slo, f.seed)
	simPrintTable(cmd.OutOrStdout(), results)
	if n := simAccuracyNote(prof); n != "" {
		fmt.Fprintln(cmd.OutOrStdout(), n)
	}
	return nil
}

// simAccuracyNote says where the accuracies the simulator weighs come from
// when the profile's figures were not measured by this project.
func simAccuracyNote(p profile.Profile) string {
	if !p.AnyPublished() {
		return ""
	}
	return "accuracy: profile " + p.Name + "'s figures are " + profile.PublishedLabel + " (the model authors' top-1)."
}

func simPrintTable(w io.Writer, results []*sim.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tSLO viol %\t5s-win viol %\tP50 ms\tP99 ms\taccuracy\teff. acc.\tavg cores\tcore-s\treconf.\tobj/oracle\t")
	for _, r := range results {
		m := r.Metrics
		rel := "-"
		if m.ObjectiveVsOracle != 0 {
			rel = fmt.Sprintf("%.3f", m.ObjectiveVsOracle)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.0f\t%.0f\t%.4f\t%.4f\t%.2f\t%.0f\t%d\t%s\t\n", r.Name, m.SLOViolationPct, m.WindowViolationPct,
			m.P50Ms, m.P99Ms, m.AvgAccuracy, m.EffectiveAccuracy, m.AvgCores, m.CoreSeconds, m.Reconfigurations, rel)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nSLO viol %: requests over the SLO, dropped or timed out. 5s-win viol %: share of 5 s windows whose P99 > SLO.")
	fmt.Fprintln(w, "avg cores include transition overlap. obj/oracle: (eff. acc. − α·avg cores/B) ÷ the oracle's (- without an oracle; 0 in --json).")
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

func simStderrIsTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func simLoadProfile(name string) (profile.Profile, error) {
	if profile.IsBuiltin(name) {
		return profile.Builtin(name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return profile.Profile{}, fmt.Errorf("--profile: %w (built-in: %s)", err, strings.Join(profile.BuiltinNames(), ", "))
	}
	return profile.Parse(b, name)
}

// simFindTwitter looks for ../shared/data/twitter-trace/workload.tbz2 above
// the working directory and above the executable.
func simFindTwitter() (string, []string) {
	var starts, tried []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for d := s; ; d = filepath.Dir(d) {
			p := filepath.Join(d, "..", "shared", "data", "twitter-trace", "workload.tbz2")
			if _, err := os.Stat(p); err == nil {
				return filepath.Clean(p), nil
			}
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				tried = append(tried, filepath.Clean(p))
				break
			}
			if filepath.Dir(d) == d {
				tried = append(tried, filepath.Join(s, "..", "shared", "data", "twitter-trace", "workload.tbz2"))
				break
			}
		}
	}
	return "", tried
}

func simLoadTrace(cmd *cobra.Command, f simFlags) (trace.Trace, error) {
	var tr trace.Trace
	from, to := f.from, f.to
	switch {
	case f.tracePath != "" && f.synthetic != "":
		return tr, badInput(errors.New("give --trace or --synthetic, not both"))
	case f.synthetic != "" || (f.scenario == "synthetic" && f.tracePath == ""):
		spec := f.synthetic
		if spec == "" {
			spec = string(trace.ShapeTwitter)
		}
		s, err := trace.ParseSynthetic(spec)
		if err != nil {
			return tr, badInput(fmt.Errorf("--synthetic: %w", err))
		}
		if tr, err = s.Generate(); err != nil {
			return tr, badInput(err)
		}
	case f.scenario == "paper" || f.tracePath != "":
		path := f.tracePath
		if path == "" {
			var tried []string
			path, tried = simFindTwitter()
			if path == "" {
				return tr, badInput(fmt.Errorf("the Twitter trace was not found (looked at %s).\n%s", strings.Join(tried, ", "), twitterHint))
			}
		}
		fh, err := os.Open(path)
		if err != nil {
			return tr, badInput(fmt.Errorf("--trace: %w\n%s", err, twitterHint))
		}
		defer fh.Close()
		if tr, err = trace.Read(fh, filepath.Base(path)); err != nil {
			return tr, badInput(err)
		}
		if f.scenario == "paper" && !cmd.Flags().Changed("from") && !cmd.Flags().Changed("to") {
			if tr.Len() >= paperTo {
				from, to = paperFrom, paperTo
			} else if f.tracePath == "" {
				return tr, badInput(fmt.Errorf("trace %s has %d s, shorter than the paper window [%d, %d); pass --from/--to or --scenario synthetic", path, tr.Len(), paperFrom, paperTo))
			} else if !f.asJSON {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is shorter than the paper window [%d, %d); replaying all %d s\n", path, paperFrom, paperTo, tr.Len())
			}
		}
	default:
		return tr, badInput(fmt.Errorf("--scenario %q: want paper or synthetic", f.scenario))
	}
	if from >= 0 || to >= 0 {
		var err error
		if tr, err = tr.Window(max(from, 0), max(to, 0)); err != nil {
			return tr, badInput(err)
		}
	}
	var err error
	switch {
	case f.scale != 0 && f.peak != 0:
		return tr, badInput(errors.New("give --scale or --peak, not both"))
	case f.scale != 0:
		tr, err = tr.Scale(f.scale)
	case f.peak != 0:
		tr, err = tr.ScaleToPeak(f.peak)
	}
	if err != nil {
		return tr, badInput(err)
	}
	return tr, nil
}
