// Package profile reads, validates and evaluates variant profiles: per model
// variant its accuracy, load time, memory and measured capacity (the highest
// RPS whose P99 latency stays within the SLO) at some core counts, plus the
// rule that derives capacity at the other core counts. Pure: no I/O besides
// parsing bytes handed in.
package profile
