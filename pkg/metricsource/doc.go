// Package metricsource measures the request rate and P99 latency of Knative
// revisions, either by scraping the Prometheus text exposition of every
// ready pod (queue-proxy's :9091/metrics, or a model server's own) or by
// querying a Prometheus HTTP API. Rates come from counter deltas between
// two reads, so the first read of a pod yields no rate (Reading.OK false
// until a revision has a delta).
package metricsource
