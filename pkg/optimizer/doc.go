// Package optimizer solves InfAdapter's allocation problem exactly: which
// variants run, with how many cores (and replicas) each and how much of the
// load each takes, maximising load-weighted accuracy minus resource and
// loading costs within a core budget. Pure: no I/O, no clock.
package optimizer
