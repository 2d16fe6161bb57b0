// Package localmode is `infadapter run`: InfAdapter adapting a real
// inference service on one machine. It checks the ONNX Runtime library,
// profiles the local Fashion-MNIST variants (or reuses a cached profile),
// starts the variant servers (pkg/backend/local, CPU enforced), the
// dispatcher (pkg/dispatcher) and the adaptation loop (pkg/loop), replays a
// built-in bursty trace with pkg/loadgen against the dispatcher while
// serving the live dashboard (pkg/dashboard), and then replays the same
// trace against a static single-variant deployment for comparison.
//
// Time is compressed for the demo: the loop decides every Interval (5 s by
// default instead of the paper's 30 s) and the forecaster's one-minute
// horizon is scaled by the same factor (each observed second is repeated
// HorizonStretch times in the history the forecaster sees, so its
// "minute" is 60/HorizonStretch real seconds, two decision intervals as in
// the paper). See docs/local-mode.md.
package localmode
