package loop

import (
	"context"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
)

// LoadSource reports the arrivals of the logical model the loop adapts.
type LoadSource interface {
	// History returns per-second arrival counts, oldest first, of the
	// complete seconds that ended at or before now; at most max entries
	// (max <= 0: all it keeps). Seconds before the source started are
	// omitted, so the slice may be shorter than max, or empty.
	History(now time.Time, max int) []float64
}

// VariantLoadSource is optionally implemented by a LoadSource that can split
// arrivals by variant (the dispatcher can). The loop passes the figures to
// the decider as Observation.Variants.
type VariantLoadSource interface {
	// VariantRPS returns the mean arrivals per second of each variant over
	// the window that ends at now. Variants without traffic may be absent.
	VariantRPS(now time.Time, window time.Duration) map[string]float64
}

// Endpoint is one ready instance of a variant.
type Endpoint struct {
	Variant string `json:"variant"`
	// URL is the base URL the dispatcher sends the variant's requests to.
	URL string `json:"url"`
	// Cores is the core allocation of the instance (in the backend's core
	// unit, the same unit as decider.VariantState.Cores).
	Cores int `json:"cores"`
}

// Backend runs the instances of the variants. Implementations: the local
// process backend (pkg/backend/local through pkg/localmode) and fakes.
type Backend interface {
	// Prepare makes every variant of target run with its cores and returns
	// only when each is ready to serve, with one Endpoint per target variant.
	// A variant whose cores change is resized in place when the enforcement
	// allows it, otherwise a new instance is started beside the old one
	// (create-before-delete): the old instance keeps serving until Retire.
	// Prepare with an unchanged target is a cheap no-op returning the same
	// endpoints. On error nothing that served before has been stopped.
	Prepare(ctx context.Context, target []decider.VariantState) ([]Endpoint, error)
	// Retire stops every instance that is not in keep. The loop calls it
	// only after the dispatcher no longer routes to those instances.
	Retire(ctx context.Context, keep []Endpoint) error
}

// Route is one weighted destination of the dispatcher.
type Route struct {
	Variant string  `json:"variant"`
	URL     string  `json:"url"`
	Weight  float64 `json:"weight"` // share of the traffic in [0,1]; routes sum to 1
}

// Router moves the dispatcher's traffic split.
type Router interface {
	// SetRoutes replaces the dispatcher's destinations atomically: requests
	// that arrive after it returns go only to routes.
	SetRoutes(ctx context.Context, routes []Route) error
}

// PhaseTimer is implemented by TimedForecaster: it reports how long the
// forecasts made since the last call took, so the loop can split a Decide
// call into its forecast and solve phases.
type PhaseTimer interface {
	TakeDuration() time.Duration
}
