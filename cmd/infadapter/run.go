package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/localmode"
)

func init() {
	cfg := localmode.Default()
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Watch InfAdapter adapt a real local inference service (the demo)",
		Long: `run starts real Fashion-MNIST ONNX variant servers with enforced CPU shares,
the dispatcher, the adaptation loop and a live dashboard, replays a built-in
bursty (Twitter-like) trace against the dispatcher, then replays the same trace
against a static single-variant deployment and prints both summaries: SLO
violations, P99 latency, served accuracy (measured from the labels), planned
accuracy and average cores.

Before the first run it profiles the variants on this machine (about a minute;
cached in --cache-dir, keyed by model hashes, core grid, SLO and machine).
Needs the ONNX Runtime library (make onnxruntime) and Debian's
dataset-fashion-mnist. Time is compressed for the demo: decisions every
--interval (5 s instead of the paper's 30 s), forecast horizon two intervals.
Ctrl-C stops everything it started.

--models DIR runs another family. A family whose DIR/profile.yaml marks
every accuracy 'published' (the random-weight ResNet18..152 of
'make resnet-models', in ~/.cache/infadapter/models/resnet) has no labelled
data set: run plans with the published accuracies, sends seeded random
images of the models' input shape, takes the SLO from that file unless
--slo is given, and reports served accuracy as not measured and the
planned accuracy as "published, not measured".`,
		Example: `  infadapter run
  infadapter run --duration 60s --json
  infadapter run --models ~/.cache/infadapter/models/resnet --duration 60s`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("slo") {
				// A published-accuracy family carries its own SLO (the
				// ResNets' 750 ms); Fashion-MNIST keeps the default.
				fam, err := localmode.PublishedFamily(cfg.ModelsDir)
				if err != nil {
					return badInput(err)
				}
				if fam != nil {
					cfg.SLO = time.Duration(fam.SLOMillis * float64(time.Millisecond))
				}
			}
			if err := cfg.Validate(); err != nil {
				return badInput(err)
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := localmode.Options{}
			if !asJSON && !quiet {
				opts.Status = os.Stderr
				opts.TTY = runStderrIsTTY()
				opts.Info = os.Stderr
			}
			sum, err := localmode.Run(ctx, cfg, opts)
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(os.Stderr, "\ninterrupted; every server process was stopped")
			}
			if sum != nil && len(sum.Runs) > 0 {
				if asJSON {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					if jerr := enc.Encode(sum); jerr != nil {
						return jerr
					}
				} else {
					localmode.WriteSummary(os.Stdout, sum)
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the replayed trace, per run (the baseline replays it again)")
	f.Float64Var(&cfg.BudgetCores, "budget", cfg.BudgetCores, "CPU budget of the variant servers, cores (fractions need cgroup enforcement)")
	f.IntVar(&cfg.CoreUnitMilli, "core-unit", cfg.CoreUnitMilli, "allocation step, millicores")
	f.IntVar(&cfg.MinUnits, "min-units", cfg.MinUnits, "smallest allocation of a running variant, in core units")
	f.DurationVar(&cfg.SLO, "slo", cfg.SLO, "P99 latency SLO")
	f.DurationVar(&cfg.Interval, "interval", cfg.Interval, "time between decisions (paper: 30s; 0: 30s compressed like the trace, 30s × duration / 21m)")
	f.DurationVar(&cfg.FirstDecision, "first-decision", cfg.FirstDecision, "delay before the first decision (paper: 2m)")
	f.StringVar(&cfg.Policy, "policy", cfg.Policy, "adaptive policy: "+strings.Join(localmode.Policies, ", "))
	f.StringVar(&cfg.Baseline, "baseline", cfg.Baseline, "comparison run: "+strings.Join(localmode.Baselines, ", ")+
		" (static-best: the most accurate variant on the whole budget)")
	f.StringVar(&cfg.Forecaster, "forecaster", cfg.Forecaster, "forecaster spec (see infadapter forecast --help)")
	f.Float64Var(&cfg.Reactive.Threshold, "reactive", cfg.Reactive.Threshold,
		"decide between intervals when a second's arrivals exceed this × the capacity of what runs (0: only on the interval, as the paper)")
	f.BoolVar(&cfg.DryRun, "dry-run", cfg.DryRun, "decide and journal only; keep the initial deployment")
	f.Float64Var(&cfg.PeakRPS, "peak", cfg.PeakRPS, "peak RPS of the built-in trace (0: derived from the profile)")
	f.Float64Var(&cfg.MaxRPS, "max-rps", cfg.MaxRPS, "cap of the derived peak, so the load generator keeps up on this machine")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the trace, arrivals and image order")
	f.StringVar(&cfg.ModelsDir, "models", cfg.ModelsDir, "directory of the variants' .onnx files")
	f.StringVar(&cfg.DatasetDir, "dataset", cfg.DatasetDir, "Fashion-MNIST directory (default: Debian's /usr/share/datasets/fashion-mnist)")
	f.StringVar(&cfg.CacheDir, "cache-dir", cfg.CacheDir, "cache for profiles and run artefacts")
	f.StringVar(&cfg.Profile, "profile", cfg.Profile, "use this profile (core units) instead of profiling")
	f.BoolVar(&cfg.Reprofile, "reprofile", cfg.Reprofile, "ignore the cached profile")
	f.StringVar(&cfg.DashboardAddr, "dashboard", cfg.DashboardAddr, `dashboard listen address ("" disables it)`)
	f.StringVar(&cfg.Journal, "journal", cfg.Journal, "decision journal file (default: in the run directory)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON on stdout; no progress output")
	f.BoolVar(&quiet, "quiet", false, "no progress output")
	rootCmd.AddCommand(cmd)
}

// runStderrIsTTY reports whether stderr is a terminal (the status line is
// then rewritten in place).
func runStderrIsTTY() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
