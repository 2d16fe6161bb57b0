package e2e

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/infadapter/infadapter/e2e/harness"
	"github.com/infadapter/infadapter/pkg/metricsource"
)

// TestPrometheusMetricSource checks the autoscaler's Prometheus metric
// source (metricsource.Prometheus, `metrics-source: prometheus`) against a
// real Prometheus (Debian 2.42) scraping two queue-proxy-like expositions:
// the request-duration histogram queue-proxy exports, labelled per revision
// as the usual relabelling leaves it. Each revision is driven at a known
// rate with known latencies; the source's rates and P99s must match them.
// No control plane is needed.
func TestPrometheusMetricSource(t *testing.T) {
	if _, err := harness.PrometheusBinary(); errors.Is(err, harness.ErrPrometheusMissing) {
		if harness.InCI() {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	type rev struct {
		name string
		rps  float64
		// latency of each request in seconds: slow for every slowEvery-th
		// request (0: never), fast otherwise
		fast, slow float64
		slowEvery  int
		// the histogram bucket the P99 must fall in
		p99Lo, p99Hi time.Duration
	}
	revs := []rev{
		// 2 % slow: the 99th percentile lies among the slow ones
		{name: "r1", rps: 40, fast: 0.02, slow: 0.3, slowEvery: 50, p99Lo: 250 * time.Millisecond, p99Hi: 500 * time.Millisecond},
		{name: "r2", rps: 10, fast: 0.08, p99Lo: 50 * time.Millisecond, p99Hi: 100 * time.Millisecond},
	}
	buckets := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	var targets []string
	hists := make([]prometheus.Histogram, len(revs))
	for i, r := range revs {
		reg := prometheus.NewRegistry()
		hists[i] = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kn_serving_invocation_duration_seconds", Help: "queue-proxy request duration", Buckets: buckets,
			ConstLabels: prometheus.Labels{"namespace_name": "default", "revision_name": r.name},
		})
		reg.MustRegister(hists[i])
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
		go srv.Serve(l) //nolint:errcheck // ends with Close
		defer srv.Close()
		targets = append(targets, l.Addr().String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Drive the requests: every 20 ms each revision observes rps·dt
	// requests (fractions carried over), so its true rate is exact.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		frac := make([]float64, len(revs))
		count := make([]int, len(revs))
		everyTick(ctx, 20*time.Millisecond, func(dt float64) {
			for i, r := range revs {
				for frac[i] += r.rps * dt; frac[i] >= 1; frac[i]-- {
					count[i]++
					lat := r.fast
					if r.slowEvery > 0 && count[i]%r.slowEvery == 0 {
						lat = r.slow
					}
					hists[i].Observe(lat)
				}
			}
		})
	}()
	defer func() { cancel(); wg.Wait() }()

	e := &harness.Env{RunDir: t.TempDir()}
	defer e.Stop()
	prom, err := e.StartPrometheus(ctx, harness.PrometheusOptions{ScrapeInterval: 500 * time.Millisecond, StaticTargets: targets})
	if err != nil {
		t.Fatal(err)
	}
	src := &metricsource.Prometheus{
		BaseURL: prom.URL,
		Metrics: metricsource.Metrics{Latency: "kn_serving_invocation_duration_seconds", LatencyUnit: time.Second},
		Window:  10 * time.Second, NamespaceLabel: "namespace_name", RevisionLabel: "revision_name",
	}
	want := []metricsource.Target{{Namespace: "default", Revision: "r1"}, {Namespace: "default", Revision: "r2"}, {Namespace: "default", Revision: "absent"}}
	// The first scrape lands ~5 s after start; a full 10 s window of
	// samples takes ~15 s. Poll until both rates are within 10 % (with a
	// window only partly filled, rate() extrapolates and is noisier).
	start := time.Now()
	var got map[string]metricsource.Reading
	for {
		got, err = src.Read(ctx, time.Now(), want)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		ok := time.Since(start) > 15*time.Second
		for _, r := range revs {
			if math.Abs(got[r.name].RPS-r.rps) > 0.1*r.rps {
				ok = false
			}
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rates never matched: %+v (want r1 %v, r2 %v req/s)", got, revs[0].rps, revs[1].rps)
		case <-time.After(time.Second):
		}
	}
	t.Logf("after %.1fs: %+v", time.Since(start).Seconds(), got)
	for _, r := range revs {
		g := got[r.name]
		if !g.OK || g.Window != 10*time.Second {
			t.Errorf("%s: reading %+v, want OK over a 10 s window", r.name, g)
		}
		if g.P99 <= r.p99Lo || g.P99 > r.p99Hi {
			t.Errorf("%s: P99 %v, want in (%v, %v]", r.name, g.P99, r.p99Lo, r.p99Hi)
		}
	}
	// A revision with no series has no requests (not an error): it may be
	// scaled to zero.
	if a := got["absent"]; !a.OK || a.RPS != 0 || a.P99 != 0 {
		t.Errorf("absent revision: %+v, want OK with 0 req/s and no P99", a)
	}
	// A Prometheus that is not there is an error naming the revision.
	down := *src
	down.BaseURL = "http://127.0.0.1:1"
	if _, err := down.Read(ctx, time.Now(), want[:1]); err == nil {
		t.Error("want an error from an unreachable Prometheus")
	}
}
