// Package dispatcher is InfAdapter's request router: an HTTP reverse proxy
// in front of the variants of one or more logical models. It stands in for
// Knative's traffic split in local mode and serves users who run model
// servers without Knative.
//
// Clients address the logical model (POST /v2/models/{logical}/infer or
// /v1/models/{logical}:predict); the dispatcher picks a backend (one
// instance of one variant) by smooth weighted round-robin — nginx's
// algorithm, so no backend gets a burst and the shares are exact over every
// window of sum(weights) requests — rewrites the model name in the path to
// the variant's model name on that backend and proxies the request over a
// per-backend keep-alive pool. The response carries X-Infadapter-Variant.
//
// Weights and backends live in an immutable per-model table swapped with an
// atomic pointer, so a change never blocks or drops a request: requests
// already forwarded finish on the backend they were sent to, and
// RemoveDrained/Model.SetRoutes wait for them before a caller stops an old
// instance.
//
// Robustness: a per-request timeout derived from the SLO; active health
// checks (GET /v2/health/ready); passive outlier ejection after consecutive
// failures with an exponentially growing ejection time, never ejecting the
// last usable backend of a model; one retry on a connection failure, to
// another variant when there is one (bodies are buffered, so a retry resends
// the same bytes); a request body size limit; and optional SLO-aware load
// shedding: 503 with Retry-After when the chosen backend's expected
// queueing delay plus service time would exceed the SLO.
//
// Observation: per-second arrival counts per logical model (History) and
// per variant (VariantRPS) read by the adaptation loop, plus Prometheus
// metrics (metrics.go) with bounded labels (model, variant, outcome).
// Control: Go methods (SetBackends, SetWeights, RemoveModel) and an admin
// HTTP API behind a bearer token (admin.go).
//
// Serving: the Dispatcher is an http.Handler, but NewServer serves it
// faster (server.go): inference requests take a strict HTTP/1.1 fast path
// on the raw connection (pkg/internal/httpfast's Server, shared with the
// model server: it parses a subset of what net/http accepts, fuzzed
// against http.ReadRequest, and the dispatcher streams each backend's
// answer into the connection's write buffer), everything else is handed,
// connection and buffered bytes, to net/http on the same port. On the
// fast path a client that disconnects mid-request is noticed when its
// answer is written, not before (net/http's per-request background read
// was part of the cost); the request timeout still bounds it.
//
// Time comes from an injected k8s.io/utils/clock.
package dispatcher
