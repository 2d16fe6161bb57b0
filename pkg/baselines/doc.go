// Package baselines holds the policies InfAdapter is compared against, all
// behind decider.Decider: MS+ (model switching + sizing, the paper's code),
// VPA-<variant> (the Kubernetes VPA recommender driven the paper's way),
// HPA-<variant> (replicas on CPU utilisation), a static peak-sized plan and
// the oracle (true next-interval peak, used with zero transition time).
// Pure: no I/O, no wall clock.
package baselines
