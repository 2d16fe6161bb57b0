package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/dispatcher/h1"
	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/internal/httptok"
	"github.com/infadapter/infadapter/pkg/oip"
)

// ErrUnknownModel is returned for a logical model the dispatcher does not serve.
var ErrUnknownModel = errors.New("unknown model")

// table is an immutable routing snapshot of one model.
type table struct {
	backends []*backend
	weights  []float64 // as set, per backend
	bal      *swrr
	allH1    bool // every backend is plain http (h1.Pool): the event loop can serve it
}

func allH1(bs []*backend) bool {
	for _, b := range bs {
		if b.pool == nil {
			return false
		}
	}
	return true
}

// model is one logical model.
type model struct {
	name     string
	tab      atomic.Pointer[table]
	arrivals *secCounter
	inFlight prometheus.Gauge
	retries  prometheus.Counter
	rejected prometheus.Counter // requests_total{variant="-",outcome="rejected"}
}

// Dispatcher routes requests of logical models to their variants' backends.
// It is an http.Handler; create it with New and stop it with Close.
type Dispatcher struct {
	cfg     Config
	clock   clock.WithTicker
	log     *slog.Logger
	metrics *metrics
	timeout time.Duration

	mu       sync.Mutex // serialises changes of models and backends
	models   atomic.Pointer[map[string]*model]
	backends map[string]map[string]*backend // model → key → live backend
	draining map[string][]*backend          // model → removed, maybe not drained

	stop chan struct{}
	wg   sync.WaitGroup
	bufs sync.Pool

	lastRoute atomic.Pointer[routeCache] // see inferRoute
	realClock bool                       // clock is the real one
}

// Option customises New.
type Option func(*Dispatcher)

// WithClock injects the clock (default: the real clock).
func WithClock(c clock.WithTicker) Option { return func(d *Dispatcher) { d.clock = c } }

// WithRegisterer registers the metrics with reg (default: none registered;
// use prometheus.NewRegistry() and serve it).
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(d *Dispatcher) { d.metrics = newMetrics(reg) }
}

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *Dispatcher) { d.log = l } }

var _ http.Handler = (*Dispatcher)(nil)

// New validates cfg (after WithDefaults) and returns a running dispatcher
// with no models; its health checker runs until Close.
func New(cfg Config, opts ...Option) (*Dispatcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatcher config: %w", err)
	}
	d := &Dispatcher{cfg: cfg, clock: clock.RealClock{}, log: slog.Default(),
		backends: map[string]map[string]*backend{}, draining: map[string][]*backend{}, stop: make(chan struct{}), timeout: cfg.Timeout()}
	d.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	for _, o := range opts {
		o(d)
	}
	_, d.realClock = d.clock.(clock.RealClock)
	if d.metrics == nil {
		d.metrics = newMetrics(nil)
	}
	d.log = d.log.With("component", "dispatcher")
	empty := map[string]*model{}
	d.models.Store(&empty)
	if cfg.HealthInterval > 0 {
		d.wg.Add(1)
		go d.healthLoop()
	}
	return d, nil
}

// Config returns the effective configuration.
func (d *Dispatcher) Config() Config { return d.cfg }

// Close stops health checks and closes idle backend connections. In-flight
// requests are not interrupted (the HTTP server's Shutdown drains them).
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, bs := range d.backends {
		for _, b := range bs {
			b.closeIdle()
		}
	}
	return nil
}

func (d *Dispatcher) model(name string) *model { return (*d.models.Load())[name] }

// Models returns the logical model names, sorted.
func (d *Dispatcher) Models() []string {
	return slices.Sorted(maps.Keys(*d.models.Load()))
}

// SetBackends replaces a model's backends and weights atomically, creating
// the model if needed. Backends that stay (same variant, URL and model
// name) keep their connection pool and health state; removed ones get no
// new requests and finish the ones they have (WaitDrained waits for that).
// An error leaves everything unchanged.
func (d *Dispatcher) SetBackends(modelName string, bs []Backend) error {
	if err := validModelName(modelName); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, b := range bs {
		if err := b.validate(fmt.Sprintf("model %q backend %d", modelName, i)); err != nil {
			return err
		}
		if seen[b.key()] {
			return fmt.Errorf("model %q backend %d: duplicate (variant %q, url %q)", modelName, i, b.Variant, b.URL)
		}
		seen[b.key()] = true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.model(modelName)
	if m == nil {
		m = &model{name: modelName,
			arrivals: newSecCounter(d.cfg.HistorySeconds, d.clock.Now()),
			inFlight: d.metrics.inFlight.WithLabelValues(modelName),
			retries:  d.metrics.retries.WithLabelValues(modelName),
			rejected: d.metrics.requests.WithLabelValues(modelName, noVariant, OutcomeRejected),
		}
		next := maps.Clone(*d.models.Load())
		next[modelName] = m
		d.models.Store(&next)
		d.backends[modelName] = map[string]*backend{}
	}
	live := d.backends[modelName]
	oldVariants := variantsOf(live)
	tab := &table{weights: make([]float64, len(bs))}
	nextLive := map[string]*backend{}
	for i, spec := range bs {
		b := live[spec.key()]
		if b == nil {
			b = d.newBackend(modelName, spec)
		}
		b.conc.Store(int64(max(spec.Concurrency, 1)))
		tab.backends = append(tab.backends, b)
		tab.weights[i] = spec.Weight
		nextLive[spec.key()] = b
	}
	tab.bal = newSWRR(quantize(tab.weights))
	tab.allH1 = allH1(tab.backends)
	m.tab.Store(tab)
	d.backends[modelName] = nextLive
	for k, b := range live {
		if nextLive[k] == nil {
			b.remove()
			d.draining[modelName] = append(d.draining[modelName], b)
		}
	}
	d.publishShares(modelName, tab, oldVariants)
	d.log.Debug("backends set", "model", modelName, "backends", describe(tab))
	return nil
}

// SetWeights sets the shares of a model's variants (relative weights >= 0,
// normalised by their sum); a variant's weight is split evenly among its
// backends and variants left out get 0. Unknown variants are an error and
// leave the weights unchanged. Like SetBackends it takes effect atomically.
func (d *Dispatcher) SetWeights(modelName string, weights map[string]float64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.model(modelName)
	if m == nil {
		return fmt.Errorf("%w %q", ErrUnknownModel, modelName)
	}
	old := m.tab.Load()
	perVariant := map[string]int{}
	for _, b := range old.backends {
		perVariant[b.spec.Variant]++
	}
	for _, v := range slices.Sorted(maps.Keys(weights)) {
		w := weights[v]
		if perVariant[v] == 0 {
			return fmt.Errorf("model %q: no backend of variant %q (have %v)", modelName, v, slices.Sorted(maps.Keys(perVariant)))
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("model %q variant %q: weight must be a finite number >= 0, got %v", modelName, v, w)
		}
	}
	tab := &table{backends: old.backends, weights: make([]float64, len(old.backends))}
	for i, b := range old.backends {
		w := weights[b.spec.Variant] / float64(perVariant[b.spec.Variant])
		tab.weights[i] = w
	}
	tab.bal = newSWRR(quantize(tab.weights))
	tab.allH1 = allH1(tab.backends)
	m.tab.Store(tab)
	d.publishShares(modelName, tab, nil)
	return nil
}

// RemoveModel stops serving a model: its backends get no new requests and
// its metric series are deleted.
func (d *Dispatcher) RemoveModel(modelName string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.model(modelName) == nil {
		return fmt.Errorf("%w %q", ErrUnknownModel, modelName)
	}
	next := maps.Clone(*d.models.Load())
	delete(next, modelName)
	d.models.Store(&next)
	for _, b := range d.backends[modelName] {
		b.remove()
		d.draining[modelName] = append(d.draining[modelName], b)
	}
	delete(d.backends, modelName)
	d.metrics.forgetModel(modelName)
	return nil
}

// WaitDrained blocks until every backend removed from the model (by
// SetBackends or RemoveModel) has finished its in-flight requests, or ctx
// ends. Callers stop old instances only after it returns nil.
func (d *Dispatcher) WaitDrained(ctx context.Context, modelName string) error {
	d.mu.Lock()
	pending := slices.Clone(d.draining[modelName])
	d.mu.Unlock()
	for _, b := range pending {
		select {
		case <-b.drained:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (%s) to drain %d requests: %w", b.spec.URL, b.spec.Variant, b.inFlight.Load(), ctx.Err())
		}
	}
	d.mu.Lock()
	d.draining[modelName] = slices.DeleteFunc(d.draining[modelName], func(b *backend) bool {
		select {
		case <-b.drained:
			return true
		default:
			return false
		}
	})
	if len(d.draining[modelName]) == 0 {
		delete(d.draining, modelName)
	}
	d.mu.Unlock()
	return nil
}

func (d *Dispatcher) newBackend(modelName string, spec Backend) *backend {
	b := newBackend(spec, d.cfg)
	b.requests = map[string]prometheus.Counter{}
	for _, o := range []string{OutcomeOK, OutcomeClientError, OutcomeServerError, OutcomeConnError, OutcomeTimeout, OutcomeCanceled, OutcomeShed} {
		b.requests[o] = d.metrics.requests.WithLabelValues(modelName, spec.Variant, o)
	}
	b.latency = d.metrics.latency.WithLabelValues(modelName, spec.Variant)
	m := d.model(modelName)
	// All instances of a variant share one arrival counter.
	for _, o := range d.backends[modelName] {
		if o.spec.Variant == spec.Variant {
			b.variantArr = o.variantArr
			break
		}
	}
	if b.variantArr == nil {
		start := d.clock.Now()
		if m != nil {
			start = time.Unix(m.arrivals.start, 0)
		}
		b.variantArr = newSecCounter(d.cfg.HistorySeconds, start)
	}
	return b
}

func variantsOf(bs map[string]*backend) map[string]bool {
	out := map[string]bool{}
	for _, b := range bs {
		out[b.spec.Variant] = true
	}
	return out
}

// publishShares updates the share and health gauges and forgets variants
// that disappeared.
func (d *Dispatcher) publishShares(modelName string, tab *table, oldVariants map[string]bool) {
	share := map[string]float64{}
	var sum float64
	for i, b := range tab.backends {
		share[b.spec.Variant] += tab.weights[i]
		sum += tab.weights[i]
	}
	for v, w := range share {
		if sum > 0 {
			w /= sum
		}
		d.metrics.weight.WithLabelValues(modelName, v).Set(w)
		delete(oldVariants, v)
	}
	for v := range oldVariants {
		d.metrics.forget(modelName, v)
	}
	d.updateHealthGauges(modelName, tab)
}

func (d *Dispatcher) updateHealthGauges(modelName string, tab *table) {
	now := d.clock.Now().UnixNano()
	n := map[string]float64{}
	for _, b := range tab.backends {
		if b.usable(now) {
			n[b.spec.Variant]++
		} else {
			n[b.spec.Variant] += 0
		}
	}
	for v, c := range n {
		d.metrics.healthy.WithLabelValues(modelName, v).Set(c)
	}
}

func describe(tab *table) []string {
	out := make([]string, len(tab.backends))
	for i, b := range tab.backends {
		out[i] = fmt.Sprintf("%s@%s=%g", b.spec.Variant, b.spec.URL, tab.weights[i])
	}
	return out
}

func validModelName(n string) error {
	if _, err := oip.ParsePath(oip.InferPath(n)); err != nil || n == "" {
		return fmt.Errorf("invalid model name %q: must be non-empty without '/:?#'", n)
	}
	return nil
}

// pick chooses a usable backend by SWRR; exclude (may be nil) is skipped and
// its variant avoided when another variant is usable. When every backend
// with weight is unusable it falls back to ignoring health and ejection
// (nginx does the same: better to try than to fail for sure).
func (t *table) pick(now int64, exclude *backend) *backend {
	if len(t.backends) == 0 {
		return nil
	}
	if exclude != nil {
		i := t.bal.next(func(i int) bool {
			b := t.backends[i]
			return b != exclude && b.spec.Variant != exclude.spec.Variant && b.usable(now)
		})
		if i < 0 {
			i = t.bal.next(func(i int) bool { return t.backends[i] != exclude && t.backends[i].usable(now) })
		}
		if i < 0 {
			i = t.bal.next(func(i int) bool { return t.backends[i] != exclude })
		}
		if i < 0 {
			return nil
		}
		return t.backends[i]
	}
	i := t.bal.next(func(i int) bool { return t.backends[i].usable(now) })
	if i < 0 {
		i = t.bal.next(func(int) bool { return true })
	}
	if i < 0 {
		return nil
	}
	return t.backends[i]
}

// ServeHTTP serves the OIP v2 and TF Serving REST APIs of every logical
// model, plus /v2/health/{live,ready} and /v2 for the dispatcher itself.
func (d *Dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, err := oip.ParsePath(r.URL.Path)
	if err != nil {
		oip.WriteError(w, oip.StatusOf(err), err.Error())
		return
	}
	if !route.Kind.PerModel() {
		d.serveServer(w, r, route)
		return
	}
	m := d.model(route.Model)
	if m == nil {
		oip.WriteError(w, http.StatusNotFound, fmt.Sprintf("unknown model %q (serving %v)", route.Model, d.Models()))
		return
	}
	if r.Method != route.Kind.Method() && !(r.Method == http.MethodHead && route.Kind.Method() == http.MethodGet) {
		w.Header().Set("Allow", route.Kind.Method())
		m.rejected.Inc()
		oip.WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: want %s", r.Method, r.URL.Path, route.Kind.Method()))
		return
	}
	if route.Kind == oip.KindModelReady {
		ready := d.modelReady(m)
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		oip.WriteJSON(w, status, oip.ModelReadyResponse{Name: m.name, Ready: ready})
		return
	}
	var body []byte
	var start time.Time
	if route.Kind.IsInference() {
		if r.ContentLength > d.cfg.MaxBodyBytes {
			m.rejected.Inc()
			oip.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is larger than the limit of %d", r.ContentLength, d.cfg.MaxBodyBytes))
			return
		}
		body, err = readBody(r, d.cfg.MaxBodyBytes)
		if err == nil && d.cfg.ValidateJSON {
			binLen := int64(-1)
			if v := r.Header.Values(binaryHeader); len(v) > 0 {
				if binLen = httptok.ParseDigits([]byte(v[0])); len(v) > 1 || binLen < 0 {
					err = &oip.RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("%s %q: want one non-negative integer", binaryHeader, strings.Join(v, ", "))}
				}
			}
			if err == nil {
				if verr := validateInferBody(body, binLen); verr != nil {
					err = &oip.RequestError{Status: http.StatusBadRequest, Msg: verr.Error()}
				}
			}
		}
		if err != nil {
			m.rejected.Inc()
			oip.WriteError(w, oip.StatusOf(err), err.Error())
			return
		}
		start = d.clock.Now()
		m.arrivals.add(start)
	} else {
		start = d.clock.Now()
	}
	xff := remoteIP(r.RemoteAddr)
	if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 && xff != "" {
		xff = strings.Join(prior, ", ") + ", " + xff
	}
	d.forward(w, &proxyReq{ctx: r.Context(), method: r.Method, rawQuery: r.URL.RawQuery, header: r.Header, xff: xff}, m, route, body, start)
}

// proxyReq is what forward needs of a client request; the net/http path
// (ServeHTTP) and the fast path (server.go) fill it from their own
// representations.
type proxyReq struct {
	ctx      context.Context // the client's, canceled when it goes away (net/http path); nil on the fast path
	method   string
	rawQuery string
	// header is the client's header (net/http path); h1 and the https
	// transport drop its hop-by-hop fields. nil on the fast path, which
	// sets rawHeader: header lines already filtered, sent verbatim.
	header    http.Header
	rawHeader []byte
	xff       string // X-Forwarded-For to send ("" = none)
	// bodyEscaped is set when the body went to http.Transport, which may
	// still read it after the exchange: its buffer must not be reused.
	bodyEscaped bool
	// fast is the fast-path connection's state (nil on the net/http
	// path); the answer then goes to an *httpfast.ResponseWriter.
	fast *connState
}

func (d *Dispatcher) serveServer(w http.ResponseWriter, r *http.Request, route oip.Route) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		oip.WriteError(w, http.StatusMethodNotAllowed, "want GET")
		return
	}
	switch route.Kind {
	case oip.KindServerLive:
		oip.WriteJSON(w, http.StatusOK, oip.LiveResponse{Live: true})
	case oip.KindServerReady:
		// Ready when every model has a usable backend with weight.
		ready := len(*d.models.Load()) > 0
		for _, m := range *d.models.Load() {
			ready = ready && d.modelReady(m)
		}
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		oip.WriteJSON(w, status, oip.ReadyResponse{Ready: ready})
	default:
		oip.WriteJSON(w, http.StatusOK, oip.ServerMetadata{Name: "infadapter-dispatcher", Version: "v1", Extensions: []string{}})
	}
}

func (d *Dispatcher) modelReady(m *model) bool {
	now := d.clock.Now().UnixNano()
	tab := m.tab.Load()
	for i, b := range tab.backends {
		if tab.weights[i] > 0 && b.usable(now) {
			return true
		}
	}
	return false
}

// forward proxies one request with at most one retry; start is when it
// arrived (now, on d's clock: one clock read fewer per request).
func (d *Dispatcher) forward(w http.ResponseWriter, r *proxyReq, m *model, route oip.Route, body []byte, start time.Time) {
	m.inFlight.Inc()
	defer m.inFlight.Dec()
	// On the fast path (no client context: nothing to follow but the
	// timeout) requests to h1 backends need no cancellable context.
	var ctx context.Context
	cancel := func() {}
	if r.ctx != nil {
		ctx, cancel = context.WithTimeout(r.ctx, d.timeout)
	} else if r.fast != nil {
		// Socket deadlines are in real time: start is, unless a test
		// injected another clock.
		now := start
		if !d.realClock {
			now = time.Now()
		}
		r.fast.deadline = h1.Deadline{At: now.Add(d.timeout)}
		ctx = &r.fast.deadline
	} else {
		ctx = h1.DeadlineContext(time.Now().Add(d.timeout))
	}
	defer func() { cancel() }()

	b, ref := d.admit(m, start)
	if b == nil {
		if ref.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ref.retryAfter))
		}
		oip.WriteError(w, http.StatusServiceUnavailable, ref.msg)
		return
	}
	for attempt := 0; ; attempt++ {
		// Requests ahead of this one on b: if fewer than its concurrency,
		// this one is not queued and its latency is a service time.
		queued := b.inFlight.Load()-1 >= b.concurrency()
		sent := start // the first attempt: picking a backend took a few hundred ns at most
		if attempt > 0 {
			sent = d.clock.Now()
		}
		var status int
		var copyErr, err error
		if fw, ok := w.(*httpfast.ResponseWriter); ok && r.fast != nil && b.pool != nil {
			status, copyErr, err = d.relayRaw(ctx, fw, r, b, route, body)
		} else {
			actx := ctx
			if r.ctx == nil {
				// http.Transport needs a context that ends at the deadline.
				dl, _ := ctx.Deadline()
				var c2 context.CancelFunc
				actx, c2 = context.WithDeadline(context.Background(), dl)
				prev := cancel
				cancel = func() { prev(); c2() }
			}
			r.bodyEscaped = true
			var resp *http.Response
			if resp, err = d.roundTrip(actx, r, b, route, body); err == nil {
				status, copyErr = d.relay(w, b, resp)
			}
		}
		if err == nil {
			d.account(m, b, status, copyErr, start, sent, queued)
			b.release()
			return
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			outcome, status := OutcomeTimeout, http.StatusGatewayTimeout
			if r.ctx != nil && r.ctx.Err() != nil {
				outcome, status = OutcomeCanceled, 499
			}
			b.requests[outcome].Inc()
			b.release()
			oip.WriteError(w, status, fmt.Sprintf("%s: no answer within %v: %v", b.spec.Variant, d.timeout, err))
			return
		}
		if b.fail(d.clock.Now(), d.cfg) {
			d.metrics.ejections.WithLabelValues(m.name, b.spec.Variant).Inc()
			d.log.Warn("backend ejected", "model", m.name, "variant", b.spec.Variant, "url", b.spec.URL, "err", err)
		}
		nb := (*backend)(nil)
		if attempt == 0 {
			nb = d.acquire(m, d.clock.Now().UnixNano(), b)
		}
		if nb == nil {
			b.requests[OutcomeConnError].Inc()
			b.release()
			oip.WriteError(w, http.StatusBadGateway, fmt.Sprintf("%s at %s: %v", b.spec.Variant, b.spec.URL, err))
			return
		}
		b.release()
		m.retries.Inc()
		b = nb
	}
}

// acquire picks a backend and counts the request in flight on it,
// re-picking if the backend was removed concurrently (the check after the
// increment pairs with backend.remove, so a removed backend that has
// drained never gets a request).
func (d *Dispatcher) acquire(m *model, now int64, exclude *backend) *backend {
	for range 3 {
		b := m.tab.Load().pick(now, exclude)
		if b == nil {
			return nil
		}
		b.inFlight.Add(1)
		if !b.removed.Load() {
			return b
		}
		b.release()
	}
	return nil
}

// refusal is why admit gave a request no backend: answer 503 with msg,
// and with Retry-After: retryAfter seconds when it is above 0 (shed).
type refusal struct {
	msg        string
	retryAfter int
}

// admit picks the backend for a new request of m arriving at start
// (acquire: the caller must release it) and applies load shedding; it
// counts a refusal in the metrics. Both servers call it.
func (d *Dispatcher) admit(m *model, start time.Time) (*backend, refusal) {
	b := d.acquire(m, start.UnixNano(), nil)
	if b == nil {
		d.metrics.requests.WithLabelValues(m.name, noVariant, OutcomeNoBackend).Inc()
		return nil, refusal{msg: fmt.Sprintf("model %q has no backend with a positive weight", m.name)}
	}
	if d.cfg.Shed {
		if wait, shed := d.shouldShed(b); shed {
			b.release()
			b.requests[OutcomeShed].Inc()
			return nil, refusal{
				msg:        fmt.Sprintf("overloaded: expected queueing delay %v on %s would break the %v SLO", wait.Round(time.Millisecond), b.spec.Variant, d.cfg.SLO),
				retryAfter: max(1, int(math.Ceil(wait.Seconds()))),
			}
		}
	}
	return b, refusal{}
}

// shouldShed estimates the wait of a new request on b as an M/M/c queue's
// backlog: (requests beyond its c servers) / c × its mean service time.
// With the service time itself the response would come after wait+service;
// if that exceeds the SLO the request is better refused now.
func (d *Dispatcher) shouldShed(b *backend) (time.Duration, bool) {
	svc := time.Duration(b.ewmaNanos.Load())
	if svc == 0 {
		return 0, false
	}
	c := b.concurrency()
	ahead := b.inFlight.Load() - 1 // others in flight, excluding this request
	if ahead < c {
		return 0, false
	}
	wait := time.Duration(float64(ahead-c+1) / float64(c) * float64(svc))
	return wait, wait+svc > d.cfg.SLO
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (d *Dispatcher) roundTrip(ctx context.Context, r *proxyReq, b *backend, route oip.Route, body []byte) (*http.Response, error) {
	path := b.path(route)
	if r.rawQuery != "" {
		path += "?" + r.rawQuery
	}
	if b.pool != nil {
		// h1 drops hop-by-hop headers itself, so r.header needs no copy.
		var extra []string
		if r.xff != "" {
			extra = []string{"X-Forwarded-For", r.xff}
		}
		return b.pool.RoundTrip(ctx, h1.Request{Method: r.method, PathQuery: path, Header: r.header, RawHeader: r.rawHeader, Extra: extra, Body: body})
	}
	var rd io.Reader
	if body != nil {
		rd = bytesReader(body)
	}
	out, err := http.NewRequestWithContext(ctx, r.method, b.base+path, rd)
	if err != nil {
		return nil, err
	}
	if r.header != nil {
		out.Header = r.header.Clone()
	} else if out.Header, err = parseRawHeader(r.rawHeader); err != nil {
		return nil, err
	}
	if out.Header == nil {
		out.Header = http.Header{}
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if r.xff != "" {
		out.Header.Set("X-Forwarded-For", r.xff)
	}
	return b.transport.RoundTrip(out)
}

// relay copies the backend response to the client; copyErr is an error
// while copying the body.
func (d *Dispatcher) relay(w http.ResponseWriter, b *backend, resp *http.Response) (status int, copyErr error) {
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h[oip.VariantHeader] = b.variantHdr // shared, read-only
	w.WriteHeader(resp.StatusCode)
	bp := d.bufs.Get().(*[]byte)
	_, copyErr = io.CopyBuffer(w, resp.Body, *bp)
	d.bufs.Put(bp)
	return resp.StatusCode, copyErr
}

// dropVariantHeader: a backend's own X-Infadapter-Variant is replaced.
var dropVariantHeader = []string{strings.ToLower(oip.VariantHeader)}

// relayRaw is roundTrip and relay for the fast server path and an h1
// backend: the response head goes to the client as the lines the backend
// sent (hop-by-hop ones dropped), without an http.Response in between.
func (d *Dispatcher) relayRaw(ctx context.Context, w *httpfast.ResponseWriter, r *proxyReq, b *backend, route oip.Route, body []byte) (status int, copyErr, err error) {
	path := b.path(route)
	if r.rawQuery != "" {
		path += "?" + r.rawQuery
	}
	var extra []string
	if r.xff != "" {
		r.fast.extra = [2]string{"X-Forwarded-For", r.xff}
		extra = r.fast.extra[:]
	}
	rr := &r.fast.raw
	err = b.pool.RoundTripRaw(ctx, h1.Request{Method: r.method, PathQuery: path, RawHeader: r.rawHeader, Extra: extra, Body: body,
		DropResponseHeaders: dropVariantHeader}, rr)
	if err != nil {
		return 0, nil, err
	}
	defer rr.Body.Close()
	return rr.StatusCode, r.fast.relayRaw(w, rr, b), nil
}

// account records a relayed response: metrics, arrivals, passive health
// and the service-time estimate. sent is when the request went to b;
// unless queued (it found every slot of b busy), its duration estimates
// b's service time (used by load shedding).
func (d *Dispatcher) account(m *model, b *backend, status int, copyErr error, start, sent time.Time, queued bool) {
	now := d.clock.Now() // one clock read for both durations (~0.1 µs each on a VM)
	elapsed := now.Sub(start)
	outcome := OutcomeOK
	switch {
	case copyErr != nil:
		outcome = OutcomeConnError
	case status >= 500:
		outcome = OutcomeServerError
	case status >= 400:
		outcome = OutcomeClientError
	}
	b.requests[outcome].Inc()
	b.latency.Observe(elapsed.Seconds())
	b.variantArr.add(start)
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if b.fail(now, d.cfg) {
			d.metrics.ejections.WithLabelValues(m.name, b.spec.Variant).Inc()
		}
	default:
		if copyErr == nil {
			b.succeed()
			if status < 400 && !queued {
				b.observeLatency(now.Sub(sent))
			}
		}
	}
}

func remoteIP(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
	}
	return addr
}

// Status describes one backend for the admin API and tests.
type Status struct {
	Backend
	Share      float64 `json:"share"` // normalised weight in [0,1]
	Healthy    bool    `json:"healthy"`
	Ejected    bool    `json:"ejected"`
	InFlight   int64   `json:"inFlight"`
	MeanMillis float64 `json:"meanMillis"` // EWMA of successful response time
}

// ModelStatus describes one logical model.
type ModelStatus struct {
	Name     string   `json:"name"`
	Backends []Status `json:"backends"`
}

// Status returns a model's backends with shares and health.
func (d *Dispatcher) Status(modelName string) (ModelStatus, error) {
	m := d.model(modelName)
	if m == nil {
		return ModelStatus{}, fmt.Errorf("%w %q", ErrUnknownModel, modelName)
	}
	tab := m.tab.Load()
	var sum float64
	for _, w := range tab.weights {
		sum += w
	}
	now := d.clock.Now().UnixNano()
	out := ModelStatus{Name: modelName, Backends: []Status{}}
	for i, b := range tab.backends {
		s := Status{Backend: b.spec, Healthy: b.healthy.Load(), Ejected: now < b.ejectUntil.Load(),
			InFlight: b.inFlight.Load(), MeanMillis: float64(b.ewmaNanos.Load()) / 1e6}
		s.Weight = tab.weights[i]
		s.Concurrency = int(b.conc.Load())
		if sum > 0 {
			s.Share = tab.weights[i] / sum
		}
		out.Backends = append(out.Backends, s)
	}
	sort.SliceStable(out.Backends, func(i, j int) bool { return out.Backends[i].Variant < out.Backends[j].Variant })
	return out, nil
}

// History returns a model's per-second arrival counts (inference requests
// that passed validation, shed ones included: the offered load), oldest
// first, of the complete seconds before now; at most max (<= 0: all kept),
// none before the model was added. Unknown models give nil.
func (d *Dispatcher) History(modelName string, now time.Time, max int) []float64 {
	m := d.model(modelName)
	if m == nil {
		return nil
	}
	return m.arrivals.history(now, max)
}

// VariantRPS returns each current variant's mean served requests per second
// over the complete seconds of window ending at now.
func (d *Dispatcher) VariantRPS(modelName string, now time.Time, window time.Duration) map[string]float64 {
	m := d.model(modelName)
	if m == nil {
		return nil
	}
	n := max(int(window/time.Second), 1)
	out := map[string]float64{}
	seen := map[*secCounter]bool{}
	for _, b := range m.tab.Load().backends {
		if seen[b.variantArr] {
			continue
		}
		seen[b.variantArr] = true
		h := b.variantArr.history(now, n)
		var s float64
		for _, x := range h {
			s += x
		}
		out[b.spec.Variant] = s / float64(n)
	}
	return out
}
