package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"
)

//go:embed assets
var assets embed.FS

// Sample is one point of the live time series (normally one per second).
type Sample struct {
	// T is seconds since the run started.
	T float64 `json:"t"`
	// RPS is the arrivals of that second; Forecast the load the plan in force
	// was sized for.
	RPS      float64 `json:"rps"`
	Forecast float64 `json:"forecast"`
	// P99Millis is the P99 latency of the requests that completed in the
	// sample's window (0: none).
	P99Millis float64 `json:"p99Ms"`
	// Cores is the total core allocation in force (cores, may be fractional).
	Cores float64 `json:"cores"`
	// CoresBy and ShareBy split the allocation and the traffic per variant.
	CoresBy map[string]float64 `json:"coresBy,omitempty"`
	ShareBy map[string]float64 `json:"shareBy,omitempty"`
	// ServedAccuracy is the accuracy of the answers completed in the window,
	// measured against the labels (0..1; 0 with no answers); PlannedAccuracy
	// the plan's expected load-weighted accuracy.
	ServedAccuracy  float64 `json:"servedAccuracy"`
	PlannedAccuracy float64 `json:"plannedAccuracy"`
}

// Variant is the current state of one variant.
type Variant struct {
	Name     string  `json:"name"`
	Accuracy float64 `json:"accuracy"` // profiled accuracy, 0..1
	Cores    float64 `json:"cores"`    // 0: not running
	Share    float64 `json:"share"`    // 0..1
	URL      string  `json:"url,omitempty"`
}

// Totals summarise a run so far (or a finished run).
type Totals struct {
	Policy          string  `json:"policy"`
	Requests        int64   `json:"requests"`
	Violations      int64   `json:"violations"`
	ViolationPct    float64 `json:"violationPct"`
	P99Millis       float64 `json:"p99Ms"`
	ServedAccuracy  float64 `json:"servedAccuracy"`
	PlannedAccuracy float64 `json:"plannedAccuracy"`
	AvgCores        float64 `json:"avgCores"`
	Errors          int64   `json:"errors"`
}

// State is what /api/state returns.
type State struct {
	Time time.Time `json:"time"`
	// Stage names what runs: e.g. "profiling", "infadapter", "baseline",
	// "done".
	Stage       string  `json:"stage"`
	Policy      string  `json:"policy"`
	DryRun      bool    `json:"dryRun,omitempty"`
	SLOMillis   float64 `json:"sloMs"`
	BudgetCores float64 `json:"budgetCores"`
	// Elapsed and Duration of the current replay, seconds.
	Elapsed  float64   `json:"elapsed"`
	Duration float64   `json:"duration"`
	Variants []Variant `json:"variants"`
	Series   []Sample  `json:"series"`
	Totals   Totals    `json:"totals"`
	// Finished holds the totals of completed runs (for the comparison table).
	Finished []Totals `json:"finished,omitempty"`
	Message  string   `json:"message,omitempty"`
	// AccuracyNote, when set, says the accuracies shown are published, not
	// measured, and served accuracy is not measured (a family without
	// labels, e.g. the random-weight ResNets); the page shows it instead
	// of a served figure.
	AccuracyNote string `json:"accuracyNote,omitempty"`
}

// Source provides the live state. It is called once per poll of every open
// page, so it must be cheap and safe for concurrent use.
type Source interface {
	State() State
}

// SourceFunc adapts a function to Source.
type SourceFunc func() State

// State calls f.
func (f SourceFunc) State() State { return f() }

// Handler serves the dashboard: the page and its assets at /, the state at
// /api/state and, when decisions is not nil, the decision journal at
// /api/decisions. Extra handlers (e.g. /metrics) can be added by the caller
// on its own mux.
func Handler(src Source, decisions http.Handler) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, _ *http.Request) {
		st := src.State()
		if st.Series == nil {
			st.Series = []Sample{}
		}
		if st.Variants == nil {
			st.Variants = []Variant{}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(st)
	})
	if decisions != nil {
		mux.Handle("GET /api/decisions", decisions)
	} else {
		mux.HandleFunc("GET /api/decisions", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("[]\n"))
		})
	}
	return mux
}
