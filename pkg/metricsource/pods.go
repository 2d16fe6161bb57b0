package metricsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Counters is what one scrape of one pod yields: cumulative values.
type Counters struct {
	Requests float64
	// Buckets maps a latency upper bound (in LatencyUnit, +Inf included) to
	// the cumulative count at or below it.
	Buckets map[float64]float64
}

// ParseExposition extracts Counters from a Prometheus text exposition,
// summing over all label sets of the named metrics. It errors when neither
// metric is present, naming both.
func ParseExposition(r io.Reader, m Metrics) (Counters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Counters{}, fmt.Errorf("parse metrics: %w", err)
	}
	c := Counters{Buckets: map[float64]float64{}}
	haveCount, haveHist := false, false
	if m.RequestCount != "" {
		if f, ok := fams[m.RequestCount]; ok {
			haveCount = true
			for _, mt := range f.GetMetric() {
				c.Requests += value(f.GetType(), mt)
			}
		}
	}
	if f, ok := fams[m.Latency]; ok && m.Latency != "" && f.GetType() == dto.MetricType_HISTOGRAM {
		haveHist = true
		var n float64
		for _, mt := range f.GetMetric() {
			h := mt.GetHistogram()
			n += float64(h.GetSampleCount())
			hasInf := false
			for _, b := range h.GetBucket() {
				c.Buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !hasInf { // client_golang omits it; the count is the +Inf bucket
				c.Buckets[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		if m.RequestCount == "" {
			c.Requests, haveCount = n, true
		}
	}
	if !haveCount {
		return Counters{}, fmt.Errorf("metric %q (requests) not found", firstNonEmpty(m.RequestCount, m.Latency))
	}
	if !haveHist {
		c.Buckets = nil
	}
	return c, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	case dto.MetricType_SUMMARY:
		return float64(m.GetSummary().GetSampleCount())
	}
	return 0
}

// Quantile estimates the q-quantile from cumulative buckets by linear
// interpolation inside the bucket that holds it, like PromQL's
// histogram_quantile. A quantile in the +Inf bucket returns the largest
// finite bound. Returns 0 when the buckets hold no samples.
func Quantile(q float64, buckets map[float64]float64) float64 {
	bounds := make([]float64, 0, len(buckets))
	for b := range buckets {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := buckets[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := buckets[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			if c == prevCount {
				return b
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, c
	}
	return prevBound
}

// PodScraper scrapes pods over HTTP. It keeps the last counters per pod in
// memory to difference them; a restarted controller therefore needs two
// reads before it reports rates again.
type PodScraper struct {
	Client  *http.Client
	Port    int
	Path    string
	Metrics Metrics

	mu   sync.Mutex
	last map[string]podSample // by namespace/pod
}

type podSample struct {
	at time.Time
	c  Counters
}

var _ Source = (*PodScraper)(nil)

// Read scrapes every pod of every target concurrently.
func (s *PodScraper) Read(ctx context.Context, now time.Time, targets []Target) (map[string]Reading, error) {
	type res struct {
		key, rev string
		c        Counters
		err      error
	}
	var wg sync.WaitGroup
	ch := make(chan res, 16)
	for _, t := range targets {
		for _, p := range t.Pods {
			wg.Add(1)
			go func(t Target, p Pod) {
				defer wg.Done()
				c, err := s.scrape(ctx, p.IP)
				if err != nil {
					err = fmt.Errorf("pod %s/%s (%s): %w", t.Namespace, p.Name, p.IP, err)
				}
				ch <- res{key: t.Namespace + "/" + p.Name, rev: t.Revision, c: c, err: err}
			}(t, p)
		}
	}
	go func() { wg.Wait(); close(ch) }()

	type agg struct {
		reqs    float64
		buckets map[float64]float64
		window  time.Duration
		ok      bool
	}
	aggs := map[string]*agg{}
	for _, t := range targets {
		aggs[t.Revision] = &agg{buckets: map[float64]float64{}}
	}
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]podSample{}
	}
	seen := map[string]bool{}
	for r := range ch {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		seen[r.key] = true
		prev, had := s.last[r.key]
		s.last[r.key] = podSample{at: now, c: r.c}
		if !had || !now.After(prev.at) {
			continue
		}
		a := aggs[r.rev]
		d := r.c.Requests - prev.c.Requests
		if d < 0 { // counter reset (container restart): count from zero
			d = r.c.Requests
		}
		a.reqs += d
		for b, v := range r.c.Buckets {
			dv := v - prev.c.Buckets[b]
			if dv < 0 {
				dv = v
			}
			a.buckets[b] += dv
		}
		if w := now.Sub(prev.at); w > a.window {
			a.window = w
		}
		a.ok = true
	}
	for k, v := range s.last { // forget pods that are gone
		if !seen[k] && now.Sub(v.at) > 10*time.Minute {
			delete(s.last, k)
		}
	}
	out := make(map[string]Reading, len(aggs))
	for rev, a := range aggs {
		rd := Reading{OK: a.ok, Requests: a.reqs, Window: a.window}
		if a.ok && a.window > 0 {
			rd.RPS = a.reqs / a.window.Seconds()
			unit := s.Metrics.LatencyUnit
			if unit == 0 {
				unit = time.Second
			}
			rd.P99 = time.Duration(Quantile(0.99, a.buckets) * float64(unit))
		}
		out[rev] = rd
	}
	return out, errors.Join(errs...)
}

func (s *PodScraper) scrape(ctx context.Context, ip string) (Counters, error) {
	if ip == "" {
		return Counters{}, errors.New("no pod IP")
	}
	path := s.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := "http://" + net.JoinHostPort(ip, strconv.Itoa(s.Port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Counters{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	cl := s.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return Counters{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Counters{}, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return ParseExposition(io.LimitReader(resp.Body, 16<<20), s.Metrics)
}
