package metricsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prometheus reads revision figures from a Prometheus HTTP API with two
// instant queries per revision:
//
//	sum(rate(<count>{<ns>="N",<rev>="R"}[W]))
//	histogram_quantile(0.99, sum by (le) (rate(<latency>_bucket{...}[W])))
//
// where <count> is Metrics.RequestCount or <latency>_count.
type Prometheus struct {
	Client  *http.Client
	BaseURL string
	Metrics Metrics
	// Window is the rate window (the adaptation interval is a good choice).
	Window time.Duration
	// NamespaceLabel and RevisionLabel are the series' label names
	// (queue-proxy via the OTel Prometheus exporter: namespace_name,
	// revision_name after the usual relabelling).
	NamespaceLabel, RevisionLabel string
}

var _ Source = (*Prometheus)(nil)

// Read runs the queries for each target.
func (p *Prometheus) Read(ctx context.Context, now time.Time, targets []Target) (map[string]Reading, error) {
	out := map[string]Reading{}
	var errs []error
	w := p.Window
	if w <= 0 {
		w = time.Minute
	}
	win := strconv.Itoa(int(w.Seconds())) + "s"
	for _, t := range targets {
		sel := fmt.Sprintf(`{%s=%q,%s=%q}`, p.NamespaceLabel, t.Namespace, p.RevisionLabel, t.Revision)
		count := p.Metrics.RequestCount
		if count == "" {
			count = p.Metrics.Latency + "_count"
		}
		rps, err := p.query(ctx, now, fmt.Sprintf("sum(rate(%s%s[%s]))", count, sel, win))
		if err != nil {
			errs = append(errs, fmt.Errorf("revision %s/%s: %w", t.Namespace, t.Revision, err))
			continue
		}
		rd := Reading{RPS: rps, Requests: rps * w.Seconds(), Window: w, OK: true}
		if p.Metrics.Latency != "" {
			q, err := p.query(ctx, now, fmt.Sprintf("histogram_quantile(0.99, sum by (le) (rate(%s_bucket%s[%s])))", p.Metrics.Latency, sel, win))
			if err == nil && q == q { // NaN when no requests
				unit := p.Metrics.LatencyUnit
				if unit == 0 {
					unit = time.Second
				}
				rd.P99 = time.Duration(q * float64(unit))
			}
		}
		out[t.Revision] = rd
	}
	return out, errors.Join(errs...)
}

// query runs an instant query and returns the single scalar/vector value
// (0 for an empty vector: no series means no requests).
func (p *Prometheus) query(ctx context.Context, now time.Time, q string) (float64, error) {
	u := strings.TrimSuffix(p.BaseURL, "/") + "/api/v1/query?" + url.Values{
		"query": {q}, "time": {strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	cl := p.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: %w", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("prometheus query %q: decode: %w", q, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("prometheus query %q: %s %s", q, resp.Status, body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, nil
	}
	var sample struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(body.Data.Result[0], &sample); err != nil {
		return 0, fmt.Errorf("prometheus query %q: decode sample: %w", q, err)
	}
	s, _ := sample.Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %q: value %q: %w", q, s, err)
	}
	return v, nil
}
