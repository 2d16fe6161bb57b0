package modelserver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infadapter/infadapter/pkg/oip"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inference prometheus.Histogram
	batch     prometheus.Histogram
}

// latencyBuckets spans 50 µs (the smallest model's inference) to 2.5 s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 16)

func newMetrics(reg prometheus.Registerer, model string, workers int) *metrics {
	cl := prometheus.Labels{"model": model}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infadapter_modelserver_requests_total", Help: "Inference requests by protocol and HTTP status.", ConstLabels: cl,
		}, []string{"protocol", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infadapter_modelserver_request_duration_seconds", Help: "Inference request latency in the server (seconds), queueing included.",
			ConstLabels: cl, Buckets: latencyBuckets,
		}, []string{"protocol"}),
		inference: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "infadapter_modelserver_inference_duration_seconds", Help: "Time waiting for a worker plus ONNX Runtime runs of one request (seconds).",
			ConstLabels: cl, Buckets: latencyBuckets,
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "infadapter_modelserver_batch_size", Help: "Examples per ONNX Runtime run of the dynamic batcher (only with dynamic batching on).",
			ConstLabels: cl, Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	w := prometheus.NewGauge(prometheus.GaugeOpts{Name: "infadapter_modelserver_workers", Help: "Inference workers (sessions).", ConstLabels: cl})
	w.Set(float64(workers))
	reg.MustRegister(m.requests, m.latency, m.inference, m.batch, w)
	return m
}

func (m *metrics) observe(k oip.Kind, code int, d time.Duration) {
	proto := "v2"
	if k == oip.KindTFPredict {
		proto = "tfserving"
	}
	m.requests.WithLabelValues(proto, codeLabel(code)).Inc()
	if code < 400 {
		m.latency.WithLabelValues(proto).Observe(d.Seconds())
	}
}
