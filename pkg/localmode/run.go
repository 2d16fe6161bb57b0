package localmode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/backend/local"
	"github.com/infadapter/infadapter/pkg/dashboard"
	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/dispatcher"
	"github.com/infadapter/infadapter/pkg/loadgen"
	"github.com/infadapter/infadapter/pkg/loop"
	"github.com/infadapter/infadapter/pkg/modelserver"
	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
	"github.com/infadapter/infadapter/pkg/trace"
)

// ModelName is the logical model the dispatcher serves.
const ModelName = "fmnist"

// RunSummary is the outcome of one replay.
type RunSummary struct {
	Policy   string `json:"policy"`
	Requests int    `json:"requests"`
	OK       int    `json:"ok"`
	Errors   int    `json:"errors"`
	// ErrorKinds counts failed requests by pkg/loadgen's error kind.
	ErrorKinds map[string]int `json:"errorKinds,omitempty"`
	Violations int            `json:"sloViolations"`
	// ViolationPct counts errors, timeouts and answers slower than the SLO.
	ViolationPct float64 `json:"sloViolationPct"`
	P99Millis    float64 `json:"p99Ms"`
	// ServedAccuracy is measured: argmax of the answers vs the labels. For
	// a family without labels (published accuracies) it is 0 and
	// AccuracyNote says it was not measured.
	ServedAccuracy float64 `json:"servedAccuracy"`
	// AccuracyNote, when set, says served accuracy was not measured and
	// planned/routed accuracy are published figures.
	AccuracyNote string `json:"accuracyNote,omitempty"`
	// PlannedAccuracy is Σ share × profiled accuracy of the plan in force,
	// weighted by the requests of each second.
	PlannedAccuracy float64 `json:"plannedAccuracy"`
	// RoutedAccuracy is Σ (requests answered by v / all) × accuracy of v:
	// what the actual routing should have achieved.
	RoutedAccuracy float64        `json:"routedAccuracy"`
	AvgCores       float64        `json:"avgCores"`
	PerVariant     map[string]int `json:"perVariant"`
	Decisions      int            `json:"decisions"`
	// DryRun: the policy only decided; the initial deployment served.
	DryRun  bool `json:"dryRun,omitempty"`
	Applied int  `json:"applied"`
	Seconds int  `json:"seconds"`
}

// TraceInfo describes the replayed trace.
type TraceInfo struct {
	Name    string  `json:"name"`
	Seconds int     `json:"seconds"`
	Base    float64 `json:"baseRps"`
	Peak    float64 `json:"peakRps"`
	Mean    float64 `json:"meanRps"`
}

// Summary is what `infadapter run` reports.
type Summary struct {
	Config        Config          `json:"config"`
	Enforcement   string          `json:"enforcement"`
	ProfileSource string          `json:"profileSource"`
	Profile       profile.Profile `json:"profile"`
	Trace         TraceInfo       `json:"trace"`
	Runs          []RunSummary    `json:"runs"`
	Dashboard     string          `json:"dashboard,omitempty"`
	RunDir        string          `json:"runDir"`
	// AccuracyNote is set for a family with published accuracies
	// (NotMeasuredNote).
	AccuracyNote string `json:"accuracyNote,omitempty"`
}

// Options are the process-level collaborators of Run.
type Options struct {
	// Status receives the one-line live status (nil: none).
	Status io.Writer
	// TTY rewrites the status line in place; otherwise a line is printed
	// every 10 s.
	TTY bool
	// Log receives structured logs (nil: discard).
	Log *slog.Logger
	// Info receives human messages (dashboard URL, phases); nil: none.
	Info io.Writer
}

type runner struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	clk  clock.WithTicker

	prof     profile.Profile
	plan     []optimizer.Variant
	accuracy map[string]float64
	models   map[string]string
	samples  loadgen.Samples
	// published is the family file when every accuracy is published (no
	// labels: served accuracy is not measured); nil for Fashion-MNIST.
	published *profile.Profile

	disp    *dispatcher.Dispatcher
	dispURL string
	backend *local.Backend
	reg     *prometheus.Registry

	dash    *dashState
	loopReg gathererSwitch
}

// gathererSwitch is a prometheus.Gatherer for the registry of the run in
// progress (each run has its own loop and metrics).
type gathererSwitch struct {
	mu sync.Mutex
	g  prometheus.Gatherer
}

func (s *gathererSwitch) set(g prometheus.Gatherer) { s.mu.Lock(); s.g = g; s.mu.Unlock() }

// Gather implements prometheus.Gatherer.
func (s *gathererSwitch) Gather() ([]*dto.MetricFamily, error) {
	s.mu.Lock()
	g := s.g
	s.mu.Unlock()
	if g == nil {
		return nil, nil
	}
	return g.Gather()
}

func (r *runner) info(format string, a ...any) {
	if r.opts.Info != nil {
		fmt.Fprintf(r.opts.Info, format+"\n", a...)
	}
}

// Run executes `infadapter run`. It returns when both replays are done or
// ctx is canceled (then with ctx's error), after stopping every process it
// started.
func Run(ctx context.Context, cfg Config, opts Options) (_ *Summary, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, opts: opts, log: opts.Log, clk: clock.RealClock{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if _, err := modelserver.LocateLibrary(); err != nil {
		return nil, err
	}
	models, err := findModels(resolveModelsDir(cfg.ModelsDir))
	if err != nil {
		return nil, err
	}
	r.models = models
	if r.published, err = PublishedFamily(cfg.ModelsDir); err != nil {
		return nil, err
	}
	if r.published != nil {
		// No labelled data set: published accuracies, random images.
		if err := checkPublished(r.published, models); err != nil {
			return nil, err
		}
		if r.samples, err = randomSamples(r.published, models, cfg.Seed); err != nil {
			return nil, err
		}
	} else {
		set, err := fashionmnist.Load(cfg.DatasetDir, fashionmnist.Test, 0)
		if err != nil {
			return nil, fmt.Errorf("fashion-mnist test set: %w", err)
		}
		samples, err := loadgen.FashionMNIST(loadgen.ProtocolV2, set, 0)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x696d67)) // "img"
		rng.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
		r.samples = samples
	}

	runDir := filepath.Join(cfg.CacheDir, "runs", time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	serverLog, err := os.Create(filepath.Join(runDir, "servers.log"))
	if err != nil {
		return nil, err
	}
	defer serverLog.Close()

	r.backend, err = local.New(local.Config{Command: cfg.ServerCommand, Env: cfg.ServerEnv,
		Output: serverLog, Logger: r.log, WarmUp: r.warmUp()})
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if cerr := r.backend.Close(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("stopping variant servers: %w", cerr)
		}
	}()
	enf := r.backend.Enforcement()
	if !enf.Fractional && cfg.CoreUnitMilli%1000 != 0 {
		r.info("CPU enforcement %s cannot split cores: using whole-core units", enf.Mode)
		r.cfg.CoreUnitMilli = 1000
		r.cfg.MinUnits = max(1, min(r.cfg.MinUnits, r.cfg.Units()))
		cfg = r.cfg
		if cfg.Units() < 1 {
			return nil, fmt.Errorf("budget %v cores: under %s enforcement the budget must be at least 1 whole core", cfg.BudgetCores, enf.Mode)
		}
	}
	r.info("CPU enforcement: %s", enf)
	if w, err := r.backend.ReserveCPU(cfg.BudgetCores); err != nil {
		r.info("could not raise the servers' CPU weight (%v); under contention they may get less than their quota", err)
	} else if w != "" {
		r.info("servers' cgroup weight: %s (their quota is then also a guarantee under contention)", w)
	}

	// Dispatcher (first: the profile is measured through it).
	r.reg = prometheus.NewRegistry()
	dcfg := dispatcher.Default()
	dcfg.SLO = cfg.SLO
	r.disp, err = dispatcher.New(dcfg, dispatcher.WithRegisterer(r.reg), dispatcher.WithLogger(r.log))
	if err != nil {
		return nil, err
	}
	defer r.disp.Close()
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dispatcher listen: %w", err)
	}
	dsrv := &http.Server{Handler: r.disp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = dsrv.Serve(dl) }()
	defer shutdown(dsrv)
	r.dispURL = "http://" + dl.Addr().String()

	// Dashboard.
	r.dash = newDashState(cfg)
	r.dash.setStage("profiling")
	journals := &journalSwitch{}
	dashURL := ""
	if cfg.DashboardAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/", dashboard.Handler(r.dash, journals))
		mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{r.reg, &r.loopReg}, promhttp.HandlerOpts{}))
		ln, lerr := net.Listen("tcp", cfg.DashboardAddr)
		if lerr != nil {
			// The port may be taken (another run); any free port will do.
			ln, lerr = net.Listen("tcp", "127.0.0.1:0")
		}
		if lerr != nil {
			return nil, fmt.Errorf("dashboard listen: %w", lerr)
		}
		hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hsrv.Serve(ln) }()
		defer shutdown(hsrv)
		dashURL = "http://" + ln.Addr().String() + "/"
		r.info("dashboard: %s", dashURL)
	}

	prof, src, err := r.loadProfile(ctx, models)
	if err != nil {
		return nil, err
	}
	r.prof = prof
	r.plan = planVariants(prof, cfg.Units())
	r.accuracy = map[string]float64{}
	for _, v := range r.plan {
		r.accuracy[v.Name] = v.Accuracy
	}
	tr, info, err := r.buildTrace()
	if err != nil {
		return nil, err
	}
	r.dash.setPlan(r.plan)
	r.dash.setMessage(fmt.Sprintf("trace %s · CPU enforcement %s · profile %s · decisions every %v, forecast horizon %v",
		info.Name, enf.Mode, src, cfg.EffectiveInterval(), 2*cfg.EffectiveInterval()))
	sum := &Summary{Config: cfg, Enforcement: enf.String(), ProfileSource: src, Profile: prof, Trace: info, RunDir: runDir, Dashboard: dashURL}
	if r.published != nil {
		sum.AccuracyNote = NotMeasuredNote
		r.dash.setAccuracyNote(NotMeasuredNote)
	}

	journalPath := cfg.Journal
	if journalPath == "" {
		journalPath = filepath.Join(runDir, "decisions.jsonl")
	}
	jf, err := os.Create(journalPath)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer jf.Close()

	names := []string{cfg.Policy}
	if cfg.Baseline != "none" {
		names = append(names, cfg.Baseline)
	}
	for i, name := range names {
		if ctx.Err() != nil {
			break
		}
		rs, err := r.runOne(ctx, name, tr, info, jf, journals, i == 0)
		if err != nil {
			return sum, fmt.Errorf("%s run: %w", name, err)
		}
		sum.Runs = append(sum.Runs, rs)
		r.dash.finish(rs)
	}
	r.dash.setStage("done")
	if ctx.Err() != nil {
		return sum, ctx.Err()
	}
	return sum, nil
}

// warmUp is the warm-up inferences per worker of a variant server: 20 for
// the Fashion-MNIST models (< 20 ms in all), 3 for a published-accuracy
// family (the ResNets: 20 × 37–300 ms per worker, under a fractional quota
// and next to the instance being replaced, made a variant switch take
// 7.6 s in the middle of a burst; ORT's first runs are the slow ones).
func (r *runner) warmUp() int {
	if r.published != nil {
		return publishedWarmUp
	}
	return 20
}

func shutdown(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
}

// resolveModelsDir returns dir, or for a relative dir that does not exist
// here, the same path next to the binary's parent directory (bin/infadapter
// run from outside the repository finds <repo>/third_party/models/fmnist).
func resolveModelsDir(dir string) string {
	if _, err := os.Stat(dir); err == nil || filepath.IsAbs(dir) {
		return dir
	}
	exe, err := os.Executable()
	if err != nil {
		return dir
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return dir
	}
	alt := filepath.Join(filepath.Dir(exe), "..", dir)
	if _, err := os.Stat(alt); err == nil {
		return alt
	}
	return dir
}

// findModels lists the .onnx files of dir by variant name (file stem).
func findModels(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("models dir %s: %w (run from the repository root or pass --models)", dir, err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".onnx") {
			abs, err := filepath.Abs(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out[strings.TrimSuffix(e.Name(), ".onnx")] = abs
		}
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("models dir %s: found %d .onnx variants, need at least 2", dir, len(out))
	}
	return out, nil
}

// buildTrace generates the built-in twitter-like trace for Duration and
// scales it to this machine (see scaleTrace).
func (r *runner) buildTrace() ([]float64, TraceInfo, error) {
	cfg := r.cfg
	base, peak := r.scaleTrace()
	s := trace.DefaultSynthetic(trace.ShapeTwitter)
	s.Seconds = int(cfg.Duration / time.Second)
	s.Base, s.Peak, s.Seed = base, peak, cfg.Seed
	t, err := s.Generate()
	if err != nil {
		return nil, TraceInfo{}, fmt.Errorf("built-in trace: %w", err)
	}
	st := t.Stats()
	return t.RPS, TraceInfo{Name: t.Name, Seconds: t.Len(), Base: base, Peak: peak, Mean: st.Mean}, nil
}

// scaleTrace picks the trace's base and peak: unless set, the peak is 80%
// of what the budget serves with the cheapest variant (so the burst fits
// only by switching to cheaper variants) capped by MaxRPS, and the base is
// peak/4.5 (the Twitter window's 60 → 270 RPS).
func (r *runner) scaleTrace() (base, peak float64) {
	peak, base = r.cfg.PeakRPS, r.cfg.BaseRPS
	if peak == 0 {
		capMax := 0.0
		for _, v := range r.plan {
			capMax = max(capMax, v.Capacity[len(v.Capacity)-1])
		}
		peak = math.Floor(min(0.8*capMax, r.cfg.MaxRPS))
	}
	if base == 0 {
		base = math.Floor(peak / 4.5)
	}
	return base, peak
}

// journalSwitch serves the journal of the run in progress.
type journalSwitch struct {
	mu sync.Mutex
	j  *loop.Journal
}

func (s *journalSwitch) set(j *loop.Journal) { s.mu.Lock(); s.j = j; s.mu.Unlock() }

func (s *journalSwitch) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	j := s.j
	s.mu.Unlock()
	if j == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]\n"))
		return
	}
	j.ServeHTTP(w, req)
}

// runOne deploys the policy's initial state and replays schedule while the
// loop adapts. Both runs write to the same journal file (each line names
// its policy).
func (r *runner) runOne(ctx context.Context, name string, schedule []float64, info TraceInfo, jf io.Writer,
	journals *journalSwitch, adaptive bool) (RunSummary, error) {
	cfg := r.cfg
	pol, err := r.newPolicy(name, info.Peak)
	if err != nil {
		return RunSummary{}, err
	}
	policyName := pol.d.Name()
	r.dash.start(policyName, adaptive && cfg.DryRun, float64(len(schedule)))
	r.info("%s: starting %s", policyName, describe(pol.initial, cfg.CoreUnitMilli))

	model := r.disp.Model(ModelName)
	journal := loop.NewJournal(jf, 500)
	journals.set(journal)
	reg := prometheus.NewRegistry()
	metrics, err := loop.NewMetrics(reg)
	if err != nil {
		return RunSummary{}, err
	}
	r.loopReg.set(reg) // /metrics shows the loop of the run in progress
	// 600 history entries: the paper's 10 minutes, in stretched seconds.
	lcfg := loop.Config{Interval: cfg.EffectiveInterval(), FirstDecisionDelay: cfg.FirstDecision,
		HistorySeconds: 600, DryRun: adaptive && cfg.DryRun, Reactive: cfg.Reactive}
	lb := &localBackend{b: r.backend, models: r.models, unitMilli: cfg.CoreUnitMilli}
	lp, err := loop.New(lcfg, loop.Deps{
		Clock: r.clk, Load: stretched{src: model, k: cfg.Stretch()}, Decider: pol.d,
		Backend: lb, Router: model, ForecastTimer: pol.timer, Journal: journal, Metrics: metrics,
		Log: r.log,
	})
	if err != nil {
		return RunSummary{}, err
	}
	// The initial deployment. In dry-run mode Loop.Apply only records it,
	// so it is deployed here through the same backend and router.
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	if lcfg.DryRun {
		err = deploy(actx, lb, model, pol.initial)
	}
	if err == nil {
		err = lp.Apply(actx, pol.initial)
	}
	cancel()
	if err != nil {
		return RunSummary{}, fmt.Errorf("initial deployment: %w", err)
	}

	rec := newRecorder(cfg.SLO, len(schedule))
	lg := loadgen.Default()
	lg.Target, lg.Model, lg.SLO = r.dispURL, ModelName, cfg.SLO
	lg.Timeout = max(10*cfg.SLO, 2*time.Second)
	lg.MaxInFlight = 2048
	rep := &replayer{src: r.samples, chunkSeconds: 3, seed: cfg.Seed, clock: r.clk, rec: rec}

	lctx, stopLoop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = lp.Run(lctx) }()
	start := r.clk.Now()
	sampler := &sampler{r: r, lp: lp, rec: rec, model: model, start: start, schedule: schedule, policy: policyName}
	go func() { defer wg.Done(); sampler.run(lctx) }()
	rep.run(ctx, lg, schedule)
	stopLoop()
	wg.Wait()
	sampler.finishLine()
	if errs := rec.errors(); len(errs) > 0 {
		return RunSummary{}, fmt.Errorf("load generator: %w", errors.Join(errs...))
	}

	w := rec.window(0, len(schedule))
	rs := RunSummary{Policy: policyName, Requests: w.Offered, OK: w.OK, Errors: w.Errors, Violations: w.Violations,
		P99Millis: round(w.P99Millis, 2), ServedAccuracy: round(w.ServedAccuracy, 5),
		PlannedAccuracy: round(w.PlannedAccuracy, 5), PerVariant: w.PerVariant, Seconds: len(schedule),
		AvgCores: round(sampler.avgCores(), 3), ErrorKinds: rec.errorKinds(), DryRun: lcfg.DryRun}
	if r.published != nil {
		rs.ServedAccuracy, rs.AccuracyNote = 0, NotMeasuredNote
	}
	if w.Offered > 0 {
		rs.ViolationPct = round(100*float64(w.Violations)/float64(w.Offered), 3)
	}
	routed, n := 0.0, 0
	for v, c := range w.PerVariant {
		routed += float64(c) * r.accuracy[v]
		n += c
	}
	if n > 0 {
		rs.RoutedAccuracy = round(routed/float64(n), 5)
	}
	for _, d := range journal.Last(0) {
		rs.Decisions++
		if d.Result == loop.ResultApplied {
			rs.Applied++
		}
	}
	return rs, nil
}

// deploy runs target and routes all traffic to it, create-before-delete.
func deploy(ctx context.Context, b loop.Backend, rt loop.Router, target []decider.VariantState) error {
	eps, err := b.Prepare(ctx, target)
	if err != nil {
		return err
	}
	routes := make([]loop.Route, len(eps))
	for i, e := range eps {
		routes[i] = loop.Route{Variant: e.Variant, URL: e.URL, Weight: target[i].Share}
	}
	if err := rt.SetRoutes(ctx, routes); err != nil {
		return err
	}
	return b.Retire(ctx, eps)
}

func describe(vs []decider.VariantState, unitMilli int) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s on %.2f cores (%.0f%%)", v.Name, float64(v.Cores*unitMilli)/1000, 100*v.Share))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
