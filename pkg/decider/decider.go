package decider

import "time"

// VariantState is what is running (or decided to run) for one variant.
type VariantState struct {
	Name     string `json:"name"`
	Cores    int    `json:"cores"`    // per replica; 0 = off
	Replicas int    `json:"replicas"` // 0 = off
	// Share of the service's traffic in [0,1]; the shares of a plan sum to 1
	// when anything runs.
	Share float64 `json:"share"`
	// RPS is the load the plan expects this variant to take.
	RPS float64 `json:"rps,omitempty"`
}

// VariantObservation is what was measured for one variant over the last
// interval. Fields a source cannot provide are zero.
type VariantObservation struct {
	Name          string  `json:"name"`
	RPS           float64 `json:"rps"`           // mean arrivals/s to the variant
	CPUUsageCores float64 `json:"cpuUsageCores"` // mean CPU used, cores (VPA/HPA)
	P99Millis     float64 `json:"p99Millis"`
	InFlight      float64 `json:"inFlight"` // mean concurrent requests (KPA)
}

// Observation is everything a Decider may look at. It is plain data so the
// simulator, the local loop and the Kubernetes controller can all build it.
type Observation struct {
	// History holds per-second request counts of the whole service, oldest
	// first; the last entry is the second that ended at the decision time.
	History []float64 `json:"-"`
	// Current is what runs now.
	Current []VariantState `json:"current"`
	// Variants holds per-variant measurements of the last interval.
	Variants []VariantObservation `json:"variants,omitempty"`
	// MinLoad, when > 0, is a load (RPS) the plan must cover whatever the
	// forecast says: the reactive trigger sets it when the load observed
	// already outgrew what runs (see Reactive). Deciders that plan for a
	// load honour it; others ignore it.
	MinLoad float64 `json:"minLoad,omitempty"`
}

// Plan is a Decider's answer: the full target state of the service.
type Plan struct {
	Variants []VariantState `json:"variants"` // only variants with cores > 0
	// Forecast is the load (RPS) the plan was sized for.
	Forecast  float64 `json:"forecast"`
	Feasible  bool    `json:"feasible"`
	Objective float64 `json:"objective"`
	Accuracy  float64 `json:"accuracy"` // expected load-weighted accuracy
	// Hold is true when the decider chose to keep the current state (e.g.
	// scale-down stabilisation); Variants then equals the current state.
	Hold   bool   `json:"hold,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Cores is the plan's total cores.
func (p Plan) Cores() int {
	n := 0
	for _, v := range p.Variants {
		n += v.Cores * max(v.Replicas, 1)
	}
	return n
}

// Decider decides the next plan of one service. Implementations are pure:
// no I/O, no wall clock (now is passed in), seeded randomness only. They may
// keep state between calls (stabilisation counters, histograms), so one
// Decider instance serves one service.
type Decider interface {
	// Name is the policy name used in reports ("infadapter", "ms+", "vpa-resnet50").
	Name() string
	// Decide returns the target plan at time now. It always returns a plan
	// that can be applied; an error means the observation was unusable and
	// the caller should keep the current state.
	Decide(now time.Time, obs Observation) (Plan, error)
}
