package modelserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
)

// ListeningPrefix starts the line Serve prints once it listens, followed by
// the base URL (e.g. "http://127.0.0.1:41234"). The local backend reads it.
const ListeningPrefix = "infadapter serve-model listening on "

// ServeConfig is the configuration of one serve-model process.
type ServeConfig struct {
	Model string // .onnx file
	Name  string // model name in paths; default: file name without .onnx
	Host  string // listen address; default 127.0.0.1
	Port  int    // TCP port; 0 = any free port
	// Threads is the cores the server may use = parallel workers (≥ 1).
	Threads int
	// IntraOpThreads per worker session; 0 means 1.
	IntraOpThreads int
	// WarmUp inferences per worker before ready (≥ 0).
	WarmUp int
	// MaxBatch bounds the examples in one request; 0 means 64.
	MaxBatch int
	// DynamicBatch ≥ 2 turns on server-side dynamic batching: up to that
	// many queued examples per ONNX Runtime run (0 or 1: off, the default).
	DynamicBatch int
	// DynamicBatchDelay is how long a non-full batch waits for more
	// requests (0: never, batch only what is already queued).
	DynamicBatchDelay time.Duration
	// CPUProfile, when set, is a file the process's Go CPU profile
	// (runtime/pprof) is written to from start to shutdown: where the
	// server's non-ONNX-Runtime time goes (ORT's own threads show as cgo).
	CPUProfile string
	// EventLoop chooses the serving path: EventLoopAuto (the default)
	// serves OIP v2 inference on an epoll event loop with the inference
	// inline (EventServer) when there is one worker and no dynamic
	// batching on Linux, else on the goroutine fast server;
	// EventLoopOn insists on the loop, EventLoopOff never uses it.
	EventLoop string
}

// ServeConfig.EventLoop values.
const (
	EventLoopAuto = "auto"
	EventLoopOn   = "on"
	EventLoopOff  = "off"
)

// useEventLoop: whether Serve runs the EventServer (after Validate).
func (c ServeConfig) useEventLoop() bool {
	switch c.EventLoop {
	case EventLoopOn:
		return true
	case EventLoopAuto:
		return c.eventLoopFits() == nil
	}
	return false
}

// eventLoopFits says why the event loop cannot serve this config, or nil.
func (c ServeConfig) eventLoopFits() error {
	var why []string
	if runtime.GOOS != "linux" {
		why = append(why, "it needs Linux (epoll)")
	}
	if c.Threads != 1 {
		why = append(why, fmt.Sprintf("it runs one inference at a time, so it needs threads = 1 (have %d)", c.Threads))
	}
	if c.DynamicBatch > 1 {
		why = append(why, fmt.Sprintf("it cannot batch, so it needs dynamic batch ≤ 1 (have %d)", c.DynamicBatch))
	}
	if len(why) == 0 {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}

// Defaults fills the zero fields.
func (c *ServeConfig) Defaults() {
	if c.Name == "" {
		c.Name = strings.TrimSuffix(filepath.Base(c.Model), ".onnx")
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.IntraOpThreads == 0 {
		c.IntraOpThreads = 1
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 64
	}
	if c.EventLoop == "" {
		c.EventLoop = EventLoopAuto
	}
}

// Validate reports every problem of the (defaulted) config.
func (c ServeConfig) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, errors.New("model: no file given"))
	} else if _, err := os.Stat(c.Model); err != nil {
		errs = append(errs, fmt.Errorf("model: %w", err))
	}
	if c.Threads < 1 {
		errs = append(errs, fmt.Errorf("threads = %d: must be ≥ 1", c.Threads))
	}
	if c.IntraOpThreads < 1 {
		errs = append(errs, fmt.Errorf("intra-op threads = %d: must be ≥ 1", c.IntraOpThreads))
	}
	if c.WarmUp < 0 {
		errs = append(errs, fmt.Errorf("warmup = %d: must be ≥ 0", c.WarmUp))
	}
	if c.DynamicBatch > maxDynamicBatch {
		errs = append(errs, fmt.Errorf("dynamic batch = %d: must be ≤ %d", c.DynamicBatch, maxDynamicBatch))
	}
	switch c.EventLoop {
	case EventLoopAuto, EventLoopOff:
	case EventLoopOn:
		if err := c.eventLoopFits(); err != nil {
			errs = append(errs, fmt.Errorf("event loop = on: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("event loop = %q: must be auto, on or off", c.EventLoop))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port = %d: must be in [0, 65535]", c.Port))
	}
	if err := (Config{Name: c.Name, MaxBatch: c.MaxBatch, Batch: BatchConfig{MaxBatch: c.DynamicBatch, Delay: c.DynamicBatchDelay}}).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// maxDynamicBatch bounds --dynamic-batch: each worker holds input and
// output buffers of that many examples.
const maxDynamicBatch = 1024

// ErrConfig wraps Serve's configuration errors (the caller's input).
var ErrConfig = errors.New("invalid serve-model configuration")

// Serve loads the model, listens, prints ListeningPrefix+URL on stdout,
// warms up, becomes ready and serves until ctx is done; then it turns
// not-ready and shuts down gracefully.
func Serve(ctx context.Context, cfg ServeConfig, stdout io.Writer, log *slog.Logger) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	log = log.With("model", cfg.Name)
	t0 := time.Now()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("%w: cpu profile: %w", ErrConfig, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	m, err := LoadModel(ModelConfig{Path: cfg.Model, Workers: cfg.Threads, IntraOpThreads: cfg.IntraOpThreads, MaxRunBatch: cfg.DynamicBatch})
	if err != nil {
		return err
	}
	defer m.Close()
	srv, err := NewServer(Config{Name: cfg.Name, MaxBatch: cfg.MaxBatch,
		Batch: BatchConfig{MaxBatch: cfg.DynamicBatch, Delay: cfg.DynamicBatchDelay}}, m)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var hs httpServer
	hopts := httpfast.Options{ReadHeaderTimeout: 10 * time.Second, Log: log}
	useLoop := cfg.useEventLoop()
	if useLoop {
		es, err := srv.NewEventServer(hopts)
		if err != nil {
			ln.Close()
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		hs = es
	} else {
		hs = srv.NewHTTPServer(hopts)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "%shttp://%s\n", ListeningPrefix, ln.Addr())
	log.Info("loaded", "file", cfg.Model, "workers", cfg.Threads, "intraOpThreads", cfg.IntraOpThreads,
		"dynamicBatch", cfg.DynamicBatch, "eventLoop", useLoop, "dynamicBatchDelay", cfg.DynamicBatchDelay,
		"load", time.Since(t0).Round(time.Millisecond), "addr", ln.Addr().String())
	if err := m.WarmUp(ctx, cfg.WarmUp); err != nil {
		_ = hs.Close()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	srv.SetReady(true)
	log.Info("ready", "warmup", cfg.WarmUp, "sinceStart", time.Since(t0).Round(time.Millisecond))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.SetReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// httpServer is what Serve needs of the fast server or the event-loop server.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

var (
	_ httpServer = (*httpfast.Server)(nil)
	_ httpServer = (*EventServer)(nil)
)
