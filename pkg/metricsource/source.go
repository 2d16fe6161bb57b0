package metricsource

import (
	"context"
	"time"
)

// Pod is one scrape target of a revision.
type Pod struct {
	Name string // unique within the namespace; counters are tracked per pod
	IP   string
}

// Target is one revision to measure.
type Target struct {
	Namespace string
	Revision  string
	Pods      []Pod // ready pods (the pod source); ignored by Prometheus
}

// Reading is a revision's figures over the window since the previous read.
type Reading struct {
	// RPS is requests per second completed over the window.
	RPS float64
	// P99 is the 99th percentile latency over the window (0 if no requests
	// or no latency histogram).
	P99 time.Duration
	// Requests is the number of requests counted in the window.
	Requests float64
	// Window is the length of the measurement window.
	Window time.Duration
	// OK is false when there was nothing to difference against yet.
	OK bool
}

// Source reads the revisions' figures at now. Errors of single pods do not
// fail the call; they are returned joined alongside the readings that
// could be made.
type Source interface {
	Read(ctx context.Context, now time.Time, targets []Target) (map[string]Reading, error)
}

// Metrics names what to read. Queue-proxy of Knative Serving v0.48 exports
// the OpenTelemetry histogram kn.serving.invocation.duration (seconds), seen
// by Prometheus as kn_serving_invocation_duration_seconds; older releases
// exported revision_app_request_count (counter) and
// revision_app_request_latencies (histogram, milliseconds).
type Metrics struct {
	// RequestCount is a counter of requests; "" means: use the latency
	// histogram's sample count.
	RequestCount string
	// Latency is a histogram of request latencies in LatencyUnit.
	Latency     string
	LatencyUnit time.Duration
}
