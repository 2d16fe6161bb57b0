package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/backend/local"
	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/profile"
	"github.com/infadapter/infadapter/pkg/profiler"
)

func init() {
	cfg := profiler.Default()
	var (
		family, endpoint, model, out string
		variants, coresFlag          string
		enforcement, datasetDir      string
		measureAcc, asJSON, quiet    bool
		name                         string
	)
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Measure each variant's capacity (highest Poisson RPS with P99 ≤ SLO) per core count",
		Long: `profile measures, per variant and core count, the highest Poisson request
rate whose P99 latency stays within the SLO, the way the InfAdapter paper does:
saturation throughput first (closed loop), then a binary search over open-loop
Poisson rates in [lo·peak, hi·peak]; a rate passes when every repeat keeps the
P99 of every 2 s window within the SLO. The result is a profile file
(pkg/profile YAML) the optimiser plans with.

Local mode (--family DIR): every DIR/*.onnx is a variant (order, accuracy and
accuracy source from DIR/profile.yaml when present; that file may list
accuracies without capacities, as 'make resnet-models' writes it); each is started alone
through the local backend at each --cores count with the CPU enforced (cgroup
quota or affinity; see the log), then measured. --accuracy re-measures top-1
accuracy on the Fashion-MNIST test set (Debian dataset-fashion-mnist).
Requests are images of each model's input shape (from its metadata):
zeros for Fashion-MNIST, seeded random pixels otherwise. Accuracies marked
'accuracySource: published' (the random-weight ResNet family) are shown as
"published, not measured".

Endpoint mode (--endpoint URL --model NAME): measures any OIP v2 endpoint;
--cores is the single core count to record the result under.

On a 2-core machine the load generator shares the CPUs with the server, so
capacities of the cheapest variants are bounded by the client and HTTP.`,
		Example: `  infadapter profile --family third_party/models/fmnist --cores 1,2 --out fmnist-profile.yaml
  infadapter profile --endpoint http://127.0.0.1:8081 --model cnn-s --cores 1 --slo 20ms
  infadapter profile --family ~/.cache/infadapter/models/resnet --cores 1,2 --slo 750ms --out resnet-profile.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cores, err := parseCores(coresFlag)
			var errs []error
			if err != nil {
				errs = append(errs, err)
			}
			if (family == "") == (endpoint == "") {
				errs = append(errs, errors.New("give exactly one of --family DIR and --endpoint URL"))
			}
			if endpoint != "" && model == "" {
				errs = append(errs, errors.New("--endpoint needs --model NAME"))
			}
			if endpoint != "" && len(cores) != 1 {
				errs = append(errs, errors.New("--endpoint: --cores must be a single count (the endpoint's allocation)"))
			}
			if err := cfg.Validate(); err != nil {
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return badInput(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			showBar := !asJSON && !quiet && profStderrIsTerminal()

			var prof profile.Profile
			var points []profiler.Point
			if endpoint != "" {
				bar := newProfileBar(showBar, cfg.ProbesPerPoint(), "profiling "+model)
				p, err := profiler.New(cfg, bar.step)
				if err != nil {
					return badInput(err)
				}
				pt, detail, err := p.ProfileEndpoint(ctx, profiler.Target{URL: strings.TrimRight(endpoint, "/"), Model: model}, model, cores[0])
				bar.finish()
				if err != nil {
					return err
				}
				if name == "" {
					name = model
				}
				prof = profile.Profile{Name: name, SLOMillis: float64(cfg.SLO) / 1e6, Rule: profile.RuleInterpolate,
					Source:   "measured by `infadapter profile --endpoint " + endpoint + "`",
					Variants: []profile.Variant{{Name: model, Capacity: []profile.Point{pt}}}}
				points = []profiler.Point{detail}
			} else {
				base, vs, err := profiler.LoadFamily(family)
				if err != nil {
					return badInput(err)
				}
				if variants != "" {
					if vs, err = selectVariants(vs, variants); err != nil {
						return badInput(err)
					}
				}
				if measureAcc {
					set, err := fashionmnist.Load(datasetDir, fashionmnist.Test, 0)
					if err != nil {
						return err
					}
					for i := range vs {
						acc, err := profiler.MeasureAccuracy(ctx, vs[i].Model, set)
						if err != nil {
							return fmt.Errorf("accuracy of %s: %w", vs[i].Name, err)
						}
						vs[i].Accuracy, vs[i].AccuracySource = acc, "measured"
						if !asJSON && !quiet {
							fmt.Fprintf(os.Stderr, "%s: test accuracy %.2f %% (%d images)\n", vs[i].Name, 100*acc, set.Len())
						}
					}
				}
				if name == "" {
					name = "fmnist"
					if base != nil && base.Name != "" {
						name = base.Name
					}
				}
				log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				be, err := local.New(local.Config{Enforcement: local.Mode(enforcement), Logger: log})
				if err != nil {
					return err
				}
				defer func() {
					cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = be.Close(cctx)
				}()
				if !asJSON && !quiet {
					fmt.Fprintf(os.Stderr, "cpu enforcement: %s\n", be.Enforcement())
				}
				// As in `run`: a quota only caps; the cgroup's weight makes it a
				// guarantee while other processes compete for the CPUs.
				if w, err := be.ReserveCPU(float64(cores[len(cores)-1])); err != nil {
					fmt.Fprintf(os.Stderr, "could not raise the servers' CPU weight (%v); under contention they may get less than their quota\n", err)
				} else if w != "" && !asJSON && !quiet {
					fmt.Fprintf(os.Stderr, "servers' cgroup weight: %s\n", w)
				}
				bar := newProfileBar(showBar, len(vs)*len(cores)*cfg.ProbesPerPoint(), "profiling")
				p, err := profiler.New(cfg, bar.step)
				if err != nil {
					return badInput(err)
				}
				prof, points, err = p.ProfileLocal(ctx, be, name, vs, cores)
				bar.finish()
				if err != nil {
					return err
				}
			}
			y, err := profiler.MarshalProfile(prof)
			if err != nil {
				return err
			}
			y = append(accuracyComment(prof), y...)
			if out != "" {
				if err := os.WriteFile(out, y, 0o644); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"profile": prof, "points": points, "config": cfg, "accuracy": accuracyLabels(prof)})
			}
			if out == "" {
				_, err = os.Stdout.Write(y)
				return err
			}
			for _, pt := range points {
				fmt.Fprintf(os.Stderr, "%-14s %d core(s): peak %8.1f rps, capacity %8.1f rps (%d probes, %.0f s)\n",
					pt.Variant, pt.Cores, pt.Result.PeakRPS, pt.Result.Capacity, len(pt.Result.Probes), pt.Seconds)
			}
			for _, v := range prof.Variants {
				if v.AccuracySource != "" {
					fmt.Fprintf(os.Stderr, "%-14s accuracy %s\n", v.Name, v.FormatAccuracy())
				}
			}
			fmt.Fprintf(os.Stderr, "wrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&family, "family", "", "model family directory (variants = *.onnx, metadata from profile.yaml)")
	f.StringVar(&variants, "variants", "", "comma-separated subset of the family's variants")
	f.StringVar(&endpoint, "endpoint", "", "profile this OIP v2 base URL instead of local variants")
	f.StringVar(&model, "model", "", "model name at --endpoint")
	f.StringVar(&name, "name", "", "profile name (default: the family's, or --model)")
	f.StringVar(&coresFlag, "cores", "1,2", "core counts to measure (comma-separated integers)")
	f.StringVar(&out, "out", "", "write the profile YAML here (default: stdout)")
	f.StringVar(&enforcement, "enforcement", "auto", "CPU enforcement: auto, cgroup-v2, cgroup-v1, affinity, none")
	f.BoolVar(&measureAcc, "accuracy", false, "measure each variant's accuracy on the Fashion-MNIST test set first")
	f.StringVar(&datasetDir, "dataset", "", "Fashion-MNIST directory (default "+fashionmnist.DefaultDir+")")
	f.DurationVar(&cfg.SLO, "slo", cfg.SLO, "P99 latency SLO")
	f.DurationVar(&cfg.ProbeDuration, "probe", cfg.ProbeDuration, "length of one Poisson probe (whole seconds)")
	f.DurationVar(&cfg.PeakDuration, "peak", cfg.PeakDuration, "length of the closed-loop saturation run")
	f.IntVar(&cfg.PeakClients, "peak-clients", cfg.PeakClients, "concurrent clients of the saturation run")
	f.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "runs per probe; all must pass")
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "most binary-search steps per point")
	f.Float64Var(&cfg.Lo, "lo", cfg.Lo, "search lower bound as a fraction of the peak")
	f.Float64Var(&cfg.Hi, "hi", cfg.Hi, "search upper bound as a fraction of the peak")
	f.Float64Var(&cfg.MaxRPS, "max-rps", cfg.MaxRPS, "cap on the rates tried (0 = none)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the Poisson arrivals")
	f.BoolVar(&asJSON, "json", false, "print the profile and every probe as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	rootCmd.AddCommand(cmd)
}

// accuracyComment heads the profile YAML: which accuracies were not
// measured here (the file's accuracySource fields say it too, but a reader
// of the numbers should not have to look).
func accuracyComment(p profile.Profile) []byte {
	var names []string
	for _, v := range p.Variants {
		if v.AccuracySource == profile.SourcePublished {
			names = append(names, v.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return []byte("# accuracy of " + strings.Join(names, ", ") + ": " + profile.PublishedLabel +
		" (the model authors' figures; capacities are measured)\n")
}

// accuracyLabels maps each variant to where its accuracy comes from.
func accuracyLabels(p profile.Profile) map[string]string {
	out := map[string]string{}
	for _, v := range p.Variants {
		if l := v.AccuracyLabel(); l != "" {
			out[v.Name] = l
		}
	}
	return out
}

func parseCores(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--cores %q: %q is not a positive integer", s, f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("--cores %q: counts must be ascending", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func selectVariants(vs []profiler.LocalVariant, list string) ([]profiler.LocalVariant, error) {
	by := map[string]profiler.LocalVariant{}
	for _, v := range vs {
		by[v.Name] = v
	}
	var out []profiler.LocalVariant
	for _, n := range strings.Split(list, ",") {
		v, ok := by[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("--variants: no variant %q in the family", n)
		}
		out = append(out, v)
	}
	return out, nil
}

func profStderrIsTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// profileBar advances one step per finished load run; without a terminal
// it prints nothing.
type profileBar struct{ bar *progressbar.ProgressBar }

func newProfileBar(show bool, total int, desc string) *profileBar {
	if !show {
		return &profileBar{}
	}
	return &profileBar{bar: progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))}
}

func (b *profileBar) step(msg string) {
	if b.bar != nil {
		b.bar.Describe(msg)
		_ = b.bar.Add(1)
	}
}

func (b *profileBar) finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}
