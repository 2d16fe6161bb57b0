package profiler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infadapter/infadapter/pkg/loadgen"
	"github.com/infadapter/infadapter/pkg/oip"
)

// Config configures capacity measurement.
type Config struct {
	// SLO is the P99 latency objective.
	SLO time.Duration `json:"slo"`
	// ProbeDuration is the length of one open-loop probe (whole seconds).
	ProbeDuration time.Duration `json:"probeDuration"`
	// PeakDuration is the length of the closed-loop saturation run.
	PeakDuration time.Duration `json:"peakDuration"`
	// PeakClients is the closed loop's concurrency (default 8): enough to
	// keep every worker of a 2-core server busy through network gaps.
	PeakClients int `json:"peakClients"`
	// Window is the P99 window (default 2 s, the paper's).
	Window time.Duration `json:"window"`
	// Repeats runs of each probe must all pass (default 2).
	Repeats int `json:"repeats"`
	// Lo, Hi bound the search as fractions of the peak (0.3, 1.2).
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// Steps is the most binary-search probes per point (default 6); the
	// search also stops once the interval is below Tolerance·peak (0.03).
	Steps     int     `json:"steps"`
	Tolerance float64 `json:"tolerance"`
	// MaxRPS caps the rates tried (0 = none): a guard for endpoints whose
	// peak exceeds what the load generator can offer.
	MaxRPS float64 `json:"maxRps"`
	// Seed of the Poisson arrivals.
	Seed uint64 `json:"seed"`
}

// Default returns demo-friendly defaults: SLO 50 ms, 5 s probes, 3 s peak
// run, 2 repeats, search [0.3, 1.2]·peak in at most 6 steps.
func Default() Config {
	return Config{SLO: 50 * time.Millisecond, ProbeDuration: 5 * time.Second, PeakDuration: 3 * time.Second,
		PeakClients: 8, Window: 2 * time.Second, Repeats: 2, Lo: 0.3, Hi: 1.2, Steps: 6, Tolerance: 0.03, Seed: 1}
}

// Validate reports every problem.
func (c Config) Validate() error {
	var errs []error
	if c.SLO <= 0 {
		errs = append(errs, fmt.Errorf("slo = %v: must be > 0", c.SLO))
	}
	if c.ProbeDuration < time.Second {
		errs = append(errs, fmt.Errorf("probeDuration = %v: must be ≥ 1s", c.ProbeDuration))
	}
	if c.PeakDuration <= 0 {
		errs = append(errs, fmt.Errorf("peakDuration = %v: must be > 0", c.PeakDuration))
	}
	if c.PeakClients < 1 {
		errs = append(errs, fmt.Errorf("peakClients = %d: must be ≥ 1", c.PeakClients))
	}
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window = %v: must be > 0", c.Window))
	}
	if c.Repeats < 1 {
		errs = append(errs, fmt.Errorf("repeats = %d: must be ≥ 1", c.Repeats))
	}
	if !(c.Lo > 0 && c.Lo < c.Hi) {
		errs = append(errs, fmt.Errorf("lo = %g, hi = %g: want 0 < lo < hi", c.Lo, c.Hi))
	}
	if c.Steps < 1 {
		errs = append(errs, fmt.Errorf("steps = %d: must be ≥ 1", c.Steps))
	}
	if c.Tolerance < 0 {
		errs = append(errs, fmt.Errorf("tolerance = %g: must be ≥ 0", c.Tolerance))
	}
	if c.MaxRPS < 0 {
		errs = append(errs, fmt.Errorf("maxRps = %g: must be ≥ 0", c.MaxRPS))
	}
	return errors.Join(errs...)
}

// ProbesPerPoint is the most load runs one Capacity call makes (for
// progress bars): the peak run plus Steps·Repeats probes plus the Lo check.
func (c Config) ProbesPerPoint() int { return 1 + (c.Steps+1)*c.Repeats }

// Target is one OIP v2 endpoint serving a model.
type Target struct {
	URL   string // base URL, e.g. http://127.0.0.1:8081
	Model string // model name in the path
	// Body is one encoded OIP v2 request. Default: a seeded random image of
	// the model's input shape when the endpoint's model metadata gives one
	// other than Fashion-MNIST's [1,28,28] (e.g. [3,224,224] for the ResNet
	// family), else a zero [1,1,28,28] tensor (as before).
	Body []byte
}

// Probe is one open-loop run at a fixed rate.
type Probe struct {
	RPS float64 `json:"rps"`
	// P99MaxMs is the largest per-window P99 (ms); +Inf is reported as -1
	// when a window had failed requests beyond its 1 %.
	P99MaxMs float64 `json:"p99MaxMs"`
	Sent     int     `json:"sent"`
	OK       int     `json:"ok"`
	Pass     bool    `json:"pass"`
}

// Result is the capacity of one target.
type Result struct {
	PeakRPS  float64 `json:"peakRps"`
	Capacity float64 `json:"capacityRps"`
	Probes   []Probe `json:"probes"`
}

// Progress receives one call per finished load run.
type Progress func(msg string)

// Profiler measures targets.
type Profiler struct {
	cfg      Config
	progress Progress
	client   *http.Client
}

// New returns a profiler; progress may be nil.
func New(cfg Config, progress Progress) (*Profiler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("profiler config: %w", err)
	}
	if progress == nil {
		progress = func(string) {}
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	return &Profiler{cfg: cfg, progress: progress, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (p *Profiler) body(ctx context.Context, t Target) ([]byte, error) {
	if len(t.Body) > 0 {
		return t.Body, nil
	}
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if shape, err := loadgen.InputShape(mctx, p.client, t.URL, t.Model); err == nil && !slices.Equal(shape, []int64{1, 28, 28}) {
		s, err := loadgen.Random(loadgen.ProtocolV2, shape, 1, p.cfg.Seed)
		if err != nil {
			return nil, fmt.Errorf("request body for %s: %w", t.Model, err)
		}
		return s[0].Body, nil
	}
	// No metadata (e.g. behind a proxy that does not forward it) or a
	// Fashion-MNIST model: the zero image the profiles were measured with.
	return loadgen.Encode(loadgen.ProtocolV2, []int64{1, 1, 28, 28}, make([]float32, 784))
}

// Peak measures saturation throughput with PeakClients closed-loop clients.
func (p *Profiler) Peak(ctx context.Context, t Target) (float64, error) {
	body, err := p.body(ctx, t)
	if err != nil {
		return 0, err
	}
	url := t.URL + oip.InferPath(t.Model)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PeakDuration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < p.cfg.PeakClients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := p.client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d", resp.StatusCode))
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if ok.Load() == 0 {
		return 0, fmt.Errorf("peak run against %s: no successful request (%d failed, first: %v)", url, failed.Load(), firstErr.Load())
	}
	return float64(ok.Load()) / el, nil
}

// Rate runs one open-loop Poisson probe at rps and judges it.
func (p *Profiler) Rate(ctx context.Context, t Target, rps float64, seed uint64) (Probe, error) {
	body, err := p.body(ctx, t)
	if err != nil {
		return Probe{}, err
	}
	lc := loadgen.Default()
	lc.Target, lc.Model, lc.SLO, lc.Seed = t.URL, t.Model, p.cfg.SLO, seed
	lc.Timeout = max(10*p.cfg.SLO, time.Second)
	r, err := loadgen.NewRunner(lc, loadgen.Samples{{Body: body, Label: -1}})
	if err != nil {
		return Probe{}, err
	}
	defer r.Close()
	secs := int(p.cfg.ProbeDuration / time.Second)
	sched, err := loadgen.Constant(rps, secs)
	if err != nil {
		return Probe{}, err
	}
	rep, results, err := r.Run(ctx, sched)
	if err != nil {
		return Probe{}, err
	}
	if ctx.Err() != nil {
		return Probe{}, ctx.Err()
	}
	p99 := MaxWindowP99(results, p.cfg.Window)
	pr := Probe{RPS: rps, Sent: rep.Offered, OK: rep.OK, Pass: p99 <= p.cfg.SLO}
	pr.P99MaxMs = float64(p99) / 1e6
	if p99 == time.Duration(math.MaxInt64) {
		pr.P99MaxMs = -1
	}
	return pr, nil
}

// MaxWindowP99 groups results by intended send time into windows and
// returns the largest per-window P99; a failed request counts as
// infinitely slow, so a window with more than 1 % failures yields
// MaxInt64. Windows are aligned to the run's start; a trailing partial
// window shorter than half a window is merged into the previous one.
func MaxWindowP99(results []loadgen.Result, window time.Duration) time.Duration {
	if len(results) == 0 {
		return time.Duration(math.MaxInt64)
	}
	var last time.Duration
	for _, r := range results {
		last = max(last, r.Intended)
	}
	n := int(last/window) + 1
	if n > 1 && last-time.Duration(n-1)*window < window/2 {
		n--
	}
	buckets := make([][]time.Duration, n)
	for _, r := range results {
		i := min(int(r.Intended/window), n-1)
		l := r.Latency
		if r.Err != "" {
			l = time.Duration(math.MaxInt64)
		}
		buckets[i] = append(buckets[i], l)
	}
	var worst time.Duration
	for _, b := range buckets {
		if len(b) == 0 {
			continue
		}
		sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
		// Nearest-rank P99.
		k := int(math.Ceil(0.99*float64(len(b)))) - 1
		worst = max(worst, b[max(k, 0)])
	}
	return worst
}

// Capacity runs the paper's search against t.
func (p *Profiler) Capacity(ctx context.Context, t Target, label string) (Result, error) {
	var res Result
	// One body for the whole search (asking the metadata once).
	body, err := p.body(ctx, t)
	if err != nil {
		return res, err
	}
	t.Body = body
	peak, err := p.Peak(ctx, t)
	if err != nil {
		return res, err
	}
	res.PeakRPS = peak
	p.progress(fmt.Sprintf("%s: peak %.0f rps", label, peak))
	lo, hi := p.cfg.Lo*peak, p.cfg.Hi*peak
	if p.cfg.MaxRPS > 0 {
		hi = min(hi, p.cfg.MaxRPS)
		lo = min(lo, hi)
	}
	seed := p.cfg.Seed
	pass := func(rps float64) (bool, error) {
		for i := 0; i < p.cfg.Repeats; i++ {
			seed++
			pr, err := p.Rate(ctx, t, rps, seed)
			if err != nil {
				return false, err
			}
			res.Probes = append(res.Probes, pr)
			p.progress(fmt.Sprintf("%s: %.0f rps → P99 %.1f ms %s", label, rps, pr.P99MaxMs, passWord(pr.Pass)))
			if !pr.Pass {
				return false, nil
			}
		}
		return true, nil
	}
	// The paper's interval assumes lo·peak passes. When it does not (a
	// tight SLO, or a noisy shared machine), search below it instead: the
	// interval becomes [0, lo] and the capacity is 0 only if nothing in it
	// passes.
	ok, err := pass(lo)
	if err != nil {
		return res, err
	}
	best := 0.0
	if ok {
		best = lo
	} else {
		lo, hi = 0, lo
	}
	for step := 0; step < p.cfg.Steps && hi-lo > p.cfg.Tolerance*peak && hi >= 1; step++ {
		mid := (lo + hi) / 2
		ok, err := pass(mid)
		if err != nil {
			return res, err
		}
		if ok {
			lo, best = mid, mid
		} else {
			hi = mid
		}
	}
	res.Capacity = best
	return res, nil
}

func passWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "over SLO"
}
