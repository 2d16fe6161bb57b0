package dispatcher

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infadapter/infadapter/pkg/dispatcher/h1"
	"github.com/infadapter/infadapter/pkg/oip"
)

// Backend is one instance of one variant of a logical model.
type Backend struct {
	// Variant names the variant (e.g. "resnet18"): the routing and metrics
	// key, and the value of the X-Infadapter-Variant response header.
	Variant string `json:"variant"`
	// URL is the instance's base URL, e.g. "http://127.0.0.1:9001".
	URL string `json:"url"`
	// Model is the model name on the backend, substituted for the logical
	// name in the path; empty means Variant.
	Model string `json:"model,omitempty"`
	// Weight is the backend's relative share of the model's traffic (>= 0).
	Weight float64 `json:"weight"`
	// Concurrency is how many requests the instance serves in parallel
	// (its cores, for a CPU model server); load shedding uses it. 0 means 1.
	Concurrency int `json:"concurrency,omitempty"`
}

func (b Backend) modelName() string {
	if b.Model != "" {
		return b.Model
	}
	return b.Variant
}

func (b Backend) key() string { return b.Variant + "\x00" + b.URL + "\x00" + b.modelName() }

// validate checks one backend spec; where names it in errors.
func (b Backend) validate(where string) error {
	if b.Variant == "" || strings.ContainsAny(b.Variant, "/:?#") {
		return fmt.Errorf("%s: variant %q must be non-empty without '/:?#'", where, b.Variant)
	}
	if m := b.modelName(); strings.ContainsAny(m, "/:?#") {
		return fmt.Errorf("%s: model %q must not contain '/:?#'", where, m)
	}
	u, err := url.Parse(b.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: url %q must be an absolute http(s) URL", where, b.URL)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Errorf("%s: url %q must have no path or query", where, b.URL)
	}
	if !(b.Weight >= 0) || math.IsInf(b.Weight, 0) {
		return fmt.Errorf("%s: weight must be a finite number >= 0, got %v", where, b.Weight)
	}
	if b.Concurrency < 0 {
		return fmt.Errorf("%s: concurrency must be >= 0, got %d", where, b.Concurrency)
	}
	return nil
}

// backend is the live state of one Backend. spec is immutable after
// creation (its Weight is meaningless: weights live in the table). It outlives table swaps: a
// SetBackends that keeps the same (variant, URL, model) keeps its pool,
// health and ejection state.
type backend struct {
	spec      Backend
	base      string          // scheme://host, no trailing slash
	transport *http.Transport // health checks, and requests to https backends
	pool      *h1.Pool        // requests to http backends

	inFlight    atomic.Int64
	healthy     atomic.Bool
	ejectUntil  atomic.Int64 // unix nanos; ejected while now < ejectUntil
	consecFails atomic.Int32
	ejections   atomic.Int32
	ewmaNanos   atomic.Int64 // EWMA of the service time of unqueued successful requests
	removed     atomic.Bool
	conc        atomic.Int64 // parallel requests the instance serves (>= 1)

	// health-check streaks, touched only by the health checker goroutine.
	hcFails, hcPasses int

	drainMu sync.Mutex
	drained chan struct{} // closed when removed and inFlight reaches 0

	variantHdr  []string                      // {spec.Variant}, the X-Infadapter-Variant value
	variantLine []byte                        // "X-Infadapter-Variant: <variant>\r\n"
	inferPath   string                        // the backend's OIP v2 inference path
	predictPth  string                        // the backend's TF Serving predict path
	requests    map[string]prometheus.Counter // by outcome
	latency     prometheus.Observer
	variantArr  *secCounter
}

func newBackend(spec Backend, cfg Config) *backend {
	u, _ := url.Parse(spec.URL)
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil, // loopback/cluster backends: never via HTTP_PROXY
		DialContext:           dialer.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   cfg.MaxConnsPerBackend,
		MaxConnsPerHost:       cfg.MaxConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the request context instead
		ExpectContinueTimeout: 0,
		DisableCompression:    true, // pass bodies through untouched
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	b := &backend{spec: spec, base: u.Scheme + "://" + u.Host, transport: t, drained: make(chan struct{}),
		variantHdr: []string{spec.Variant}, variantLine: []byte(oip.VariantHeader + ": " + spec.Variant + "\r\n"), inferPath: oip.InferPath(spec.modelName()), predictPth: oip.PredictPath(spec.modelName())}
	if u.Scheme == "http" && !useStdTransport {
		b.pool = h1.NewPool(u.Host, dialer, cfg.MaxConnsPerBackend)
	}
	b.healthy.Store(true)
	return b
}

// path is route rewritten to the backend's model name (precomputed for
// the inference routes: Route.Path builds its string on every call).
func (b *backend) path(route oip.Route) string {
	switch route.Kind {
	case oip.KindInfer:
		return b.inferPath
	case oip.KindTFPredict:
		return b.predictPth
	}
	return route.WithModel(b.spec.modelName()).Path()
}

// usable reports whether the backend may get new requests at now.
func (b *backend) usable(now int64) bool {
	return b.healthy.Load() && now >= b.ejectUntil.Load()
}

func (b *backend) concurrency() int64 { return max(b.conc.Load(), 1) }

// observeLatency updates the EWMA (α = 1/8, as TCP's SRTT) of the service
// time. Only requests that found a free slot are observed: queued ones
// would fold the queueing delay into the estimate and make shedding
// count it twice.
func (b *backend) observeLatency(d time.Duration) {
	old := b.ewmaNanos.Load()
	if old == 0 {
		b.ewmaNanos.Store(int64(d))
		return
	}
	b.ewmaNanos.Store(old + (int64(d)-old)/8)
}

// succeed resets the failure streak.
func (b *backend) succeed() {
	if b.consecFails.Load() != 0 {
		b.consecFails.Store(0)
	}
}

// fail records a failed request and returns true when it ejected the
// backend for an exponentially growing time.
func (b *backend) fail(now time.Time, cfg Config) bool {
	if now.UnixNano() < b.ejectUntil.Load() {
		// Already out: failures of requests sent before the ejection say
		// nothing new.
		return false
	}
	if b.consecFails.Add(1) < int32(cfg.EjectAfter) {
		return false
	}
	b.consecFails.Store(0)
	n := b.ejections.Add(1)
	d := cfg.EjectBase << min(n-1, 20)
	if d > cfg.EjectMax || d <= 0 {
		d = cfg.EjectMax
	}
	b.ejectUntil.Store(now.Add(d).UnixNano())
	return true
}

// release ends one in-flight request; the last one of a removed backend
// signals drained and closes its idle connections.
func (b *backend) release() {
	if b.inFlight.Add(-1) == 0 && b.removed.Load() {
		b.markDrained()
	}
}

func (b *backend) markDrained() {
	b.drainMu.Lock()
	defer b.drainMu.Unlock()
	select {
	case <-b.drained:
	default:
		close(b.drained)
		b.transport.CloseIdleConnections()
		if b.pool != nil {
			b.pool.Close()
		}
	}
}

// remove stops new requests (the table no longer lists it) and arranges
// for drained to close once in-flight requests finish.
func (b *backend) remove() {
	b.removed.Store(true)
	if b.inFlight.Load() == 0 {
		b.markDrained()
	}
}

func (b *backend) closeIdle() {
	b.transport.CloseIdleConnections()
	if b.pool != nil {
		b.pool.CloseIdle()
	}
}

// useStdTransport sends every request through http.Transport instead of
// h1.Pool (for the A/B benchmark in bench_test.go).
var useStdTransport = false
