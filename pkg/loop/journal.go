package loop

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
)

// Timings are the durations of a decision's phases, in milliseconds (JSON
// friendly; sub-millisecond values keep their fraction).
type Timings struct {
	ObserveMillis  float64 `json:"observeMs"`
	ForecastMillis float64 `json:"forecastMs"`
	SolveMillis    float64 `json:"solveMs"`
	// ApplyMillis is prepare + weights + retire.
	ApplyMillis   float64 `json:"applyMs"`
	PrepareMillis float64 `json:"prepareMs,omitempty"`
	WeightsMillis float64 `json:"weightsMs,omitempty"`
	RetireMillis  float64 `json:"retireMs,omitempty"`
}

// Inputs summarises what a decision looked at (the full per-second history
// is not journaled: it would dominate the file).
type Inputs struct {
	HistorySeconds int `json:"historySeconds"`
	// LastRPS is the count of the last complete second.
	LastRPS float64 `json:"lastRps"`
	// MeanRPS and MaxRPS are over the last decision interval.
	MeanRPS float64 `json:"meanRps"`
	MaxRPS  float64 `json:"maxRps"`
	// MinLoad is the floor the reactive check put under the plan's load
	// (observed rate × (1 + headroom)) because the last second's arrivals
	// outgrew what runs; 0 when it did not.
	MinLoad  float64                      `json:"minLoad,omitempty"`
	Current  []decider.VariantState       `json:"current"`
	Variants []decider.VariantObservation `json:"variants,omitempty"`
}

// Decision is one journal entry.
type Decision struct {
	Seq    int       `json:"seq"`
	Time   time.Time `json:"time"`
	Policy string    `json:"policy"`
	// Trigger is what started the decision: schedule (the interval) or
	// reactive (the load outgrew what runs between two ticks).
	Trigger string `json:"trigger"`
	Inputs  Inputs `json:"inputs"`
	// Forecast is the load (RPS) the plan was sized for.
	Forecast  float64      `json:"forecast"`
	Plan      decider.Plan `json:"plan"`
	Objective float64      `json:"objective"`
	// Result is applied | unchanged | hold | dry_run | error.
	Result  string  `json:"result"`
	DryRun  bool    `json:"dryRun,omitempty"`
	Error   string  `json:"error,omitempty"`
	Timings Timings `json:"timings"`
}

// Decision triggers.
const (
	TriggerSchedule = "schedule"
	TriggerReactive = "reactive"
)

// Decision results.
const (
	ResultApplied   = "applied"   // the backend/dispatcher state changed
	ResultUnchanged = "unchanged" // the plan equals what runs
	ResultHold      = "hold"      // the decider chose to keep the current state
	ResultDryRun    = "dry_run"   // decided and logged only
	ResultError     = "error"     // observation, decision or apply failed; state kept
)

// Journal keeps the last decisions in memory (for /api/decisions) and
// appends every decision as one JSON line to an optional writer.
type Journal struct {
	mu   sync.Mutex
	w    io.Writer
	enc  *json.Encoder
	keep int
	buf  []Decision
	err  error // first write error; later writes are skipped
}

// NewJournal returns a journal writing JSON lines to w (nil: memory only)
// and keeping the last keep decisions (keep <= 0: 1000).
func NewJournal(w io.Writer, keep int) *Journal {
	if keep <= 0 {
		keep = 1000
	}
	j := &Journal{w: w, keep: keep}
	if w != nil {
		j.enc = json.NewEncoder(w)
	}
	return j
}

// Record appends d. A write error is remembered (see Err) and does not stop
// the loop: the journal is for humans, the loop must keep adapting.
func (j *Journal) Record(d Decision) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = append(j.buf, d)
	if len(j.buf) > j.keep {
		j.buf = append(j.buf[:0:0], j.buf[len(j.buf)-j.keep:]...)
	}
	if j.enc != nil && j.err == nil {
		j.err = j.enc.Encode(d)
	}
}

// Err returns the first write error, if any.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Last returns up to n most recent decisions, oldest first (n <= 0: all kept).
func (j *Journal) Last(n int) []Decision {
	j.mu.Lock()
	defer j.mu.Unlock()
	if n <= 0 || n > len(j.buf) {
		n = len(j.buf)
	}
	return append([]Decision(nil), j.buf[len(j.buf)-n:]...)
}

// ServeHTTP serves GET /api/decisions[?limit=N]: the most recent decisions,
// oldest first, as a JSON array.
func (j *Journal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	n := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			http.Error(w, "limit: want a non-negative integer, got "+strconv.Quote(s), http.StatusBadRequest)
			return
		}
		n = v
	}
	ds := j.Last(n)
	if ds == nil {
		ds = []Decision{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(ds)
}
