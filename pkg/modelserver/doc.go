// Package modelserver serves one ONNX model over HTTP on ONNX Runtime: the
// Open Inference Protocol v2 (KServe v2) and TensorFlow Serving REST.
//
// The runtime is the shared library libonnxruntime.so.1 loaded at run time
// by github.com/yalue/onnxruntime_go (LocateLibrary says where it is looked
// for; hack/install-onnxruntime.sh puts it there). A Model holds one ORT
// session per worker, each with pre-bound batch-1 input and output tensors
// (a bound session must not be shared across goroutines), and a bounded pool
// hands a worker to each request. Thread spinning is off so an idle server
// uses no CPU and CPU accounting under a quota is honest.
//
// Threads: a server started with Threads = n has n workers, each running
// its session with one intra-op thread, so n requests run in parallel on n
// cores. At batch 1 and 28×28 inputs intra-op parallelism barely helps
// (measured in ../../shared/reference/inference-backends.md §3.1: two
// workers scale 1.95×, two intra-op threads only help the largest model),
// so "n cores" is spent on request parallelism. IntraOpThreads overrides it.
//
// Wire formats: OIP v2 JSON (decoded in one pass straight into float32s
// by fastV2, with pkg/oip as the fallback and the reference it is fuzzed
// against), the OIP v2 binary tensor data extension (Triton's
// binary_tensor_data: Inference-Header-Content-Length, raw little-endian
// FP32 after the JSON header, in requests and, on request, responses) and
// TF Serving JSON.
//
// HTTP: serve-model serves through Server.NewHTTPServer — inference
// requests (POST with a Content-Length to this model's infer/predict
// paths) take a fast HTTP/1.1 path that parses the head straight from the
// connection's buffer (pkg/internal/httpfast, shared with the dispatcher);
// every other request is handed, with its connection, to net/http and
// ServeHTTP on the same port. Both paths end in inferBody (fast.go).
//
// Batching: a request runs at batch 1 on the HTTP goroutine's own call into
// ORT (no hand-off). Optionally (ServeConfig.DynamicBatch, off by default
// because the committed profiles are batch-1 measurements) a Batcher
// queues single requests and runs up to N of them as one ORT run on a
// dynamic-batch session.
//
// Event loop (Linux; serve-model --event-loop auto, the default, turns it
// on for one worker without dynamic batching): EventServer serves OIP v2
// inference requests on one epoll loop (pkg/dispatcher/evloop) and runs
// the inference inline on it, with no goroutine wake-up and no cgo P
// hand-off to a thread that reads the next request mid-inference;
// everything else is handed to the server above. docs/benchmarks.md
// (runs K and L) has what it measured.
//
// The server is live as soon as it listens and ready only after warm-up
// inferences have run on every worker, so a readiness-gated caller never
// sees the first, slow runs.
package modelserver
