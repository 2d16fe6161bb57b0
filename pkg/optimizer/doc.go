// Package optimizer solves InfAdapter's allocation problem exactly: which
// variants run, with how many cores (and replicas) each and how much of the
// load each takes, maximising load-weighted accuracy minus resource and
// loading costs within a core budget, for one service or several sharing
// the budget. Pure: no I/O, no clock.
//
// Entry points: Solve (the exact solver; its doc comment says why it is
// exact), Evaluate (score a given allocation with the same objective),
// Problem.Validate, ParseProblemJSON / ToFileSolution (the canonical
// problem and solution files of `infadapter solve`), and BenchmarkInstance
// (the seeded instances shared by the Go benchmarks and hack/milp-bench).
// Profiles become optimiser variants with profile.Profile.OptimizerVariants.
package optimizer
