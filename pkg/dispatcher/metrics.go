package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes label requests_total; the set is closed so labels stay bounded.
const (
	OutcomeOK          = "ok"           // 2xx/3xx from the backend
	OutcomeClientError = "client_error" // 4xx from the backend
	OutcomeServerError = "server_error" // 5xx from the backend
	OutcomeConnError   = "conn_error"   // no response from any backend tried
	OutcomeTimeout     = "timeout"      // request timeout hit
	OutcomeCanceled    = "canceled"     // client went away
	OutcomeShed        = "shed"         // rejected by SLO-aware shedding
	OutcomeNoBackend   = "no_backend"   // no usable backend for the model
	OutcomeRejected    = "rejected"     // malformed/oversized request (4xx by us)
)

// noVariant labels requests that never reached a variant.
const noVariant = "-"

type metrics struct {
	requests  *prometheus.CounterVec   // model, variant, outcome
	latency   *prometheus.HistogramVec // model, variant
	inFlight  *prometheus.GaugeVec     // model
	retries   *prometheus.CounterVec   // model
	ejections *prometheus.CounterVec   // model, variant
	weight    *prometheus.GaugeVec     // model, variant
	healthy   *prometheus.GaugeVec     // model, variant: healthy backends
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infadapter_dispatcher_requests_total",
			Help: "Requests to a logical model by the variant that served them ('-' if none) and outcome.",
		}, []string{"model", "variant", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infadapter_dispatcher_request_duration_seconds",
			Help: "Time from receiving a request to the end of its response, seconds.",
			// 0.5 ms .. ~33 s: proxy overhead up to multi-second model latency.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17),
		}, []string{"model", "variant"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infadapter_dispatcher_in_flight_requests",
			Help: "Requests of a logical model being served now.",
		}, []string{"model"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infadapter_dispatcher_retries_total",
			Help: "Requests resent to another backend after a connection failure.",
		}, []string{"model"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infadapter_dispatcher_ejections_total",
			Help: "Passive outlier ejections of a variant's backends.",
		}, []string{"model", "variant"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infadapter_dispatcher_variant_share",
			Help: "Configured traffic share of a variant, in [0,1].",
		}, []string{"model", "variant"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infadapter_dispatcher_healthy_backends",
			Help: "Backends of a variant that pass health checks and are not ejected.",
		}, []string{"model", "variant"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inFlight, m.retries, m.ejections, m.weight, m.healthy)
	}
	return m
}

// forget deletes every series of a model's variant (when it goes away).
func (m *metrics) forget(model, variant string) {
	l := prometheus.Labels{"model": model, "variant": variant}
	m.requests.DeletePartialMatch(l)
	m.latency.Delete(l)
	m.ejections.Delete(l)
	m.weight.Delete(l)
	m.healthy.Delete(l)
}

// forgetModel deletes every series of a model.
func (m *metrics) forgetModel(model string) {
	l := prometheus.Labels{"model": model}
	m.requests.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.inFlight.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.ejections.DeletePartialMatch(l)
	m.weight.DeletePartialMatch(l)
	m.healthy.DeletePartialMatch(l)
}
