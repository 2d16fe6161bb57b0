package sim

import (
	"math"

	"github.com/infadapter/infadapter/pkg/decider"
)

// Decision records one Decide call.
type Decision struct {
	At       float64 `json:"at"` // seconds from the trace start
	Forecast float64 `json:"forecast"`
	Hold     bool    `json:"hold,omitempty"`
	Changed  bool    `json:"changed,omitempty"` // cores or replicas changed
	Reason   string  `json:"reason,omitempty"`
	// MinLoad is the reactive floor the decision was given (0: none).
	MinLoad  float64                `json:"minLoad,omitempty"`
	Variants []decider.VariantState `json:"variants,omitempty"`
}

// Metrics summarise one policy's run.
type Metrics struct {
	Requests int `json:"requests"`
	// Violations are requests answered after the SLO, dropped or timed out.
	Violations int `json:"violations"`
	Dropped    int `json:"dropped"` // queue full, timed out or nothing serving
	// SLOViolationPct = 100·Violations/Requests.
	SLOViolationPct float64 `json:"sloViolationPct"`
	// WindowViolationPct is the paper-style share (%) of Window-long
	// windows (with requests) whose P99 exceeds the SLO.
	WindowViolationPct float64 `json:"windowViolationPct"`
	// P50Ms and P99Ms are over all requests, dropped ones at Timeout
	// (0.1 ms resolution).
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	// AvgAccuracy is the time average over seconds (with requests) of the
	// load-weighted accuracy of the variants requests were sent to.
	AvgAccuracy float64 `json:"avgAccuracy"`
	// EffectiveAccuracy is the same, counting an answer outside the SLO
	// (late, dropped, timed out) as accuracy 0.
	EffectiveAccuracy float64 `json:"effectiveAccuracy"`
	// AvgCores is the time-averaged allocated cores including instances
	// starting up and draining during transitions; CoreSeconds its integral.
	AvgCores    float64 `json:"avgCores"`
	CoreSeconds float64 `json:"coreSeconds"`
	// Reconfigurations counts decisions that changed any variant's cores
	// or replicas (share-only changes are not counted).
	Reconfigurations int `json:"reconfigurations"`
	Decisions        int `json:"decisions"`
	// Objective = EffectiveAccuracy − α·AvgCores/B: the paper's objective
	// with accuracy counted only within the SLO (β's tie-breaker omitted).
	Objective float64 `json:"objective"`
	// ObjectiveVsOracle = Objective / oracle's Objective (set by
	// RelativeTo; 0 until then).
	ObjectiveVsOracle float64 `json:"objectiveVsOracle"`
}

// Series are per-bucket time series for plots; a bucket is Step seconds.
type Series struct {
	Step     int         `json:"step"`
	Load     []float64   `json:"load"`     // mean arrivals/s
	Forecast []float64   `json:"forecast"` // latest forecast; −1 before the first
	Cores    [][]float64 `json:"cores"`    // [variant][bucket] mean allocated cores
	Accuracy []float64   `json:"accuracy"` // load-weighted; −1 without requests
	// WindowP99 is the P99 latency (ms) of each Window (−1 without requests).
	WindowP99 []float64 `json:"windowP99"`
	Window    int       `json:"window"` // seconds
}

// Result is one policy's run.
type Result struct {
	Name      string     `json:"name"`
	Variants  []string   `json:"variants"`
	Seconds   int        `json:"seconds"`
	Metrics   Metrics    `json:"metrics"`
	Series    Series     `json:"series"`
	Decisions []Decision `json:"decisions"`
}

// maxPoints bounds the series length so reports of week-long runs stay small.
const maxPoints = 2000

func (r *runner) result(rps []float64) *Result {
	n := r.n
	V := len(r.cfg.Variants)
	res := &Result{Name: r.pol.Decider.Name(), Seconds: n, Decisions: r.decisions}
	for _, v := range r.cfg.Variants {
		res.Variants = append(res.Variants, v.Name)
	}
	step := max(1, (n+maxPoints-1)/maxPoints)
	nb := (n + step - 1) / step
	s := Series{Step: step, Window: r.winLen(), Load: make([]float64, nb), Forecast: make([]float64, nb),
		Accuracy: make([]float64, nb), Cores: make([][]float64, V)}
	for v := range s.Cores {
		s.Cores[v] = make([]float64, nb)
	}
	// Cores: integrate every instance's segments over [0, n).
	coreSec := 0.0
	for _, in := range r.all {
		for i, sg := range in.segs {
			end := min(in.end, float64(n))
			if i+1 < len(in.segs) {
				end = min(end, in.segs[i+1].at)
			}
			a := max(sg.at, 0)
			if end <= a {
				continue
			}
			coreSec += float64(sg.cores) * (end - a)
			addSpan(s.Cores[in.v], a, end, float64(sg.cores), step)
		}
	}
	for b := range nb {
		width := float64(min(n, (b+1)*step) - b*step)
		for v := range s.Cores {
			s.Cores[v][b] /= width
		}
		var c, acc float64
		for t := b * step; t < min(n, (b+1)*step); t++ {
			c += r.cnt[t]
			acc += r.accSum[t]
		}
		s.Load[b] = c / width
		s.Accuracy[b] = -1
		if c > 0 {
			s.Accuracy[b] = acc / c
		}
		s.Forecast[b] = -1
	}
	di := 0
	last := -1.0
	for b := range nb {
		end := float64((b + 1) * step)
		for di < len(r.decisions) && r.decisions[di].At < end {
			if f := r.decisions[di].Forecast; f > 0 {
				last = f
			}
			di++
		}
		s.Forecast[b] = last
	}
	s.WindowP99 = make([]float64, len(r.winP99))
	wv, wn := 0, 0
	for w, p := range r.winP99 {
		lo, hi := w*r.winLen(), min(n, (w+1)*r.winLen())
		has := false
		for t := lo; t < hi; t++ {
			has = has || r.cnt[t] > 0
		}
		if !has {
			s.WindowP99[w] = -1
			continue
		}
		s.WindowP99[w] = p * 1000
		wn++
		if p > r.slo {
			wv++
		}
	}
	res.Series = s

	m := Metrics{Requests: r.total, Violations: r.nViol, Dropped: r.drops, Reconfigurations: r.reconfigs,
		Decisions: len(r.decisions), CoreSeconds: coreSec, AvgCores: coreSec / float64(n)}
	if r.total > 0 {
		m.SLOViolationPct = 100 * float64(r.nViol) / float64(r.total)
		m.P50Ms = r.histQuantile(0.50) * 1000
		m.P99Ms = r.histQuantile(0.99) * 1000
	}
	if wn > 0 {
		m.WindowViolationPct = 100 * float64(wv) / float64(wn)
	}
	var secs, accT, effT float64
	for t := range n {
		if r.cnt[t] > 0 {
			secs++
			accT += r.accSum[t] / r.cnt[t]
			effT += r.effSum[t] / r.cnt[t]
		}
	}
	if secs > 0 {
		m.AvgAccuracy, m.EffectiveAccuracy = accT/secs, effT/secs
	}
	m.Objective = m.EffectiveAccuracy - r.cfg.Alpha*m.AvgCores/float64(r.cfg.Budget)
	res.Metrics = m
	return res
}

// addSpan adds k·overlap of [a, b) to step-wide buckets.
func addSpan(dst []float64, a, b, k float64, step int) {
	st := float64(step)
	for i := int(a / st); i < len(dst) && float64(i)*st < b; i++ {
		lo, hi := max(a, float64(i)*st), min(b, float64(i+1)*st)
		if hi > lo {
			dst[i] += k * (hi - lo)
		}
	}
}

func (r *runner) histQuantile(q float64) float64 {
	need := uint64(math.Ceil(q * float64(r.total)))
	var c uint64
	for i, h := range r.hist {
		c += uint64(h)
		if c >= need {
			return float64(i) * r.histRes
		}
	}
	return r.tout
}

// RelativeTo sets ObjectiveVsOracle of every result from the oracle's
// objective (no-op if the oracle's objective is not positive).
func RelativeTo(results []*Result, oracle *Result) {
	if oracle == nil || oracle.Metrics.Objective <= 0 {
		return
	}
	for _, r := range results {
		r.Metrics.ObjectiveVsOracle = r.Metrics.Objective / oracle.Metrics.Objective
	}
}
