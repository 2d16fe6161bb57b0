package loop

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the loop's Prometheus series. Names follow
// infadapter_<subsystem>_<name>_<unit>; the only labels are bounded ones
// (variant names of the profile, a fixed set of phases and results), and the
// per-variant series of a variant that leaves the plan are deleted so the
// dashboard and alerts never see stale values.
type Metrics struct {
	Decisions     *prometheus.CounterVec   // result = applied | unchanged | hold | dry_run | error
	Reactive      prometheus.Counter       // decisions the reactive trigger took between ticks
	PhaseDuration *prometheus.HistogramVec // phase = observe | forecast | solve | apply
	SolveDuration prometheus.Histogram
	ForecastRPS   prometheus.Gauge
	ServedRPS     prometheus.Gauge
	PlanCores     *prometheus.GaugeVec // variant
	PlanShare     *prometheus.GaugeVec // variant
	PlanAccuracy  prometheus.Gauge
	PlanCoresSum  prometheus.Gauge

	mu       sync.Mutex
	variants map[string]bool
}

// NewMetrics creates the loop's metrics and registers them with reg (nil:
// not registered, e.g. in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infadapter_loop_decisions_total",
			Help: "Decisions taken by the adaptation loop, by result (applied, unchanged, hold, dry_run, error).",
		}, []string{"result"}),
		Reactive: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infadapter_loop_reactive_decisions_total",
			Help: "Decisions taken between scheduled ones because the observed load outgrew the capacity of what runs.",
		}),
		PhaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "infadapter_loop_phase_duration_seconds",
			Help:    "Duration of each phase of a decision (observe, forecast, solve, apply), seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12), // 100µs .. ~7 min
		}, []string{"phase"}),
		SolveDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "infadapter_loop_solve_duration_seconds",
			Help:    "Time the decider spent solving for a plan (decide minus forecast), seconds.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10), // 10µs .. ~2.6 s
		}),
		ForecastRPS: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infadapter_loop_forecast_rps",
			Help: "Load (requests/s) the last plan was sized for.",
		}),
		ServedRPS: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infadapter_loop_observed_rps",
			Help: "Mean arrivals per second over the last decision interval, as observed by the loop.",
		}),
		PlanCores: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infadapter_loop_plan_cores",
			Help: "Cores the applied plan gives each variant (backend core units).",
		}, []string{"variant"}),
		PlanShare: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infadapter_loop_plan_share",
			Help: "Share of the traffic the applied plan sends to each variant, in [0,1].",
		}, []string{"variant"}),
		PlanAccuracy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infadapter_loop_plan_accuracy",
			Help: "Expected load-weighted accuracy of the last plan, in [0,1].",
		}),
		PlanCoresSum: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infadapter_loop_plan_cores_total",
			Help: "Total cores of the applied plan (backend core units).",
		}),
		variants: map[string]bool{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Decisions, m.Reactive, m.PhaseDuration, m.SolveDuration,
			m.ForecastRPS, m.ServedRPS, m.PlanCores, m.PlanShare, m.PlanAccuracy, m.PlanCoresSum} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// setPlan sets the per-variant series to the plan and deletes the series of
// variants that are no longer in it.
func (m *Metrics) setPlan(cores map[string]int, shares map[string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	total := 0
	for v := range m.variants {
		if _, ok := cores[v]; !ok {
			m.PlanCores.DeleteLabelValues(v)
			m.PlanShare.DeleteLabelValues(v)
			delete(m.variants, v)
		}
	}
	for v, c := range cores {
		m.variants[v] = true
		m.PlanCores.WithLabelValues(v).Set(float64(c))
		m.PlanShare.WithLabelValues(v).Set(shares[v])
		total += c
	}
	m.PlanCoresSum.Set(float64(total))
}
