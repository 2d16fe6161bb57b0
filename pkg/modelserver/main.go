package modelserver

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main runs a model server from serve-model style arguments ("serve-model"
// optional, then --model --name --port --threads --warmup --dynamic-batch
// --dynamic-batch-delay-us) until SIGTERM or
// an interrupt, and returns a process exit code. Tests of packages that
// start servers as processes re-execute their own binary into Main instead
// of building the CLI; the CLI itself binds its richer flags with cobra.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "serve-model" {
		args = args[1:]
	}
	var cfg ServeConfig
	fs := flag.NewFlagSet("serve-model", flag.ContinueOnError)
	fs.StringVar(&cfg.Model, "model", "", "ONNX model file")
	fs.StringVar(&cfg.Name, "name", "", "model name served")
	fs.IntVar(&cfg.Port, "port", 0, "listen port (0 = any free port)")
	fs.IntVar(&cfg.Threads, "threads", 1, "workers")
	fs.IntVar(&cfg.WarmUp, "warmup", 0, "warm-up requests before ready")
	fs.IntVar(&cfg.DynamicBatch, "dynamic-batch", 1, "dynamic batching: most requests per ORT run (1 = off)")
	delayUS := fs.Int("dynamic-batch-delay-us", 0, "µs a non-full batch waits")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.DynamicBatchDelay = time.Duration(*delayUS) * time.Microsecond
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Serve(ctx, cfg, os.Stdout, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
