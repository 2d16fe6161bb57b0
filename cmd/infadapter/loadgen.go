package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/loadgen"
	"github.com/infadapter/infadapter/pkg/trace"
)

type loadgenFlags struct {
	cfg       loadgen.Config
	protocol  string
	arrivals  string
	rps       float64
	duration  time.Duration
	steps     string
	tracePath string
	synthetic string
	peak      float64
	from, to  int
	dataset   string
	dataDir   string
	samples   int
	shape     string
	images    int
	json      bool
	quiet     bool
	shapeSet  bool // --shape given explicitly
}

func init() {
	f := &loadgenFlags{cfg: loadgen.Default()}
	cmd := &cobra.Command{
		Use:   "loadgen",
		Short: "Open-loop load generator for OIP v2 / TF Serving endpoints (latency, SLO violations, served accuracy)",
		Long: `loadgen replays a load schedule against an inference endpoint and reports
P50/P95/P99 latency, SLO violations, errors by kind, achieved RPS, served
accuracy and per-variant counts (from the X-Infadapter-Variant header).

It is open-loop: each request is sent at its planned time whether or not
earlier ones were answered, and latency is measured from the planned time,
so a stalled server shows up in the figures (no coordinated omission).
Arrivals are Poisson within each second (seeded; --arrivals exact|even).

Schedule (one of):
  --rps 50 --duration 60s          constant rate
  --steps 10x30,80x30,10x30        RPSxSECONDS steps
  --trace FILE [--from --to]       per-second counts (whitespace-separated,
                                   CSV second,rps, bzip2/tar accepted)
  --synthetic SPEC                 e.g. "diurnal:seconds=600,base=20,peak=120"
--peak rescales a trace or synthetic shape to that peak RPS.

Bodies: --dataset fashion-mnist (default; Debian package
dataset-fashion-mnist, test split, labelled, so accuracy is measured),
--dataset random (seeded random images of the model's input shape, asked
from the endpoint's model metadata unless --shape is given: for families
without a labelled data set such as the random-weight ResNets of
'make resnet-models'; served accuracy is then reported as not measured)
or --dataset zeros --shape 1,28,28 (unlabelled, for benchmarks).`,
		Example: `  infadapter loadgen --target http://127.0.0.1:8080 --model fmnist --rps 100 --duration 30s
  infadapter loadgen --model fmnist --steps 20x20,150x20,20x20 --slo 750ms --json
  infadapter loadgen --target http://127.0.0.1:8081 --model resnet18 --dataset random --rps 10 --duration 30s
  infadapter loadgen --model fmnist --trace ../shared/data/twitter-trace/workload.tbz2 --from 1300920 --to 1301520 --peak 150`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			f.shapeSet = cmd.Flags().Changed("shape")
			return runLoadgen(ctx, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Target, "target", "http://127.0.0.1:8080", "base URL of the endpoint (dispatcher or model server)")
	fl.StringVar(&f.cfg.Model, "model", "", "model name the requests address (required)")
	fl.StringVar(&f.protocol, "protocol", "v2", "wire protocol: v2 (OIP v2 /v2/models/{m}/infer) or tf (TF Serving /v1/models/{m}:predict)")
	fl.DurationVar(&f.cfg.SLO, "slo", 750*time.Millisecond, "latency SLO; slower answers, errors and timeouts are violations")
	fl.DurationVar(&f.cfg.Timeout, "timeout", f.cfg.Timeout, "per-request timeout, from the planned send time")
	fl.StringVar(&f.arrivals, "arrivals", "poisson", "arrivals within a second: poisson, exact (round(rps) at uniform times) or even")
	fl.Uint64Var(&f.cfg.Seed, "seed", f.cfg.Seed, "random seed of the arrivals")
	fl.IntVar(&f.cfg.MaxRequests, "max-requests", f.cfg.MaxRequests, "stop after sending this many requests")
	fl.IntVar(&f.cfg.MaxInFlight, "max-in-flight", f.cfg.MaxInFlight, "outstanding requests cap; arrivals beyond it count as 'overload' errors")
	fl.Float64Var(&f.rps, "rps", 0, "constant rate (requests/s), with --duration")
	fl.DurationVar(&f.duration, "duration", 30*time.Second, "length of a constant-rate run (whole seconds)")
	fl.StringVar(&f.steps, "steps", "", "step schedule RPSxSECONDS,... e.g. 10x30,80x30")
	fl.StringVar(&f.tracePath, "trace", "", "per-second trace file to replay")
	fl.StringVar(&f.synthetic, "synthetic", "", "synthetic trace spec (shapes: "+strings.Join(trace.ShapeNames(), ", ")+")")
	fl.Float64Var(&f.peak, "peak", 0, "rescale the trace so its busiest second has this RPS (0: as is)")
	fl.IntVar(&f.from, "from", 0, "first second of the trace to replay")
	fl.IntVar(&f.to, "to", 0, "end second (exclusive) of the trace window; 0 = end")
	fl.StringVar(&f.dataset, "dataset", "fashion-mnist", "request bodies: fashion-mnist (labelled), random (unlabelled images of the model's input shape) or zeros")
	fl.StringVar(&f.dataDir, "data-dir", fashionmnist.DefaultDir, "directory of the Fashion-MNIST IDX files")
	fl.IntVar(&f.samples, "samples", 1000, "distinct Fashion-MNIST test images to cycle through (0: all 10,000)")
	fl.StringVar(&f.shape, "shape", "1,28,28", "tensor shape (without batch) for --dataset zeros; for --dataset random the default is the model's, from its metadata")
	fl.IntVar(&f.images, "images", 8, "distinct images for --dataset random (each 3x224x224 request body is ~0.75 MB)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON (no progress bar)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
	rootCmd.AddCommand(cmd)
}

func runLoadgen(ctx context.Context, f *loadgenFlags, out io.Writer) error {
	var err error
	if f.cfg.Protocol, err = loadgen.ParseProtocol(f.protocol); err != nil {
		return badInput(err)
	}
	if f.cfg.Arrivals, err = trace.ParseArrivalMode(f.arrivals); err != nil {
		return badInput(err)
	}
	if f.cfg.Model == "" {
		return badInput(errors.New("--model is required"))
	}
	if err := f.cfg.Validate(); err != nil {
		return badInput(err)
	}
	sched, err := loadgenSchedule(f)
	if err != nil {
		return badInput(err)
	}
	src, err := loadgenSource(ctx, f)
	if err != nil {
		return err
	}
	var opts []loadgen.Option
	done := func() {}
	if !f.json && !f.quiet && fcStderrIsTerminal() {
		var total float64
		for _, v := range sched {
			total += v
		}
		bar := progressbar.NewOptions(int(total), progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("loadgen "+f.cfg.Model), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond))
		opts = append(opts, loadgen.WithProgress(func(d, t int) {
			if t > bar.GetMax() {
				bar.ChangeMax(t)
			}
			_ = bar.Set(d)
		}))
		done = func() { _ = bar.Finish(); fmt.Fprintln(os.Stderr) }
	}
	r, err := loadgen.NewRunner(f.cfg, src, opts...)
	if err != nil {
		return badInput(err)
	}
	defer r.Close()
	rep, _, err := r.Run(ctx, sched)
	done()
	if err != nil {
		return badInput(err)
	}
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printLoadgenReport(out, rep)
	return nil
}

func loadgenSchedule(f *loadgenFlags) ([]float64, error) {
	n := 0
	for _, set := range []bool{f.rps > 0, f.steps != "", f.tracePath != "", f.synthetic != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give exactly one schedule: --rps, --steps, --trace or --synthetic")
	}
	var tr trace.Trace
	switch {
	case f.rps > 0:
		secs := int(f.duration / time.Second)
		return loadgen.Constant(f.rps, secs)
	case f.steps != "":
		return loadgen.ParseSteps(f.steps)
	case f.tracePath != "":
		fh, err := os.Open(f.tracePath)
		if err != nil {
			return nil, fmt.Errorf("--trace: %w", err)
		}
		defer fh.Close()
		if tr, err = trace.Read(fh, f.tracePath); err != nil {
			return nil, fmt.Errorf("--trace %s: %w", f.tracePath, err)
		}
	default:
		s, err := trace.ParseSynthetic(f.synthetic)
		if err != nil {
			return nil, fmt.Errorf("--synthetic: %w", err)
		}
		if tr, err = s.Generate(); err != nil {
			return nil, fmt.Errorf("--synthetic: %w", err)
		}
	}
	var err error
	if f.from != 0 || f.to != 0 {
		if tr, err = tr.Window(f.from, f.to); err != nil {
			return nil, err
		}
	}
	if f.peak > 0 {
		if tr, err = tr.ScaleToPeak(f.peak); err != nil {
			return nil, err
		}
	}
	return tr.RPS, nil
}

func loadgenSource(ctx context.Context, f *loadgenFlags) (loadgen.Source, error) {
	switch f.dataset {
	case "fashion-mnist":
		set, err := fashionmnist.Load(f.dataDir, fashionmnist.Test, f.samples)
		if err != nil {
			if errors.Is(err, fashionmnist.ErrNotInstalled) {
				return nil, fmt.Errorf("%w (apt-get install -y dataset-fashion-mnist, or --dataset random)", err)
			}
			return nil, err
		}
		return loadgen.FashionMNIST(f.cfg.Protocol, set, 0)
	case "zeros", "random":
		var shape []int64
		if f.dataset == "random" && !f.shapeSet {
			mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			s, err := loadgen.InputShape(mctx, nil, f.cfg.Target, f.cfg.Model)
			if err != nil {
				return nil, fmt.Errorf("--dataset random: the model's input shape (give --shape to skip asking): %w", err)
			}
			shape = s
		} else {
			var err error
			if shape, err = parseShape(f.shape); err != nil {
				return nil, badInput(err)
			}
		}
		var s loadgen.Samples
		var err error
		if f.dataset == "random" {
			if f.images < 1 {
				return nil, badInput(fmt.Errorf("--images %d: want at least 1", f.images))
			}
			s, err = loadgen.Random(f.cfg.Protocol, shape, f.images, f.cfg.Seed)
		} else {
			s, err = loadgen.Zeros(f.cfg.Protocol, shape)
		}
		if err != nil {
			return nil, badInput(err)
		}
		return s, nil
	}
	return nil, badInput(fmt.Errorf("--dataset %q: want fashion-mnist, random or zeros", f.dataset))
}

// parseShape parses "3,224,224".
func parseShape(spec string) ([]int64, error) {
	var shape []int64
	for _, p := range strings.Split(spec, ",") {
		var d int64
		if _, err := fmt.Sscan(strings.TrimSpace(p), &d); err != nil || d < 1 {
			return nil, fmt.Errorf("--shape %q: want positive integers separated by commas", spec)
		}
		shape = append(shape, d)
	}
	return shape, nil
}

func printLoadgenReport(w io.Writer, r *loadgen.Report) {
	fmt.Fprintf(w, "target      %s  model %s  protocol %s\n", r.Target, r.Model, r.Protocol)
	fmt.Fprintf(w, "schedule    %d s, offered %d requests (%.1f RPS), wall %.1f s\n", r.Seconds, r.Offered, r.OfferedRPS, r.WallSeconds)
	fmt.Fprintf(w, "achieved    %.1f RPS (%d ok)\n", r.AchievedRPS, r.OK)
	fmt.Fprintf(w, "latency     p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms (from planned send time)\n",
		r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max)
	fmt.Fprintf(w, "SLO %.0f ms  violations %d (%.2f%%)\n", r.SLOMs, r.SLOViolations, r.SLOViolationPct)
	if r.Accuracy != nil {
		fmt.Fprintf(w, "accuracy    %.2f%% served (%d/%d labelled answers)\n", 100**r.Accuracy, r.Correct, r.Labelled)
	} else if r.AccuracyNote != "" {
		fmt.Fprintf(w, "accuracy    %s\n", r.AccuracyNote)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors     ")
		for _, k := range lgSortedKeys(r.Errors) {
			fmt.Fprintf(w, " %s=%d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
	if len(r.PerVariant) > 0 {
		fmt.Fprintf(w, "variants   ")
		for _, k := range lgSortedKeys(r.PerVariant) {
			fmt.Fprintf(w, " %s=%d", k, r.PerVariant[k])
		}
		fmt.Fprintln(w)
	}
}

func lgSortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
