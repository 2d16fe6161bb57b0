package autoscaler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Registry holds the controller's metrics; cmd/autoscaler serves it on
// --metrics-addr. Series are per family and variant (bounded by what users
// deploy) and are removed when a family's plan no longer lists a variant.
var Registry = prometheus.NewRegistry()

var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "infadapter_autoscaler_decisions_total",
		Help: "Decisions per family by outcome: decided, hold (stabilisation), dry-run, error.",
	}, []string{"namespace", "family", "outcome"})
	reactiveDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "infadapter_autoscaler_reactive_decisions_total",
		Help: "Decisions taken between intervals because the load read outgrew the capacity of what runs.",
	}, []string{"namespace", "family"})
	solveSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "infadapter_autoscaler_decide_duration_seconds",
		Help:    "Wall time of one Decide call (forecast + solve), seconds.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"namespace", "family"})
	forecastRPS = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "infadapter_autoscaler_forecast_rps",
		Help: "Load (requests/s) the current plan was sized for.",
	}, []string{"namespace", "family"})
	planAccuracy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "infadapter_autoscaler_plan_accuracy",
		Help: "Expected load-weighted accuracy of the current plan.",
	}, []string{"namespace", "family"})
	planCores = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "infadapter_autoscaler_plan_cores",
		Help: "Planned cores per replica of a variant (0 = off).",
	}, []string{"namespace", "family", "variant"})
	planReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "infadapter_autoscaler_plan_replicas",
		Help: "Planned replicas of a variant.",
	}, []string{"namespace", "family", "variant"})
	planShare = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "infadapter_autoscaler_plan_share_percent",
		Help: "Planned traffic share of a variant, integer percent.",
	}, []string{"namespace", "family", "variant"})
	observedRPS = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "infadapter_autoscaler_observed_rps",
		Help: "Measured request rate of a variant over the last observation window.",
	}, []string{"namespace", "family", "variant"})
)

func init() {
	Registry.MustRegister(decisions, reactiveDecisions, solveSeconds, forecastRPS, planAccuracy, planCores, planReplicas, planShare, observedRPS)
}

// recordPlan publishes a stored plan, dropping variants no longer in it.
func recordPlan(ns, fam string, p StoredPlan) {
	forecastRPS.WithLabelValues(ns, fam).Set(p.Forecast)
	planAccuracy.WithLabelValues(ns, fam).Set(p.Accuracy)
	l := prometheus.Labels{"namespace": ns, "family": fam}
	planCores.DeletePartialMatch(l)
	planReplicas.DeletePartialMatch(l)
	planShare.DeletePartialMatch(l)
	for _, v := range p.Variants {
		planCores.WithLabelValues(ns, fam, v.Name).Set(float64(v.Cores))
		planReplicas.WithLabelValues(ns, fam, v.Name).Set(float64(v.Replicas))
		planShare.WithLabelValues(ns, fam, v.Name).Set(float64(v.Percent))
	}
}
