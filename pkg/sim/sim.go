package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/trace"
)

// member is one variant of the serving set: its share and instances.
type member struct {
	v        int
	cores    int
	share    float64
	inst     []*instance
	rr       int
	swrrCurr float64
}

// pending is a transition in flight: at time `at` the serving set becomes
// members, resizes are applied and stop instances start draining.
type pending struct {
	at      float64
	members []member
	resizes []resizeOp
	stop    []*instance
	state   []decider.VariantState
}

type resizeOp struct {
	in    *instance
	cores int
}

type runner struct {
	cfg   Config
	pol   Policy
	tr    Transition
	cal   *Calibrator
	slo   float64
	tout  float64
	mu    float64
	sigma float64
	rng   *rand.Rand
	n     int // trace seconds

	active  []member
	current []decider.VariantState
	pend    *pending
	all     []*instance
	now     float64
	nextDec float64
	lastDec float64
	// reactive trigger: the next whole second to check (+Inf when off),
	// and the load what runs was last sized for.
	nextCheck float64
	sizedFor  float64

	// per-interval observations for deciders
	vCount []int
	vBusy  []float64
	vLat   [][]float64

	// per-second and overall accounting
	cnt     []float64
	accSum  []float64
	effSum  []float64
	viol    []float64
	hist    []uint32
	histRes float64
	winBuf  []float64
	winIdx  int
	winP99  []float64
	total   int
	drops   int
	nViol   int

	decisions []Decision
	reconfigs int
}

// Run simulates one policy over rps (requests per second, one entry per
// second). cal may be shared between concurrent runs with the same SLO and
// CV; nil makes a private one.
func Run(cfg Config, rps []float64, pol Policy, cal *Calibrator) (*Result, error) {
	return RunWithProgress(cfg, rps, pol, cal, nil)
}

// RunWithProgress is Run calling progress(n) after every n simulated
// seconds (in steps of about a minute), for progress bars.
func RunWithProgress(cfg Config, rps []float64, pol Policy, cal *Calibrator, progress func(seconds int)) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pol.Decider == nil {
		return nil, fmt.Errorf("sim: policy has no decider")
	}
	if pol.Interval <= 0 {
		return nil, fmt.Errorf("sim: policy %s: interval must be > 0", pol.Decider.Name())
	}
	if len(rps) == 0 {
		return nil, fmt.Errorf("sim: empty trace")
	}
	slo := cfg.SLO.Seconds()
	if cal == nil {
		cal = NewCalibrator(slo, cfg.ServiceCV)
	} else if cal.SLO != slo || cal.CV != cfg.ServiceCV {
		return nil, fmt.Errorf("sim: calibrator is for SLO %v s CV %v, config has %v s CV %v", cal.SLO, cal.CV, slo, cfg.ServiceCV)
	}
	r := &runner{cfg: cfg, pol: pol, tr: cfg.Transition, cal: cal, slo: slo, tout: cfg.Timeout.Seconds(), n: len(rps)}
	if pol.Transition != nil {
		r.tr = *pol.Transition
	}
	r.mu, r.sigma = lognormal(cfg.ServiceCV)
	r.rng = rand.New(rand.NewPCG(cfg.Seed, 0x73657276)) // "serv"
	V := len(cfg.Variants)
	r.vCount, r.vBusy, r.vLat = make([]int, V), make([]float64, V), make([][]float64, V)
	r.cnt, r.accSum, r.effSum, r.viol = make([]float64, r.n), make([]float64, r.n), make([]float64, r.n), make([]float64, r.n)
	r.histRes = 1e-4 // 0.1 ms bins
	r.hist = make([]uint32, int(r.tout/r.histRes)+2)
	r.winP99 = make([]float64, (r.n+r.winLen()-1)/r.winLen())

	// Initial state: ready at 0.
	init, err := r.targets(decider.Plan{Variants: pol.Initial})
	if err != nil {
		return nil, fmt.Errorf("sim: policy %s initial state: %w", pol.Decider.Name(), err)
	}
	for _, tg := range init {
		m := member{v: tg.v, cores: tg.cores, share: tg.share}
		for range tg.replicas {
			in, err := r.newInstance(tg.v, tg.cores, 0, 0)
			if err != nil {
				return nil, err
			}
			m.inst = append(m.inst, in)
		}
		r.active = append(r.active, m)
	}
	r.current = stateOf(r.active, cfg.Variants)
	r.nextDec = pol.FirstDecision.Seconds()
	r.lastDec = 0
	r.nextCheck = math.Inf(1)
	if pol.Reactive.Enabled() {
		// From the first complete second, as the live loop: the trigger
		// needs no forecast history.
		r.nextCheck = 1
	}

	arr := trace.NewArrivals(rps, cfg.Arrivals, cfg.Seed)
	reported := 0
	for {
		ta, ok := arr.Next()
		if !ok {
			break
		}
		for r.nextEvent() <= ta {
			if err := r.event(); err != nil {
				return nil, err
			}
		}
		if progress != nil {
			if sec := int(ta); sec-reported >= 60 {
				progress(sec - reported)
				reported = sec
			}
		}
		r.serve(ta)
	}
	if progress != nil {
		progress(r.n - reported)
	}
	for r.nextEvent() < float64(r.n) {
		if err := r.event(); err != nil {
			return nil, err
		}
	}
	r.flushWindow()
	return r.result(rps), nil
}

func (r *runner) winLen() int { return int(r.cfg.Window / time.Second) }

func (r *runner) nextEvent() float64 {
	if r.pend != nil {
		return r.pend.at
	}
	return max(min(r.nextDec, r.nextCheck), r.now)
}

func (r *runner) event() error {
	if r.pend != nil {
		r.now = max(r.now, r.pend.at)
		r.swap()
		return nil
	}
	if r.nextCheck < r.nextDec {
		// A reactive check (no transition is in flight: a decision
		// taken now would wait for it, and its plan already answers
		// the load seen when it was decided).
		t := max(r.nextCheck, r.now)
		r.now = t
		r.nextCheck = math.Floor(t) + 1
		if f, ok := r.floor(t); ok && f > r.sizedFor && t-r.lastDec >= 1 {
			return r.decide(t)
		}
		return nil
	}
	t := max(r.nextDec, r.now)
	r.now = t
	for r.nextDec <= t {
		r.nextDec += r.pol.Interval.Seconds()
	}
	return r.decide(t)
}

// floor is the reactive floor at time t: the last complete second's
// arrivals against the capacity of what runs.
func (r *runner) floor(t float64) (float64, bool) {
	s := min(int(t), r.n) - 1
	if s < 0 {
		return 0, false
	}
	return r.pol.Reactive.Floor(r.pol.Decider, r.current, r.cnt[s])
}

type tgt struct {
	v, cores, replicas int
	share              float64
}

// targets converts a plan into per-variant targets, variant order.
func (r *runner) targets(p decider.Plan) ([]tgt, error) {
	var out []tgt
	sum := 0.0
	for _, vs := range p.Variants {
		if vs.Cores <= 0 {
			continue
		}
		v := slices.IndexFunc(r.cfg.Variants, func(x Variant) bool { return x.Name == vs.Name })
		if v < 0 {
			return nil, fmt.Errorf("plan names unknown variant %q", vs.Name)
		}
		if slices.ContainsFunc(out, func(t tgt) bool { return t.v == v }) {
			return nil, fmt.Errorf("plan names variant %q twice", vs.Name)
		}
		if !(vs.Share >= 0) || math.IsInf(vs.Share, 0) {
			return nil, fmt.Errorf("plan gives variant %q share %v", vs.Name, vs.Share)
		}
		out = append(out, tgt{v: v, cores: vs.Cores, replicas: max(vs.Replicas, 1), share: vs.Share})
		sum += vs.Share
	}
	slices.SortFunc(out, func(a, b tgt) int { return a.v - b.v })
	for i := range out {
		if sum > 0 {
			out[i].share /= sum
		} else {
			out[i].share = 1 / float64(len(out))
		}
	}
	return out, nil
}

func (r *runner) serviceMean(v, cores int) (mean float64, qlimit int, err error) {
	c := r.cfg.Variants[v].capacity(cores)
	if c <= 0 {
		// The profile says this size cannot meet the SLO at any load:
		// model it as serving each request in 2× the SLO.
		return 2 * r.slo, 1, nil
	}
	mean, err = r.cal.MeanService(c, cores)
	if r.cfg.QueueFactor > 0 {
		qlimit = max(1, int(r.cfg.QueueFactor*c))
	}
	return mean, qlimit, err
}

func (r *runner) newInstance(v, cores int, born, ready float64) (*instance, error) {
	mean, ql, err := r.serviceMean(v, cores)
	if err != nil {
		return nil, err
	}
	in := &instance{v: v, cores: cores, free: make([]float64, cores), mean: mean, qlimit: ql,
		ready: ready, end: math.Inf(1), segs: []seg{{born, cores}}}
	for i := range in.free {
		in.free[i] = ready
	}
	r.all = append(r.all, in)
	return in, nil
}

// readyDelay is how long a new instance takes before it serves.
func (r *runner) readyDelay(v int, mean float64) float64 {
	if r.tr.Mode == TransitionInstant {
		return 0
	}
	d := r.tr.PodStart + r.cfg.Variants[v].LoadTime + float64(r.tr.WarmupRequests)*mean
	if p := r.tr.ProbePeriod; p > 0 {
		d = math.Ceil(d/p-1e-9) * p
	}
	return d
}

func (r *runner) observation(t float64) decider.Observation {
	obs := decider.Observation{History: r.cnt[:min(int(t), r.n)], Current: slices.Clone(r.current)}
	dt := t - r.lastDec
	if dt <= 0 {
		dt = 1
	}
	for _, m := range r.active {
		o := decider.VariantObservation{Name: r.cfg.Variants[m.v].Name, RPS: float64(r.vCount[m.v]) / dt}
		alloc := float64(m.cores * len(m.inst))
		o.CPUUsageCores = min(r.vBusy[m.v]/dt, alloc)
		if l := r.vLat[m.v]; len(l) > 0 {
			o.P99Millis = selectQuantile(l, 0.99) * 1000
		}
		obs.Variants = append(obs.Variants, o)
	}
	for v := range r.vCount {
		r.vCount[v], r.vBusy[v], r.vLat[v] = 0, 0, r.vLat[v][:0]
	}
	r.lastDec = t
	return obs
}

func (r *runner) decide(t float64) error {
	floor, _ := r.floor(t)
	obs := r.observation(t)
	obs.MinLoad = floor
	now := r.cfg.Start.Add(time.Duration(t * float64(time.Second)))
	plan, err := r.pol.Decider.Decide(now, obs)
	rec := Decision{At: t, Forecast: plan.Forecast, Hold: plan.Hold, Reason: plan.Reason, MinLoad: floor}
	if err != nil {
		rec.Reason = "error: " + err.Error()
		rec.Hold = true
		r.decisions = append(r.decisions, rec)
		return nil
	}
	tg, err := r.targets(plan)
	if err != nil {
		rec.Reason = "bad plan: " + err.Error()
		rec.Hold = true
		r.decisions = append(r.decisions, rec)
		return nil
	}
	p, changed, err := r.transition(t, tg)
	if err != nil {
		return err
	}
	rec.Variants = p.state
	rec.Changed = changed
	if !plan.Hold {
		r.sizedFor = plan.Forecast
	}
	if changed {
		r.reconfigs++
	}
	r.decisions = append(r.decisions, rec)
	r.pend = p
	return nil
}

// transition builds the change from the serving set to tg at time t.
func (r *runner) transition(t float64, tg []tgt) (*pending, bool, error) {
	p := &pending{at: t}
	changed := false
	used := map[*instance]bool{}
	for _, g := range tg {
		m := member{v: g.v, cores: g.cores, share: g.share}
		var old *member
		for i := range r.active {
			if r.active[i].v == g.v {
				old = &r.active[i]
			}
		}
		if old != nil && old.cores == g.cores {
			m.inst = slices.Clone(old.inst[:min(len(old.inst), g.replicas)])
		} else if old != nil && r.tr.Mode != TransitionRestart {
			m.inst = slices.Clone(old.inst[:min(len(old.inst), g.replicas)])
			for _, in := range m.inst {
				p.resizes = append(p.resizes, resizeOp{in, g.cores})
			}
			delay := 0.0
			if r.tr.Mode == TransitionInPlace {
				delay = r.tr.InPlaceDelay
			}
			p.at = max(p.at, t+delay)
		}
		if old == nil || old.cores != g.cores || len(old.inst) != g.replicas {
			changed = true
		}
		for len(m.inst) < g.replicas {
			mean, _, err := r.serviceMean(g.v, g.cores)
			if err != nil {
				return nil, false, err
			}
			ready := t + r.readyDelay(g.v, mean)
			in, err := r.newInstance(g.v, g.cores, t, ready)
			if err != nil {
				return nil, false, err
			}
			m.inst = append(m.inst, in)
			p.at = max(p.at, ready)
		}
		for _, in := range m.inst {
			used[in] = true
		}
		p.members = append(p.members, m)
	}
	for _, m := range r.active {
		if !slices.ContainsFunc(tg, func(g tgt) bool { return g.v == m.v }) {
			changed = true
		}
		for _, in := range m.inst {
			if !used[in] {
				p.stop = append(p.stop, in)
			}
		}
	}
	p.state = stateOf(p.members, r.cfg.Variants)
	return p, changed, nil
}

func (r *runner) swap() {
	p := r.pend
	r.pend = nil
	for _, op := range p.resizes {
		mean, ql, _ := r.serviceMean(op.in.v, op.cores)
		op.in.resize(p.at, op.cores, mean, ql)
	}
	for _, in := range p.stop {
		in.stop(p.at)
	}
	r.active = p.members
	r.current = p.state
}

func stateOf(ms []member, vs []Variant) []decider.VariantState {
	out := make([]decider.VariantState, 0, len(ms))
	for _, m := range ms {
		out = append(out, decider.VariantState{Name: vs[m.v].Name, Cores: m.cores, Replicas: len(m.inst), Share: m.share})
	}
	return out
}

// pick chooses a variant by smooth weighted round robin (nginx): every
// member gains its share, the largest wins and pays back the total.
func (r *runner) pick() *member {
	best := -1
	for i := range r.active {
		m := &r.active[i]
		m.swrrCurr += m.share
		if best < 0 || m.swrrCurr > r.active[best].swrrCurr {
			best = i
		}
	}
	r.active[best].swrrCurr -= 1
	return &r.active[best]
}

func (r *runner) serve(ta float64) {
	s := min(int(ta), r.n-1)
	if w := s / r.winLen(); w != r.winIdx {
		r.flushWindow()
		r.winIdx = w
	}
	r.cnt[s]++
	r.total++
	lat := r.tout
	ok := false
	if len(r.active) > 0 {
		m := r.pick()
		in := m.inst[m.rr%len(m.inst)]
		m.rr++
		acc := r.cfg.Variants[m.v].Accuracy
		r.accSum[s] += acc
		var svc float64
		lat, svc, ok = in.offer(ta, r.tout, r.mu, r.sigma, r.rng)
		r.vCount[m.v]++
		if ok {
			r.vBusy[m.v] += svc
			r.vLat[m.v] = append(r.vLat[m.v], lat)
			if lat <= r.slo {
				r.effSum[s] += acc
			}
		} else {
			lat = r.tout
			r.vLat[m.v] = append(r.vLat[m.v], lat)
		}
	}
	if !ok {
		r.drops++
	}
	if !ok || lat > r.slo {
		r.viol[s]++
		r.nViol++
	}
	r.hist[min(int(math.Ceil(lat/r.histRes)), len(r.hist)-1)]++
	r.winBuf = append(r.winBuf, lat)
}

func (r *runner) flushWindow() {
	if len(r.winBuf) > 0 && r.winIdx < len(r.winP99) {
		r.winP99[r.winIdx] = selectQuantile(r.winBuf, 0.99)
	}
	r.winBuf = r.winBuf[:0]
}
