// Package local runs model-variant servers as processes on this machine
// with their CPU allocation really enforced — the local-mode backend of
// InfAdapter.
//
// Each instance is a child process (by default this binary's `serve-model`
// subcommand) in its own process group, started with Pdeathsig so none can
// outlive the backend. CPU enforcement is probed at New, best first:
//
//   - cgroup-v2: a per-instance cgroup with cpu.max under a private parent
//     directory (the cpu controller enabled in subtree_control as needed);
//   - cgroup-v1: the same with cpu.cfs_quota_us in the v1 cpu hierarchy;
//   - affinity: sched_setaffinity to ceil(cores) CPUs plus that many
//     workers (whole cores only);
//   - none: reported, never silently chosen.
//
// Enforcement() says which is in force and why the better ones failed.
// Under a quota, allocations are in millicores (0.5 core = 500) with a
// 10 ms CFS period, every process gets one worker per machine CPU and a
// resize rewrites the quota in place; under affinity a resize starts a
// replacement process (create before delete).
//
// The API is shaped for the adaptation loop: Ensure(desired) starts,
// resizes and waits for readiness (polling /v2/health/ready) and leaves
// superseded or dropped instances running but not current; the loop then
// moves dispatcher weights to the current URLs and calls Prune to retire
// the rest. Apply = Ensure + Prune. A crashed process is restarted with
// exponential backoff on the same port, so its URL stays valid.
// Timers use an injected clock.
package local
