package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/modelserver"
)

func init() {
	var cfg modelserver.ServeConfig
	var delayUS int // --dynamic-batch-delay-us, turned into cfg.DynamicBatchDelay
	cmd := &cobra.Command{
		Use:   "serve-model --model FILE",
		Short: "Serve one ONNX model over OIP v2 and TF Serving REST on ONNX Runtime",
		Long: `serve-model loads an ONNX model (one float32 input, one float32 output,
dynamic or unit batch) into ONNX Runtime and serves it, at batch 1 unless
--dynamic-batch is given:

  POST /v2/models/{name}/infer        Open Inference Protocol v2 (KServe v2)
  POST /v1/models/{name}:predict      TensorFlow Serving REST
  GET  /v2/health/live, /v2/health/ready, /v2/models/{name}[/ready], /v1/models/{name}
  GET  /metrics                       Prometheus

--threads is the number of cores the server may use: that many workers run
requests in parallel, each session with --intra-op-threads threads (1 by
default; batch-1 requests of small models gain nothing from more). ORT thread
spinning is off.

OIP v2 requests may be plain JSON or use the binary tensor data extension
(header Inference-Header-Content-Length: the JSON part's length; the FP32
input as raw little-endian bytes after it, parameters.binary_data_size on
the input; "binary_data_output": true for binary outputs), which saves the
server the parsing of the numbers.

--dynamic-batch N (off by default) queues single requests and runs up to N
of them as one ONNX Runtime run, which raises throughput under load for the
larger models; the committed profiles were measured at batch 1, so leave it
off where the adaptation loop plans capacity from them.

With one worker (--threads 1) and no dynamic batching, OIP v2 inference
requests are served on an epoll event loop that runs the inference inline
(--event-loop auto, the default on Linux): no goroutine wake-up per request
and no thread reading the next request in the middle of an inference, which
saves 24-50 µs of CPU per request on the larger models (docs/benchmarks.md).
Every other request goes to the goroutine server on the same port.
--event-loop off always uses the goroutine server.

The server is live at once and ready after --warmup
inferences on every worker. With --port 0 the chosen address is printed on
stdout.

The ONNX Runtime library is taken from $INFADAPTER_ORT_LIB or the cache
directory that 'make onnxruntime' (hack/install-onnxruntime.sh) fills.`,
		Example: `  infadapter serve-model --model third_party/models/fmnist/cnn-s.onnx --port 8081 --threads 1
  curl -s localhost:8081/v2/models/cnn-s/ready`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.DynamicBatchDelay = time.Duration(delayUS) * time.Microsecond
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "serve-model")
			err := modelserver.Serve(ctx, cfg, os.Stdout, log)
			if errors.Is(err, modelserver.ErrConfig) {
				return badInput(err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Model, "model", "", "ONNX model file (required)")
	f.StringVar(&cfg.Name, "name", "", "model name in request paths (default: file name without .onnx)")
	f.StringVar(&cfg.Host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&cfg.Port, "port", 8080, "TCP port (0 = any free port; the chosen address is printed on stdout)")
	f.IntVar(&cfg.Threads, "threads", 1, "cores to use = parallel inference workers")
	f.IntVar(&cfg.IntraOpThreads, "intra-op-threads", 1, "ONNX Runtime intra-op threads per worker")
	f.IntVar(&cfg.WarmUp, "warmup", 20, "warm-up inferences per worker before the server reports ready")
	f.IntVar(&cfg.MaxBatch, "max-batch", 64, "most examples accepted in one request (each runs at batch 1)")
	f.IntVar(&cfg.DynamicBatch, "dynamic-batch", 1, "server-side dynamic batching: most queued single requests run as one ONNX Runtime run (1 = off)")
	f.IntVar(&delayUS, "dynamic-batch-delay-us", 0, "with --dynamic-batch: µs a non-full batch waits for more requests (0 = batch only what is already queued)")
	f.StringVar(&cfg.EventLoop, "event-loop", modelserver.EventLoopAuto, "serve OIP v2 inference on one epoll event loop with the inference inline on it, other requests on the goroutine server: auto (when --threads 1 without dynamic batching, on Linux), on, off")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a Go CPU profile (go tool pprof) to this file until shutdown")
	rootCmd.AddCommand(cmd)
}
