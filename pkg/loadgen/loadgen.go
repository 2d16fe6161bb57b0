package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/dispatcher/h1"
	"github.com/infadapter/infadapter/pkg/oip"
	"github.com/infadapter/infadapter/pkg/trace"
)

// Config configures one run.
type Config struct {
	// Target is the base URL of the endpoint, e.g. http://127.0.0.1:8080.
	Target string `json:"target"`
	// Model is the (logical) model name requests address.
	Model    string   `json:"model"`
	Protocol Protocol `json:"protocol"`
	// SLO is the latency objective; slower answers count as violations.
	SLO time.Duration `json:"slo"`
	// Timeout bounds one request (from its intended send time). Default 10 s.
	Timeout time.Duration `json:"timeout"`
	// Arrivals says how each second's rate becomes send times. Default Poisson.
	Arrivals trace.ArrivalMode `json:"arrivals"`
	Seed     uint64            `json:"seed"`
	// MaxRequests caps the requests sent. Default 1,000,000.
	MaxRequests int `json:"maxRequests"`
	// MaxInFlight caps outstanding requests; an arrival beyond it is not
	// sent and counts as an "overload" error. Default 4096.
	MaxInFlight int `json:"maxInFlight"`
	// MaxBodyBytes bounds a response body read. Default 8 MiB.
	MaxBodyBytes int64 `json:"maxBodyBytes"`
}

// Default returns the defaults: OIP v2, 10 s timeout, Poisson arrivals,
// seed 1, 1e6 requests, 4096 in flight.
func Default() Config {
	return Config{Protocol: ProtocolV2, Timeout: 10 * time.Second, Arrivals: trace.ArrivalPoisson,
		Seed: 1, MaxRequests: 1_000_000, MaxInFlight: 4096, MaxBodyBytes: 8 << 20}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if u, err := url.Parse(c.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("target %q must be an absolute http(s) URL", c.Target)
	}
	if c.Model == "" || strings.ContainsAny(c.Model, "/:?#") {
		bad("model %q must be non-empty without '/:?#'", c.Model)
	}
	if _, err := ParseProtocol(string(c.Protocol)); err != nil {
		bad("%v", err)
	}
	if c.SLO <= 0 {
		bad("slo must be > 0, got %v", c.SLO)
	}
	if c.Timeout <= 0 {
		bad("timeout must be > 0, got %v", c.Timeout)
	}
	if _, err := trace.ParseArrivalMode(string(c.Arrivals)); err != nil {
		bad("%v", err)
	}
	if c.MaxRequests < 1 {
		bad("maxRequests must be >= 1, got %d", c.MaxRequests)
	}
	if c.MaxInFlight < 1 {
		bad("maxInFlight must be >= 1, got %d", c.MaxInFlight)
	}
	if c.MaxBodyBytes < 1 {
		bad("maxBodyBytes must be >= 1, got %d", c.MaxBodyBytes)
	}
	return errors.Join(errs...)
}

// NotMeasured is Report.AccuracyNote when no answer had a label (random or
// zero inputs): served accuracy is then unknown, not zero.
const NotMeasured = "not measured (no labelled answers)"

// Error kinds in Report.Errors.
const (
	ErrTimeout     = "timeout"      // no answer within Timeout of the intended time
	ErrConnRefused = "conn_refused" // nothing listening
	ErrConn        = "conn_error"   // connection reset/closed mid-request
	ErrHTTP4xx     = "http_4xx"
	ErrShed        = "http_503" // 503: overloaded/shed or not ready
	ErrHTTP5xx     = "http_5xx" // other 5xx
	ErrDecode      = "decode"   // 200 with an unreadable body (labelled samples only)
	ErrOverload    = "overload" // not sent: MaxInFlight reached
	ErrCanceled    = "canceled" // the run was canceled
)

// Result is one request's outcome.
type Result struct {
	Intended time.Duration // send time planned, from the run's start
	Latency  time.Duration // answer time - intended time
	Err      string        // "" on success, else an error kind
	Variant  string        // X-Infadapter-Variant, if present
	Label    int           // -1 when unlabelled
	Pred     int           // argmax of the output; -1 when not parsed
}

// Latency summarises a latency distribution in milliseconds.
type Latency struct {
	P50  float64 `json:"p50Ms"`
	P95  float64 `json:"p95Ms"`
	P99  float64 `json:"p99Ms"`
	Max  float64 `json:"maxMs"`
	Mean float64 `json:"meanMs"`
}

// Second is the outcome of the requests intended in one second.
type Second struct {
	Sent       int     `json:"sent"`
	OK         int     `json:"ok"`
	Violations int     `json:"violations"`
	P99Ms      float64 `json:"p99Ms"`
}

// Report is a run's summary.
type Report struct {
	Target   string   `json:"target"`
	Model    string   `json:"model"`
	Protocol Protocol `json:"protocol"`
	SLOMs    float64  `json:"sloMs"`
	// Seconds is the schedule's length; WallSeconds the run's (until the
	// last answer).
	Seconds     int     `json:"seconds"`
	WallSeconds float64 `json:"wallSeconds"`
	Offered     int     `json:"offered"` // arrivals generated
	OK          int     `json:"ok"`      // 2xx answers
	OfferedRPS  float64 `json:"offeredRps"`
	AchievedRPS float64 `json:"achievedRps"` // OK / Seconds
	// Latency is over successful requests, from the intended send time.
	Latency Latency `json:"latency"`
	// SLOViolations counts requests slower than the SLO plus failed ones.
	SLOViolations   int            `json:"sloViolations"`
	SLOViolationPct float64        `json:"sloViolationPct"`
	Errors          map[string]int `json:"errors"`
	// Accuracy is the share of labelled successful answers whose argmax
	// equals the label; nil without labelled answers.
	Accuracy *float64 `json:"accuracy,omitempty"`
	// AccuracyNote says why Accuracy is absent (no labelled answers):
	// served accuracy was not measured, and no figure stands in for it.
	AccuracyNote string         `json:"accuracyNote,omitempty"`
	Labelled     int            `json:"labelled"`
	Correct      int            `json:"correct"`
	PerVariant   map[string]int `json:"perVariant,omitempty"`
	PerSecond    []Second       `json:"perSecond"`
}

// Runner runs schedules against one target.
type Runner struct {
	cfg    Config
	src    Source
	clock  clock.Clock
	client *http.Client
	url    string
	pool   *h1.Pool // plain-http targets: cheaper per request than client
	path   string
	// Progress, when set, is called after each answer with (done, total).
	Progress func(done, total int)
}

// Option customises NewRunner.
type Option func(*Runner)

// WithClock injects the clock (default: real).
func WithClock(c clock.Clock) Option { return func(r *Runner) { r.clock = c } }

// WithProgress sets the progress callback.
func WithProgress(f func(done, total int)) Option { return func(r *Runner) { r.Progress = f } }

// NewRunner validates cfg and returns a runner sending src's samples.
func NewRunner(cfg Config, src Source, opts ...Option) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen config: %w", err)
	}
	if src == nil || src.Len() == 0 {
		return nil, errors.New("loadgen: no request samples")
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.MaxInFlight,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	r := &Runner{cfg: cfg, src: src, clock: clock.RealClock{}, client: &http.Client{Transport: tr},
		url: strings.TrimSuffix(cfg.Target, "/") + cfg.Protocol.Path(cfg.Model), path: cfg.Protocol.Path(cfg.Model)}
	if u, _ := url.Parse(cfg.Target); u.Scheme == "http" && (u.Path == "" || u.Path == "/") {
		// The generator must be cheaper than what it measures: h1 writes
		// and reads on the sending goroutine (see pkg/dispatcher/h1).
		r.pool = h1.NewPool(u.Host, &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}, cfg.MaxInFlight)
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Close releases idle connections.
func (r *Runner) Close() {
	r.client.CloseIdleConnections()
	if r.pool != nil {
		r.pool.Close()
	}
}

// Run replays schedule (requests per second, one entry per second) and
// returns the report. Canceling ctx stops sending; answers already due are
// awaited up to Timeout. The error is non-nil only for a bad schedule.
func (r *Runner) Run(ctx context.Context, schedule []float64) (*Report, []Result, error) {
	if len(schedule) == 0 {
		return nil, nil, errors.New("loadgen: empty schedule")
	}
	for i, v := range schedule {
		if !(v >= 0) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("loadgen: schedule second %d: rate %v must be a finite number >= 0", i, v)
		}
	}
	var expected float64
	for _, v := range schedule {
		expected += v
	}
	total := min(int(math.Round(expected)), r.cfg.MaxRequests)
	arr := trace.NewArrivals(schedule, r.cfg.Arrivals, r.cfg.Seed)

	var (
		mu      sync.Mutex
		results []Result
		done    int
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	record := func(res Result) {
		mu.Lock()
		results = append(results, res)
		done++
		d := done
		mu.Unlock()
		if r.Progress != nil {
			r.Progress(d, max(total, d))
		}
	}
	start := r.clock.Now()
	sent := 0
	for sent < r.cfg.MaxRequests {
		at, ok := arr.Next()
		if !ok {
			break
		}
		intended := time.Duration(at * float64(time.Second))
		if wait := intended - r.clock.Since(start); wait > 0 {
			t := r.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C():
			}
		}
		if ctx.Err() != nil {
			break
		}
		s := r.src.Sample(sent)
		sent++
		select {
		case sem <- struct{}{}:
		default:
			record(Result{Intended: intended, Err: ErrOverload, Label: s.Label, Pred: -1})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			record(r.send(start, intended, s))
		}()
	}
	wg.Wait()
	wall := r.clock.Since(start)
	slices.SortFunc(results, func(a, b Result) int { return int(a.Intended - b.Intended) })
	return r.report(schedule, results, wall), results, nil
}

// send performs one request planned at start+intended and measures its
// latency from that planned time.
func (r *Runner) send(start time.Time, intended time.Duration, s Sample) Result {
	res := Result{Intended: intended, Label: s.Label, Pred: -1}
	deadline := start.Add(intended + r.cfg.Timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var resp *http.Response
	var err error
	if r.pool != nil {
		resp, err = r.pool.RoundTrip(ctx, h1.Request{Method: http.MethodPost, PathQuery: r.path, Header: jsonHeader, Body: s.Body})
	} else {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(s.Body))
		if err != nil {
			res.Err = ErrConn
			return res
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err = r.client.Do(req)
	}
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, r.cfg.MaxBodyBytes))
		resp.Body.Close()
	}
	res.Latency = r.clock.Since(start) - intended
	if err != nil {
		res.Err = classify(err)
		return res
	}
	res.Variant = resp.Header.Get(oip.VariantHeader)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		res.Err = ErrShed
		return res
	case resp.StatusCode >= 500:
		res.Err = ErrHTTP5xx
		return res
	case resp.StatusCode >= 400:
		res.Err = ErrHTTP4xx
		return res
	}
	if s.Label < 0 {
		// Nothing to score: skip decoding, which is a large share of the
		// generator's CPU at high rates.
		return res
	}
	pred, err := r.prediction(body)
	if err != nil {
		res.Err = ErrDecode
		return res
	}
	res.Pred = pred
	return res
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func (r *Runner) prediction(body []byte) (int, error) {
	if r.cfg.Protocol == ProtocolTF {
		pr, err := oip.DecodePredictResponse(body)
		if err != nil {
			return -1, err
		}
		rows, err := pr.PredictionRows()
		if err != nil || len(rows) == 0 {
			return -1, fmt.Errorf("no predictions: %v", err)
		}
		return oip.ArgMax(rows[0]), nil
	}
	ir, err := oip.DecodeInferResponse(body)
	if err != nil {
		return -1, err
	}
	v, err := ir.Outputs[0].Float64s()
	if err != nil {
		return -1, err
	}
	return oip.ArgMax(v), nil
}

func classify(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return ErrTimeout
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrConnRefused
	}
	return ErrConn
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (r *Runner) report(schedule []float64, results []Result, wall time.Duration) *Report {
	rep := &Report{Target: r.cfg.Target, Model: r.cfg.Model, Protocol: r.cfg.Protocol,
		SLOMs: ms(r.cfg.SLO), Seconds: len(schedule), WallSeconds: wall.Seconds(),
		Offered: len(results), Errors: map[string]int{}, PerVariant: map[string]int{},
		PerSecond: make([]Second, len(schedule))}
	var lat []time.Duration
	perSec := make([][]time.Duration, len(schedule))
	for _, res := range results {
		sec := min(int(res.Intended/time.Second), len(schedule)-1)
		ps := &rep.PerSecond[sec]
		ps.Sent++
		if res.Variant != "" {
			rep.PerVariant[res.Variant]++
		}
		if res.Err != "" {
			rep.Errors[res.Err]++
			rep.SLOViolations++
			ps.Violations++
			continue
		}
		rep.OK++
		ps.OK++
		lat = append(lat, res.Latency)
		perSec[sec] = append(perSec[sec], res.Latency)
		if res.Latency > r.cfg.SLO {
			rep.SLOViolations++
			ps.Violations++
		}
		if res.Label >= 0 {
			rep.Labelled++
			if res.Pred == res.Label {
				rep.Correct++
			}
		}
	}
	rep.OfferedRPS = float64(rep.Offered) / float64(len(schedule))
	rep.AchievedRPS = float64(rep.OK) / float64(len(schedule))
	if rep.Offered > 0 {
		rep.SLOViolationPct = 100 * float64(rep.SLOViolations) / float64(rep.Offered)
	}
	if rep.Labelled == 0 {
		rep.AccuracyNote = NotMeasured
	}
	if rep.Labelled > 0 {
		a := float64(rep.Correct) / float64(rep.Labelled)
		rep.Accuracy = &a
	}
	rep.Latency = summarise(lat)
	for i, l := range perSec {
		rep.PerSecond[i].P99Ms = quantile(l, 0.99)
	}
	return rep
}

func summarise(l []time.Duration) Latency {
	if len(l) == 0 {
		return Latency{}
	}
	slices.Sort(l)
	var sum time.Duration
	for _, x := range l {
		sum += x
	}
	return Latency{P50: quantileSorted(l, 0.5), P95: quantileSorted(l, 0.95), P99: quantileSorted(l, 0.99),
		Max: ms(l[len(l)-1]), Mean: ms(sum / time.Duration(len(l)))}
}

func quantile(l []time.Duration, q float64) float64 {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return quantileSorted(l, q)
}

// quantileSorted is the nearest-rank quantile (the value below which q of
// the samples fall, never interpolated), in milliseconds.
func quantileSorted(l []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(l)))) - 1
	return ms(l[max(i, 0)])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
