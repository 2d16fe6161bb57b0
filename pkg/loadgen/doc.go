// Package loadgen is an open-loop load generator for OIP v2 and TF Serving
// REST endpoints.
//
// Open loop: arrival times come from a schedule (a per-second rate series:
// a trace, a constant rate or steps) turned into Poisson arrivals within
// each second by a seeded generator (pkg/trace), and a request is sent at
// its arrival time whether or not earlier ones have been answered. Latency
// is measured from the INTENDED send time, not from when the request was
// actually written, so a stalled server (or a generator that fell behind)
// shows up as the latency users would see: no coordinated omission
// (Gil Tene's term for closed-loop generators that stop sending while the
// system is stalled and so never measure the stall).
//
// Request bodies come from a Source: Fashion-MNIST test images with labels
// (pkg/dataset/fashionmnist), so the report includes the accuracy of the
// answers actually served (argmax of the output vs the label), or a
// synthetic zero tensor for benchmarks. The report gives P50/P95/P99
// latency, the SLO violation rate (slower than the SLO, errors and
// timeouts all count), errors by kind, achieved RPS, served accuracy and
// per-variant counts from the X-Infadapter-Variant response header.
//
// Runs are bounded: by the schedule's length, by MaxRequests, by
// MaxInFlight (arrivals beyond it are counted as "overload" errors instead
// of piling up goroutines) and by the context.
package loadgen
