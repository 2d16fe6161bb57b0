// Package sim is a deterministic, request-level discrete-event simulator of
// an InfAdapter-style service: a dispatcher splitting requests across model
// variants by a plan's shares, each variant running one or more instances
// with some CPU cores, and a policy (any decider.Decider) re-planning every
// interval. It replays a per-second trace with seeded Poisson arrivals and
// reports SLO violations, latency, accuracy and cost.
//
// # Queueing model
//
// One instance with c cores is an FCFS G/G/c queue (M/G/c under Poisson
// arrivals): c servers, one request per core at a time. That is how the
// paper's TF Serving pods run (intra-op parallelism 1, inter-op and batch
// threads = c, batch size 1). Service times are lognormal with a fixed
// coefficient of variation (Config.ServiceCV, default 0.3) and a mean
// calibrated per (variant, cores) point: the mean for which the P99
// sojourn time of a long M/G/c run at the point's profiled capacity equals
// the SLO. Because sojourn times under FCFS are monotone in the service
// times (Lindley's recursion), P99 is monotone in the mean, so a bracketing
// root-finder with common random numbers finds it (to 0.5%); results are
// cached per point and computed with a seed derived from the point only,
// so they do not depend on which policy asks first.
//
// The capacity table handed to the simulator is the *measured* one (the
// truth); policies plan with their own, possibly more conservative, model
// (the paper's linear fit × 0.8). Planning at a capacity below the true
// capacity therefore leaves real headroom, as on the testbed.
//
// Each instance has a queue limit (QueueFactor × its capacity requests
// waiting, like TF Serving's max_enqueued_batches = 1.25 × capacity) and
// requests that would wait longer than Timeout are abandoned without using
// a server (the dispatcher's 30 s client timeout). Both count as SLO
// violations with latency = Timeout in the percentiles.
//
// # Reconfiguration
//
// TransitionRestart (default, as the paper's adapter): a variant whose
// cores change gets new instances that serve only after PodStart + the
// variant's load time + WarmupRequests × mean service time, rounded up to
// the readiness probe period. The old plan (old shares, old instances)
// keeps serving until every new instance is ready; then the dispatcher
// switches to the new shares at once and old instances drain their queues
// and stop. Both old and new count as cost during the overlap.
// TransitionInPlace resizes running instances after InPlaceDelay (new
// variants or replicas still start as above). TransitionInstant applies
// everything at the decision time (the oracle's zero transition).
//
// A decision that falls due while a transition is in flight waits for it
// (the paper's adapter handles /decide synchronously).
//
// Pure and deterministic: same inputs and seed → byte-identical results.
package sim
