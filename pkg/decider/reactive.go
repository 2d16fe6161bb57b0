package decider

import (
	"errors"
	"fmt"
	"math"
)

// CapacityReporter is implemented by deciders that know their planning
// model well enough to say how much load a running state can take. The
// reactive trigger (Reactive) needs it; deciders without it (VPA, HPA,
// static deployments) are never triggered between their scheduled
// decisions.
type CapacityReporter interface {
	// Capacity returns the highest load (RPS) of the whole service that
	// state serves within the SLO under its traffic split, by the
	// decider's planning model. ok is false when the model cannot tell
	// (nothing runs, or a variant it does not know).
	Capacity(state []VariantState) (rps float64, ok bool)
}

// Reactive is the trigger for decisions between the scheduled ones, the
// counterpart of Knative's panic mode. A forecaster trained on minutes of
// history lags a burst by an interval or more (in the local demo the
// forecast stayed at 147 RPS for a decision whose last second had 263
// arrivals). So after every complete second the caller compares that
// second's arrivals with the capacity of what runs; when they exceed
// Threshold × the capacity by more than Sigmas Poisson standard
// deviations it decides at once, and that decision (and any scheduled one
// that finds the same) plans for at least the observed rate ×
// (1 + Headroom), whatever the forecast says.
//
// The allowance is there because a profile's capacity is the highest
// *mean* Poisson rate that meets the SLO: at a mean just below it, single
// seconds above it are common (at 20 RPS one second in six has more than
// 24 arrivals), and reacting to them would only buy cores. A count more
// than two standard deviations above it is unlikely (about 2 %) while the
// mean is still within capacity.
//
// The check is pure; the loop (pkg/loop) and the simulator (pkg/sim) call
// it with their own clocks and counts.
type Reactive struct {
	// Threshold is the overload ratio observed/capacity that triggers a
	// decision; 0 disables the trigger. 1 reacts as soon as the load
	// passes the planning capacity (which already keeps the profile's
	// safety coefficient below the measured capacity).
	Threshold float64 `json:"threshold"`
	// Sigmas is the allowance for Poisson noise, in standard deviations
	// (√load) of one second's count at Threshold × capacity.
	Sigmas float64 `json:"sigmas"`
	// Headroom is added to the observed rate for the load the reactive
	// decision plans for (the paper's forecast headroom is 0.10).
	Headroom float64 `json:"headroom"`
}

// DefaultReactive is the trigger local mode and the simulator use unless
// told otherwise.
func DefaultReactive() Reactive { return Reactive{Threshold: 1, Sigmas: 2, Headroom: 0.1} }

// ReactiveAt is DefaultReactive with its threshold set (0: off), for the
// configurations that expose only the threshold.
func ReactiveAt(threshold float64) Reactive {
	r := DefaultReactive()
	r.Threshold = threshold
	return r
}

// Enabled reports whether the trigger is on.
func (r Reactive) Enabled() bool { return r.Threshold > 0 }

// Validate reports every problem of r.
func (r Reactive) Validate() error {
	var errs []error
	if !(r.Threshold >= 0) || math.IsInf(r.Threshold, 0) {
		errs = append(errs, fmt.Errorf("reactive threshold: must be a number >= 0 (0 disables), got %v", r.Threshold))
	} else if r.Threshold > 0 && r.Threshold < 0.5 {
		errs = append(errs, fmt.Errorf("reactive threshold: %v would trigger well below the capacity of what runs; want 0 (off) or >= 0.5", r.Threshold))
	}
	if !(r.Sigmas >= 0) || r.Sigmas > 10 {
		errs = append(errs, fmt.Errorf("reactive sigmas: must be in [0,10], got %v", r.Sigmas))
	}
	if !(r.Headroom >= 0) || r.Headroom > 10 {
		errs = append(errs, fmt.Errorf("reactive headroom: must be in [0,10], got %v", r.Headroom))
	}
	return errors.Join(errs...)
}

// Floor returns the load (RPS) a decision must plan for when rate (the
// arrivals of the last complete second) outgrows current, and whether it
// does. It is false when the trigger is off, d cannot report capacity, or
// rate is within Threshold × capacity plus the Poisson allowance.
func (r Reactive) Floor(d Decider, current []VariantState, rate float64) (float64, bool) {
	if !r.Enabled() || !(rate > 0) {
		return 0, false
	}
	cr, ok := d.(CapacityReporter)
	if !ok {
		return 0, false
	}
	c, ok := cr.Capacity(current)
	if !ok {
		return 0, false
	}
	if lim := r.Threshold * c; rate <= lim+r.Sigmas*math.Sqrt(lim) {
		return 0, false
	}
	return rate * (1 + r.Headroom), true
}
