package localmode

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/infadapter/infadapter/pkg/loadgen"
)

// secStats aggregates the requests whose intended send time fell in one
// second of the replay.
type secStats struct {
	offered, ok, violations, errors int
	labelled, correct               int
	lat                             []float64 // ms, successful answers
	perVariant                      map[string]int
	// planned accuracy of the plan in force at that second (set by the
	// sampler, weights the second's offered requests).
	planned float64
}

// recorder collects replay results per second for the live dashboard and
// the final summary. It is the single source of the summary's figures:
// SLO violations (errors, timeouts and answers slower than the SLO all
// count, as in pkg/loadgen), P99 (nearest rank over successful answers),
// served accuracy (argmax vs label over successful labelled answers).
type recorder struct {
	mu    sync.Mutex
	slo   time.Duration
	start time.Time
	secs  []secStats
	errs  []error
	kinds map[string]int // error kinds (pkg/loadgen's names) over the whole replay
}

func newRecorder(slo time.Duration, seconds int) *recorder {
	return &recorder{slo: slo, secs: make([]secStats, seconds), kinds: map[string]int{}}
}

func (r *recorder) begin(t time.Time) {
	r.mu.Lock()
	r.start = t
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// add records the results of a chunk that started at second offset.
func (r *recorder) add(offset int, results []loadgen.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range results {
		sec := offset + int(res.Intended/time.Second)
		if sec < 0 || sec >= len(r.secs) {
			continue
		}
		s := &r.secs[sec]
		s.offered++
		if res.Variant != "" {
			if s.perVariant == nil {
				s.perVariant = map[string]int{}
			}
			s.perVariant[res.Variant]++
		}
		if res.Err != "" {
			r.kinds[res.Err]++
			s.errors++
			s.violations++
			continue
		}
		s.ok++
		s.lat = append(s.lat, float64(res.Latency)/float64(time.Millisecond))
		if res.Latency > r.slo {
			s.violations++
		}
		if res.Label >= 0 {
			s.labelled++
			if res.Pred == res.Label {
				s.correct++
			}
		}
	}
}

// setPlanned records the planned accuracy in force at second sec.
func (r *recorder) setPlanned(sec int, acc float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec >= 0 && sec < len(r.secs) {
		r.secs[sec].planned = acc
	}
}

// window summarises seconds [from, to).
type windowStats struct {
	Offered, OK, Violations, Errors int
	Labelled, Correct               int
	P99Millis                       float64
	ServedAccuracy                  float64 // 0 when nothing labelled
	PlannedAccuracy                 float64 // offered-weighted; 0 when unknown
	PerVariant                      map[string]int
}

func (r *recorder) window(from, to int) windowStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	from, to = max(from, 0), min(to, len(r.secs))
	var w windowStats
	w.PerVariant = map[string]int{}
	var lat []float64
	var plannedW, plannedN float64
	for i := from; i < to; i++ {
		s := &r.secs[i]
		w.Offered += s.offered
		w.OK += s.ok
		w.Violations += s.violations
		w.Errors += s.errors
		w.Labelled += s.labelled
		w.Correct += s.correct
		lat = append(lat, s.lat...)
		for v, n := range s.perVariant {
			w.PerVariant[v] += n
		}
		if s.planned > 0 && s.offered > 0 {
			plannedW += s.planned * float64(s.offered)
			plannedN += float64(s.offered)
		}
	}
	w.P99Millis = nearestRank(lat, 0.99)
	if w.Labelled > 0 {
		w.ServedAccuracy = float64(w.Correct) / float64(w.Labelled)
	}
	if plannedN > 0 {
		w.PlannedAccuracy = plannedW / plannedN
	}
	return w
}

func (r *recorder) errorKinds() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.kinds))
	for k, v := range r.kinds {
		out[k] = v
	}
	return out
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// nearestRank is the q-quantile by nearest rank (pkg/loadgen's definition).
func nearestRank(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}
