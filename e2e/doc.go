// Package e2e holds end-to-end tests against a real control plane started by
// e2e/harness (Kubernetes 1.37.2 + kwok, Knative Serving, KServe). They skip
// when the binaries are not built (`make testbin`) and fail instead under CI.
// Run them with `make e2e` (go test -p 1 ./e2e/...).
package e2e
