package localmode

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/infadapter/infadapter/pkg/dashboard"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/dispatcher"
	"github.com/infadapter/infadapter/pkg/loop"
	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
)

// dashState is the dashboard's Source: the live series of the run in
// progress and the totals of finished runs.
type dashState struct {
	mu       sync.Mutex
	st       dashboard.State
	accuracy map[string]float64
	names    []string
}

var _ dashboard.Source = (*dashState)(nil)

func newDashState(cfg Config) *dashState {
	d := &dashState{accuracy: map[string]float64{}}
	d.st.Stage = "starting"
	d.st.SLOMillis = float64(cfg.SLO) / float64(time.Millisecond)
	d.st.BudgetCores = float64(cfg.Units()*cfg.CoreUnitMilli) / 1000
	return d
}

// setPlan sets the variants (most accurate first) once the profile is known.
func (d *dashState) setPlan(plan []optimizer.Variant) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names = nil
	for _, v := range plan {
		d.accuracy[v.Name] = v.Accuracy
		d.names = append(d.names, v.Name)
	}
	sort.Slice(d.names, func(i, j int) bool { return d.accuracy[d.names[i]] > d.accuracy[d.names[j]] })
	d.st.Variants = nil
	for _, n := range d.names {
		d.st.Variants = append(d.st.Variants, dashboard.Variant{Name: n, Accuracy: d.accuracy[n]})
	}
}

func (d *dashState) setAccuracyNote(m string) {
	d.mu.Lock()
	d.st.AccuracyNote = m
	d.mu.Unlock()
}

func (d *dashState) setMessage(m string) {
	d.mu.Lock()
	d.st.Message = m
	d.mu.Unlock()
}

func (d *dashState) State() dashboard.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.Time = time.Now()
	st.Series = append([]dashboard.Sample(nil), d.st.Series...)
	st.Variants = append([]dashboard.Variant(nil), d.st.Variants...)
	st.Finished = append([]dashboard.Totals(nil), d.st.Finished...)
	return st
}

func (d *dashState) setStage(s string) {
	d.mu.Lock()
	d.st.Stage = s
	d.mu.Unlock()
}

func (d *dashState) start(policy string, dry bool, seconds float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.Stage, d.st.Policy, d.st.DryRun = "replay", policy, dry
	d.st.Series, d.st.Elapsed, d.st.Duration = nil, 0, seconds
	d.st.Totals = dashboard.Totals{Policy: policy}
}

func (d *dashState) finish(rs RunSummary) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.Finished = append(d.st.Finished, totalsOf(rs))
	d.st.Totals = dashboard.Totals{}
}

func totalsOf(rs RunSummary) dashboard.Totals {
	return dashboard.Totals{Policy: rs.Policy, Requests: int64(rs.Requests), Violations: int64(rs.Violations),
		ViolationPct: rs.ViolationPct, P99Millis: rs.P99Millis, ServedAccuracy: rs.ServedAccuracy,
		PlannedAccuracy: rs.PlannedAccuracy, AvgCores: rs.AvgCores, Errors: int64(rs.Errors)}
}

// sampler runs once a second during a replay: it records the planned
// accuracy in force, appends a dashboard sample and refreshes the status
// line.
type sampler struct {
	r        *runner
	lp       *loop.Loop
	rec      *recorder
	model    *dispatcher.Model
	start    time.Time
	schedule []float64
	policy   string

	coreSeconds float64
	seconds     int
	lastLine    time.Time
	printed     bool
}

func (s *sampler) run(ctx context.Context) {
	t := s.r.clk.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			s.tick()
		}
	}
}

func (s *sampler) avgCores() float64 {
	if s.seconds == 0 {
		return 0
	}
	return s.coreSeconds / float64(s.seconds)
}

func (s *sampler) tick() {
	now := s.r.clk.Now()
	sec := int(now.Sub(s.start) / time.Second)
	if sec < 1 || sec > len(s.schedule) {
		return
	}
	cfg := s.r.cfg
	st := s.lp.Status()
	unit := float64(cfg.CoreUnitMilli) / 1000
	coresBy, shareBy := map[string]float64{}, map[string]float64{}
	cores := 0.0
	for _, v := range st.Current {
		c := float64(v.Cores*max(v.Replicas, 1)) * unit
		coresBy[v.Name] = c
		shareBy[v.Name] = v.Share
		cores += c
	}
	planned := plannedAccuracy(st.Current, s.r.accuracy)
	s.rec.setPlanned(sec-1, planned)
	s.coreSeconds += cores
	s.seconds++
	fc := 0.0
	if st.Last != nil {
		fc = st.Last.Forecast
	}
	rps := 0.0
	if h := s.model.History(now, 1); len(h) > 0 {
		rps = h[len(h)-1]
	}
	// Results arrive per 3 s load-generator chunk: look back far enough.
	recent := s.rec.window(sec-8, sec)
	total := s.rec.window(0, sec)
	sample := dashboard.Sample{T: float64(sec), RPS: rps, Forecast: fc, P99Millis: recent.P99Millis, Cores: cores,
		CoresBy: coresBy, ShareBy: shareBy, ServedAccuracy: recent.ServedAccuracy, PlannedAccuracy: planned}

	d := s.r.dash
	d.mu.Lock()
	d.st.Series = append(d.st.Series, sample)
	d.st.Elapsed = float64(sec)
	d.st.Variants = d.st.Variants[:0]
	for _, n := range d.names {
		d.st.Variants = append(d.st.Variants, dashboard.Variant{Name: n, Accuracy: d.accuracy[n], Cores: coresBy[n], Share: shareBy[n]})
	}
	tot := dashboard.Totals{Policy: s.policy, Requests: int64(total.Offered), Violations: int64(total.Violations),
		P99Millis: total.P99Millis, ServedAccuracy: total.ServedAccuracy, PlannedAccuracy: total.PlannedAccuracy,
		AvgCores: s.avgCores(), Errors: int64(total.Errors)}
	if total.Offered > 0 {
		tot.ViolationPct = 100 * float64(total.Violations) / float64(total.Offered)
	}
	d.st.Totals = tot
	d.mu.Unlock()

	s.status(sec, rps, fc, st.Current, cores, recent.P99Millis, tot.ViolationPct)
}

func (s *sampler) status(sec int, rps, fc float64, cur []decider.VariantState, cores, p99, viol float64) {
	w := s.r.opts.Status
	if w == nil {
		return
	}
	var parts []string
	unit := float64(s.r.cfg.CoreUnitMilli) / 1000
	for _, v := range cur {
		parts = append(parts, fmt.Sprintf("%s:%.2gc/%.0f%%", v.Name, float64(v.Cores)*unit, 100*v.Share))
	}
	sort.Strings(parts)
	line := fmt.Sprintf("[%s] %3d/%ds  load %4.0f rps  forecast %4.0f  %s (%.2g cores)  p99 %5.1f ms  SLO viol %5.2f%%",
		s.policy, sec, len(s.schedule), rps, fc, strings.Join(parts, " "), cores, p99, viol)
	if s.r.opts.TTY {
		fmt.Fprintf(w, "\r\033[K%s", line)
		s.printed = true
		return
	}
	if now := s.r.clk.Now(); now.Sub(s.lastLine) >= 10*time.Second || sec == len(s.schedule) {
		s.lastLine = now
		fmt.Fprintln(w, line)
	}
}

func (s *sampler) finishLine() {
	if s.printed && s.r.opts.Status != nil {
		fmt.Fprintln(s.r.opts.Status)
	}
}

// WriteSummary prints the human summary table.
func WriteSummary(w io.Writer, sum *Summary) {
	fmt.Fprintf(w, "\nInfAdapter local run: %s (%d s, base %.0f → peak %.0f RPS), SLO P99 %v, budget %.2f cores, %s\n",
		sum.Trace.Name, sum.Trace.Seconds, sum.Trace.Base, sum.Trace.Peak, sum.Config.SLO,
		float64(sum.Config.Units()*sum.Config.CoreUnitMilli)/1000, sum.Enforcement)
	fmt.Fprintf(w, "%-22s %9s %11s %9s %10s %10s %10s %9s %7s\n", "policy", "requests", "SLO viol.", "P99 ms", "served", "planned", "routed", "avg cores", "errors")
	for _, r := range sum.Runs {
		if r.DryRun {
			r.Policy += " (dry-run)"
		}
		served := fmt.Sprintf("%9.2f%%", 100*r.ServedAccuracy)
		if r.AccuracyNote != "" {
			served = fmt.Sprintf("%10s", "n/a")
		}
		fmt.Fprintf(w, "%-22s %9d %10.2f%% %9.1f %s %9.2f%% %9.2f%% %9.2f %7d\n", r.Policy, r.Requests, r.ViolationPct,
			r.P99Millis, served, 100*r.PlannedAccuracy, 100*r.RoutedAccuracy, r.AvgCores, r.Errors)
	}
	for _, r := range sum.Runs {
		if len(r.ErrorKinds) > 0 {
			fmt.Fprintf(w, "%s errors by kind: %v\n", r.Policy, r.ErrorKinds)
		}
	}
	if sum.AccuracyNote != "" {
		fmt.Fprintln(w, "served = n/a: not measured (random inputs, no labels); planned = Σ share × published accuracy of the plan in force;")
		fmt.Fprintln(w, "routed = Σ requests answered per variant × published accuracy. Accuracy: "+profile.PublishedLabel+
			" (the model authors' figures; these models have random weights).")
	} else {
		fmt.Fprintln(w, "served = accuracy measured from the labels; planned = Σ share × profiled accuracy of the plan in force;")
		fmt.Fprintln(w, "routed = Σ requests answered per variant × profiled accuracy.")
	}
	if sum.Dashboard != "" {
		fmt.Fprintf(w, "journal and server logs: %s\n", sum.RunDir)
	}
}
