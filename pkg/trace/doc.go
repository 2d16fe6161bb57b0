// Package trace reads, selects, scales and synthesises request-rate traces:
// one value per second, the number of requests that arrive in that second.
//
// Formats read by Read (auto-detected):
//   - whitespace-separated numbers, e.g. the InfAdapter Twitter trace's
//     workload.txt (one line, 1,899,061 integers);
//   - the same text inside bzip2 and/or a tar archive (workload.tbz2);
//   - CSV "second,rps" with an optional header; seconds must be consecutive
//     starting anywhere (the first second becomes index 0).
//
// Synthetic shapes (steps, spikes, diurnal, bursts, twitter-like) are seeded
// and deterministic. Arrivals turns per-second rates into request arrival
// times: Poisson by default (exponential gaps at the second's rate).
//
// Pure: no I/O besides reading the io.Reader handed in, no clock, seeded
// randomness only.
package trace
