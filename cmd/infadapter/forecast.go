package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/forecast"
	"github.com/infadapter/infadapter/pkg/trace"
)

// forecastFlags are the flags shared by `forecast train` and `forecast eval`.
type forecastFlags struct {
	tracePath string
	trainDays int
	scale     float64
	json      bool
}

func (f *forecastFlags) bind(c *cobra.Command) {
	c.Flags().StringVar(&f.tracePath, "trace", filepath.Join("..", "shared", "data", "twitter-trace", "workload.tbz2"),
		"per-second trace (the Twitter workload.tbz2, or counts/CSV, optionally bzip2/tar)")
	c.Flags().IntVar(&f.trainDays, "train-days", 14, "days of the trace (after dropping zero-seconds) to train on; the rest is the test split")
	c.Flags().Float64Var(&f.scale, "scale", 1, "multiply the trace's rates by this factor first (how forecasters do at another service's scale)")
	c.Flags().BoolVar(&f.json, "json", false, "print machine-readable JSON instead of a table")
}

// load reads the trace, drops zero-seconds (as the paper does) and returns
// the series and the first test minute.
func (f *forecastFlags) load() ([]float64, int, error) {
	fh, err := os.Open(f.tracePath)
	if err != nil {
		return nil, 0, badInput(fmt.Errorf("trace: %w (use --trace)", err))
	}
	defer fh.Close()
	tr, err := trace.Read(fh, f.tracePath)
	if err != nil {
		return nil, 0, badInput(err)
	}
	if f.scale != 1 {
		if tr, err = tr.Scale(f.scale); err != nil {
			return nil, 0, badInput(fmt.Errorf("--scale: %w", err))
		}
	}
	series := forecast.DropZeros(tr.RPS)
	minutes := len(series) / forecast.MinuteSeconds
	from := f.trainDays * 1440
	if f.trainDays < 1 || from >= minutes-1 {
		return nil, 0, badInput(fmt.Errorf("--train-days %d: the trace has %d minutes with load (%.1f days); leave some for testing",
			f.trainDays, minutes, float64(minutes)/1440))
	}
	return series, from, nil
}

// fcProgress returns a progress callback for LSTM training that draws a bar
// on stderr, or nil when quiet (JSON output or stderr is not a terminal).
func fcProgress(quiet bool, desc string) (func(forecast.TrainProgress), func()) {
	if quiet || !fcStderrIsTerminal() {
		return nil, func() {}
	}
	var bar *progressbar.ProgressBar
	return func(p forecast.TrainProgress) {
			if bar == nil {
				bar = progressbar.NewOptions(p.Epochs*p.Batches, progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond))
			}
			_ = bar.Set((p.Epoch-1)*p.Batches + p.Batch)
			if p.Batch == p.Batches {
				bar.Describe(fmt.Sprintf("%s epoch %d/%d loss %.5f", desc, p.Epoch, p.Epochs, p.EpochLoss))
			}
		}, func() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
		}
}

// fcCPUSeconds is this process's user+system CPU time so far. Training time
// is reported both as wall time and as CPU time because the machine is often
// shared (wall time then overstates the cost).
func fcCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func fcStderrIsTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// trainedModels is what `forecast train` produces.
type trainedModels struct {
	LSTM        *forecast.LSTM        `json:"-"`
	Linear      *forecast.Linear      `json:"-"`
	HoltWinters *forecast.HoltWinters `json:"holtWinters"`
	LSTMInfo    forecast.TrainInfo    `json:"lstm"`
	LinearInfo  forecast.TrainInfo    `json:"linear"`
	HWSeconds   float64               `json:"holtWintersFitSeconds"`
}

// trainAll trains the LSTM, fits Linear and Holt-Winters on the train split.
func trainAll(series []float64, from int, cfg forecast.TrainConfig, quiet bool) (trainedModels, error) {
	var out trainedModels
	maxima := forecast.MinuteMaximaFromStart(series)[:from]
	note := fmt.Sprintf("first %d minutes (%.0f days) of the trace after dropping zero-seconds", from, float64(from)/1440)
	cfg.Data = note
	progress, done := fcProgress(quiet, "lstm")
	cfg.Progress = progress
	start, cpu := time.Now(), fcCPUSeconds()
	m, err := forecast.TrainLSTM(maxima, cfg)
	done()
	if err != nil {
		return out, err
	}
	m.Trained.TrainSeconds = time.Since(start).Seconds()
	m.Trained.TrainCPUSeconds = fcCPUSeconds() - cpu
	out.LSTM, out.LSTMInfo = m, m.Trained

	start, cpu = time.Now(), fcCPUSeconds()
	l, err := forecast.FitLinear(series[:from*forecast.MinuteSeconds], forecast.LinearConfig{Data: note})
	if err != nil {
		return out, err
	}
	l.Trained.TrainSeconds = time.Since(start).Seconds()
	l.Trained.TrainCPUSeconds = fcCPUSeconds() - cpu
	out.Linear, out.LinearInfo = l, l.Trained

	start = time.Now()
	hw := forecast.NewHoltWinters()
	if err := hw.Fit(maxima); err != nil {
		return out, err
	}
	out.HWSeconds = time.Since(start).Seconds()
	out.HoltWinters = hw
	return out, nil
}

func newForecastCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "forecast",
		Short: "Train and evaluate load forecasters on a per-second trace",
		Long: `Load forecasters predict the next minute's peak request rate (max requests in
any one second) from per-second history. InfAdapter sizes the service for that
forecast, so forecast errors become SLO violations (under) or wasted cores (over).

Forecaster specs (also used by simulate/run):
` + forecast.Specs,
	}
	c.AddCommand(newForecastTrainCmd(), newForecastEvalCmd(), newForecastPredictCmd())
	return c
}

func newForecastTrainCmd() *cobra.Command {
	var (
		ff     forecastFlags
		outDir string
		cfg    = forecast.DefaultTrainConfig()
	)
	c := &cobra.Command{
		Use:   "train",
		Short: "Train the LSTM (and fit linear, Holt-Winters) on the trace's first 14 days",
		Long: `train reads the trace, drops zero-seconds as the paper does, takes per-minute
maxima (60 s windows sliding by 60 s) and trains on the first --train-days days:

  the paper's LSTM (10 minutes in, 25 relu units, Adam on MSE, 30 epochs, batch
  64, seed 7), the linear forecaster (IRLS for MAPE) and Holt-Winters' factors.

It writes lstm-twitter.json (format infadapter-lstm/v1) and linear-twitter.json
(infadapter-linear/v1) to --out-dir. The copies under pkg/forecast/models are
the built-in models; regenerate them with
  infadapter forecast train --out-dir pkg/forecast/models`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return badInput(err)
			}
			series, from, err := ff.load()
			if err != nil {
				return err
			}
			res, err := trainAll(series, from, cfg, ff.json)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return badInput(err)
			}
			files := map[string]func(io.Writer) error{
				"lstm-twitter.json":   res.LSTM.Save,
				"linear-twitter.json": res.Linear.Save,
			}
			var paths []string
			for _, name := range []string{"lstm-twitter.json", "linear-twitter.json"} {
				p := filepath.Join(outDir, name)
				if err := writeFileAtomic(p, files[name]); err != nil {
					return err
				}
				paths = append(paths, p)
			}
			if ff.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					trainedModels
					Files []string `json:"files"`
				}{res, paths})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "lstm:   %d samples, %d epochs, final scaled MSE %.5f, %.1f s wall, %.1f s CPU → %s\n",
				res.LSTMInfo.Samples, res.LSTMInfo.Epochs, res.LSTMInfo.FinalLoss, res.LSTMInfo.TrainSeconds, res.LSTMInfo.TrainCPUSeconds, paths[0])
			fmt.Fprintf(w, "linear: %d samples, %.2f s wall, %.2f s CPU → %s\n", res.LinearInfo.Samples, res.LinearInfo.TrainSeconds, res.LinearInfo.TrainCPUSeconds, paths[1])
			fmt.Fprintf(w, "holt-winters: alpha %.2f beta %.2f gamma %.2f (season %d min, %d-min blocks), %.2f s\n",
				res.HoltWinters.Alpha, res.HoltWinters.Beta, res.HoltWinters.Gamma, 1440, 60, res.HWSeconds)
			return nil
		},
	}
	ff.bind(c)
	c.Flags().StringVar(&outDir, "out-dir", ".", "directory for lstm-twitter.json and linear-twitter.json")
	c.Flags().IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "LSTM training epochs")
	c.Flags().Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed for initial weights and shuffling")
	c.Flags().IntVar(&cfg.Workers, "workers", 2, "goroutines computing gradients (results do not depend on it)")
	return c
}

func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return badInput(err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// evalRow is one forecaster's line in `forecast eval`.
type evalRow struct {
	forecast.EvalResult
	Spec string `json:"spec"`
	// TrainSeconds is how long training took: measured in this run with
	// --train, else as recorded in the model file; 0 for untrained methods.
	TrainSeconds float64 `json:"trainSeconds"`
	// TrainCPUSeconds is the CPU time of that training (user+system).
	TrainCPUSeconds float64 `json:"trainCpuSeconds"`
	// TrainedInRun is true when the model was trained by this command.
	TrainedInRun bool `json:"trainedInRun"`
	// EvalSeconds is the wall time of forecasting every test minute.
	EvalSeconds float64 `json:"evalSeconds"`
}

func newForecastEvalCmd() *cobra.Command {
	var (
		ff         forecastFlags
		specs      string
		headroom   float64
		train      bool
		lstmPath   string
		linearPath string
		cfg        = forecast.DefaultTrainConfig()
	)
	c := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate forecasters on the trace's test split (after the first 14 days)",
		Long: `eval predicts every test minute's maximum (the minutes after --train-days
days, zero-seconds dropped, 60 s windows) from everything before it and
reports, per forecaster: MAPE, the 95th percentile of the absolute % error,
the % of minutes under-predicted as is and after +--headroom %, and the mean
over-provision (mean of max(0, F−A)/A) as is and after headroom.

Learned forecasters use the built-in models (or --lstm/--linear files);
--train retrains them on the train split first and reports the training time
measured in this run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			series, from, err := ff.load()
			if err != nil {
				return err
			}
			var opts []forecast.Option
			trainSecs := map[string]float64{}
			trainCPU := map[string]float64{}
			inRun := false
			if train {
				res, err := trainAll(series, from, cfg, ff.json)
				if err != nil {
					return err
				}
				opts = append(opts, forecast.WithModel(res.LSTM), forecast.WithLinear(res.Linear))
				trainSecs["lstm"], trainSecs["linear"], trainSecs["holt-winters"] = res.LSTMInfo.TrainSeconds, res.LinearInfo.TrainSeconds, res.HWSeconds
				trainCPU["lstm"], trainCPU["linear"] = res.LSTMInfo.TrainCPUSeconds, res.LinearInfo.TrainCPUSeconds
				inRun = true
			} else {
				m, l, err := loadModelFlags(lstmPath, linearPath)
				if err != nil {
					return err
				}
				if m == nil {
					m, _ = forecast.DefaultLSTM() // nil if none is built in
				}
				if m != nil {
					opts = append(opts, forecast.WithModel(m))
					trainSecs["lstm"], trainCPU["lstm"] = m.Trained.TrainSeconds, m.Trained.TrainCPUSeconds
				}
				if l == nil {
					l, _ = forecast.DefaultLinear()
				}
				if l != nil {
					opts = append(opts, forecast.WithLinear(l))
					trainSecs["linear"], trainCPU["linear"] = l.Trained.TrainSeconds, l.Trained.TrainCPUSeconds
				}
			}
			var rows []evalRow
			for _, spec := range splitSpecs(specs) {
				f, err := forecast.New(spec, opts...)
				if err != nil {
					return badInput(err)
				}
				start := time.Now()
				r, err := forecast.Evaluate(f, series, from, headroom)
				if err != nil {
					return err
				}
				row := evalRow{EvalResult: r, Spec: spec, EvalSeconds: time.Since(start).Seconds()}
				base, _, _ := strings.Cut(spec, ",")
				base, _, _ = strings.Cut(base, ":")
				key := map[string]string{"lstm": "lstm", "paper": "lstm", "linear": "linear", "quantile": "linear",
					"holt-winters": "holt-winters", "hw": "holt-winters"}[base]
				if key != "" {
					row.TrainSeconds, row.TrainCPUSeconds, row.TrainedInRun = trainSecs[key], trainCPU[key], inRun
				}
				rows = append(rows, row)
			}
			if ff.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Trace       string    `json:"trace"`
					TestMinutes int       `json:"testMinutes"`
					FirstMinute int       `json:"firstTestMinute"`
					HeadroomPct float64   `json:"headroomPct"`
					Results     []evalRow `json:"results"`
				}{ff.tracePath, len(series)/forecast.MinuteSeconds - from, from, headroom, rows})
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(w, "forecaster\tMAPE %%\tP95 APE %%\tunder %%\tunder +%g%% %%\tover %%\tover +%g%% %%\ttrain s (CPU s)\teval s\t\n", headroom, headroom)
			for _, r := range rows {
				ts := "-"
				if r.TrainSeconds > 0 {
					ts = fmt.Sprintf("%.2f", r.TrainSeconds)
					if r.TrainCPUSeconds > 0 {
						ts += fmt.Sprintf(" (%.2f)", r.TrainCPUSeconds)
					}
				}
				fmt.Fprintf(w, "%s\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%.2f\t\n", r.Name, r.MAPE, r.P95APE,
					r.UnderPct, r.UnderAfterHeadroomPct, r.OverPct, r.OverAfterHeadroomPct, ts, r.EvalSeconds)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d test minutes (minute %d on, zero-seconds dropped)\n", rows[0].Minutes, from)
			return nil
		},
	}
	ff.bind(c)
	c.Flags().StringVar(&specs, "forecasters", "last,ewma,max:10m,holt-winters,linear,quantile:0.8,quantile:0.95,lstm,paper",
		"comma-separated forecaster specs to evaluate (see `infadapter forecast --help`); a decorator such as headroom=10 applies to the spec before it")
	c.Flags().Float64Var(&headroom, "headroom", forecast.PaperHeadroomPct, "headroom % for the \"after headroom\" columns")
	c.Flags().BoolVar(&train, "train", false, "train lstm, linear and holt-winters on the train split first (else use built-in models)")
	c.Flags().StringVar(&lstmPath, "lstm", "", "LSTM model file (infadapter-lstm/v1) instead of the built-in one")
	c.Flags().StringVar(&linearPath, "linear", "", "linear model file (infadapter-linear/v1) instead of the built-in one")
	c.Flags().IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "LSTM training epochs (with --train)")
	c.Flags().Uint64Var(&cfg.Seed, "seed", cfg.Seed, "LSTM seed (with --train)")
	return c
}

// splitSpecs splits a comma-separated list of forecaster specs. Decorators
// also use commas ("last,headroom=10"), so a piece with "=" belongs to the
// spec before it: "last,ewma,headroom=10" is [last, "ewma,headroom=10"].
func splitSpecs(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
		case strings.Contains(p, "=") && len(out) > 0:
			out[len(out)-1] += "," + p
		default:
			out = append(out, p)
		}
	}
	return out
}

func loadModelFlags(lstmPath, linearPath string) (*forecast.LSTM, *forecast.Linear, error) {
	var (
		m *forecast.LSTM
		l *forecast.Linear
	)
	if lstmPath != "" {
		b, err := os.ReadFile(lstmPath)
		if err != nil {
			return nil, nil, badInput(err)
		}
		if m, err = forecast.LoadLSTM(strings.NewReader(string(b))); err != nil {
			return nil, nil, badInput(fmt.Errorf("%s: %w", lstmPath, err))
		}
	}
	if linearPath != "" {
		b, err := os.ReadFile(linearPath)
		if err != nil {
			return nil, nil, badInput(err)
		}
		if l, err = forecast.LoadLinear(strings.NewReader(string(b))); err != nil {
			return nil, nil, badInput(fmt.Errorf("%s: %w", linearPath, err))
		}
	}
	return m, l, nil
}

func newForecastPredictCmd() *cobra.Command {
	var (
		spec       string
		lstmPath   string
		linearPath string
		asJSON     bool
	)
	c := &cobra.Command{
		Use:   "predict [FILE]",
		Short: "Forecast the next minute's peak from per-second counts (FILE or stdin)",
		Long: `predict reads per-second counts (whitespace-separated, optionally bzip2/tar,
or CSV second,rps) from FILE or stdin — the whole history, oldest first, ending
now — and prints the forecaster's prediction of the next minute's peak RPS.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				r    io.Reader = cmd.InOrStdin()
				name           = "stdin"
			)
			if len(args) == 1 {
				fh, err := os.Open(args[0])
				if err != nil {
					return badInput(err)
				}
				defer fh.Close()
				r, name = fh, args[0]
			}
			tr, err := trace.Read(r, name)
			if err != nil {
				return badInput(err)
			}
			m, l, err := loadModelFlags(lstmPath, linearPath)
			if err != nil {
				return err
			}
			var opts []forecast.Option
			if m != nil {
				opts = append(opts, forecast.WithModel(m))
			}
			if l != nil {
				opts = append(opts, forecast.WithLinear(l))
			}
			f, err := forecast.New(spec, opts...)
			if err != nil {
				return badInput(err)
			}
			v, err := f.Forecast(tr.RPS)
			if err != nil {
				if errors.Is(err, forecast.ErrBadValue) || errors.Is(err, forecast.ErrShortHistory) || errors.Is(err, forecast.ErrEmptyHistory) {
					return badInput(err)
				}
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
					"forecaster": f.Name(), "historySeconds": len(tr.RPS), "nextMinutePeakRps": v})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%.2f\n", v)
			return nil
		},
	}
	c.Flags().StringVar(&spec, "forecaster", "paper", "forecaster spec (see `infadapter forecast --help`)")
	c.Flags().StringVar(&lstmPath, "lstm", "", "LSTM model file instead of the built-in one")
	c.Flags().StringVar(&linearPath, "linear", "", "linear model file instead of the built-in one")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func init() { rootCmd.AddCommand(newForecastCmd()) }
