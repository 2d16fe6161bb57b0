// Package loop is InfAdapter's live adaptation loop: every interval it
// observes the load of one logical model, asks a decider.Decider for the next
// plan (forecast → solve → stabilise) and applies the plan in the only order
// that keeps requests flowing:
//
//	observe ──► decide ──► prepare (start / resize instances, wait ready)
//	                          │
//	                          ▼
//	                  move dispatcher weights ──► retire old instances
//
// Weights never point at an instance that is not ready, and an old instance
// is stopped only after no weight points at it any more (create-before-delete,
// as the paper's adapter does with Kubernetes Deployments, reference §1.2).
//
// The loop is the knative UniScaler shape (a Step that takes "now" from an
// injected clock) driven by a ticker, with a small nomad-style state machine
// for status reporting:
//
//	waiting ─tick─► observing ─► deciding ─► applying ─► waiting
//	                                └─dry-run─► waiting (plan logged only)
//
// Between ticks a reactive check (Config.Reactive, decider.Reactive) looks
// at the last complete second every ReactiveCheck: when its arrivals
// outgrow the capacity of what runs, the loop decides at once and the
// decision plans for at least the observed rate plus headroom. This is the
// counterpart of Knative's panic mode; the paper decides only on its
// schedule, and its forecaster lags a burst by an interval.
//
// Everything the loop touches is behind a narrow interface declared here
// (LoadSource, Backend, Router) so tests drive it with fakes and a fake clock;
// pkg/localmode wires the real dispatcher and local backend.
//
// Each decision is written to a journal (JSON lines) and kept in memory for
// the /api/decisions endpoint, and exported as Prometheus metrics (see
// metrics.go).
package loop
