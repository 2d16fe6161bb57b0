// Package profiler measures a variant's capacity: the highest Poisson
// request rate whose P99 latency stays within the SLO, per variant and
// core count — the numbers the optimiser plans with (pkg/profile).
//
// The method is the InfAdapter paper's (reference §1.5): first the
// saturation throughput (peak) with a closed loop of concurrent clients,
// then a binary search over open-loop Poisson rates in [Lo·peak, Hi·peak]
// (0.3 and 1.2 by default). A rate passes when, in every one of Repeats
// runs, the P99 latency of every Window (2 s) of intended send times is
// within the SLO; failed and timed-out requests count as infinitely slow.
// Capacity is the highest passing rate. When even Lo·peak fails (an SLO
// near the variant's light-load latency, or a noisy shared machine), the
// search continues in [0, Lo·peak] — an extension of the paper's method —
// and the capacity is 0 only if nothing there passes.
//
// Load comes from pkg/loadgen (open loop, latency from the intended send
// time, so a stalled server is not hidden by coordinated omission).
// Targets are any OIP v2 endpoint; ProfileLocal starts local variants at
// each core count through pkg/backend/local first. Durations are
// configurable: short defaults keep a demo's first-run profiling to a few
// minutes, and longer probes give steadier numbers.
//
// On a small machine the load generator shares the CPUs with the server:
// for very cheap variants the measured capacity is bounded by the client
// and the HTTP stack rather than by the model. Profiles record what was
// measured; docs/benchmarks.md lists the figures and the machine.
package profiler
