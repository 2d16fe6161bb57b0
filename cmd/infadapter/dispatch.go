package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/dispatcher"
)

type dispatchFlags struct {
	config      string
	listen      string
	adminListen string
	tokenFile   string
	backends    []string
	slo         time.Duration
	shed        bool
	eventLoops  int
}

func init() {
	f := &dispatchFlags{}
	cmd := &cobra.Command{
		Use:   "dispatch",
		Short: "Run the weighted dispatcher (reverse proxy) in front of model variants, without Knative",
		Long: `dispatch runs InfAdapter's dispatcher on its own: clients send OIP v2
(/v2/models/{model}/infer) or TF Serving (/v1/models/{model}:predict)
requests for a logical model, and the dispatcher splits them over the
variants' backends by their weights (smooth weighted round-robin), rewriting
the model name to each variant's. Answers carry X-Infadapter-Variant.

Backends come from --config (YAML, see below) and/or repeated --backend
model=variant@URL[*weight]. Weights and backends can be changed at run time
through the admin API on --admin-listen (bearer token from --admin-token-file
or $INFADAPTER_ADMIN_TOKEN; without a token the admin API answers 401), which
also serves /metrics (Prometheus):

  GET    /admin/v1/models
  PUT    /admin/v1/models/{model}/backends   [{"variant","url","weight"}...]
  PUT    /admin/v1/models/{model}/weights    {"variant": weight, ...}
  GET    /admin/v1/models/{model}/arrivals?seconds=60
  DELETE /admin/v1/models/{model}

Config file (every field optional; flags override listen/slo/shed):

  listen: ":8080"
  adminListen: "127.0.0.1:8081"
  slo: 750ms          # request timeout = 4 x SLO; load shedding uses it
  shed: true          # 503 + Retry-After when the queue would break the SLO
  healthInterval: 1s  # GET /v2/health/ready on every backend
  eventLoops: 4       # epoll loops for inference requests (Linux; default
                      # 2 x GOMAXPROCS; 0 = a goroutine per connection)
  models:
    fmnist:
      - {variant: cnn-s, url: "http://127.0.0.1:9001", weight: 0.7, concurrency: 1}
      - {variant: cnn-m, url: "http://127.0.0.1:9002", weight: 0.3}`,
		Example: `  infadapter dispatch --backend fmnist=cnn-s@http://127.0.0.1:9001*0.7 --backend fmnist=cnn-m@http://127.0.0.1:9002*0.3
  INFADAPTER_ADMIN_TOKEN=s3cret infadapter dispatch --config dispatch.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDispatch(ctx, cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML/JSON config file (see above)")
	fl.StringVar(&f.listen, "listen", ":8080", "address of the inference endpoint")
	fl.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:8081", "address of the admin API and /metrics (\"\" = off)")
	fl.StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin bearer token (default: $INFADAPTER_ADMIN_TOKEN)")
	fl.StringArrayVar(&f.backends, "backend", nil, "model=variant@URL[*weight], repeatable")
	fl.DurationVar(&f.slo, "slo", 0, "latency SLO (derives the request timeout; needed by --shed)")
	fl.BoolVar(&f.shed, "shed", false, "SLO-aware load shedding")
	fl.IntVar(&f.eventLoops, "event-loops", -1, "epoll event loops serving inference requests (Linux); 0 = a goroutine per connection; -1 = the config's eventLoops, else 2 x GOMAXPROCS on Linux")
	rootCmd.AddCommand(cmd)
}

func runDispatch(ctx context.Context, cmd *cobra.Command, f *dispatchFlags) error {
	var file dispatcher.File
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return badInput(err)
		}
		if file, err = dispatcher.ParseFile(b); err != nil {
			return badInput(fmt.Errorf("%s: %w", f.config, err))
		}
	}
	if file.Listen == "" || cmd.Flags().Changed("listen") {
		file.Listen = f.listen
	}
	if file.AdminListen == "" && f.config == "" || cmd.Flags().Changed("admin-listen") {
		file.AdminListen = f.adminListen
	}
	if cmd.Flags().Changed("slo") {
		file.SLO = f.slo.String()
	}
	if cmd.Flags().Changed("shed") {
		file.Shed = f.shed
	}
	if file.Models == nil {
		file.Models = dispatcher.Backends{}
	}
	for _, s := range f.backends {
		m, b, err := dispatcher.ParseBackendFlag(s)
		if err != nil {
			return badInput(fmt.Errorf("--backend: %w", err))
		}
		file.Models[m] = append(file.Models[m], b)
	}
	cfg, err := file.Config()
	if err != nil {
		return badInput(err)
	}
	cfg.AdminToken = os.Getenv("INFADAPTER_ADMIN_TOKEN")
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return badInput(fmt.Errorf("--admin-token-file: %w", err))
		}
		cfg.AdminToken = strings.TrimSpace(string(b))
	}
	if os.Getenv("GOGC") == "" {
		// A proxy's live heap is tiny and its garbage per request large;
		// collecting at 4× the live heap instead of 2× trades a few MB for
		// less GC CPU on the request path.
		debug.SetGCPercent(400)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	d, err := dispatcher.New(cfg, dispatcher.WithRegisterer(reg), dispatcher.WithLogger(log))
	if err != nil {
		return badInput(err)
	}
	defer d.Close()
	for m, bs := range file.Models {
		if err := d.SetBackends(m, bs); err != nil {
			return badInput(err)
		}
	}
	// The inference port: the dispatcher's own server (a fast path for
	// inference requests, net/http for the rest). ReadTimeout bounds slow
	// uploads like the request timeout bounds slow backends; IdleTimeout
	// frees keep-alive connections of gone clients.
	type server interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}
	sopts := dispatcher.ServerOptions{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: cfg.Timeout(), IdleTimeout: 2 * time.Minute}
	loops := dispatcher.DefaultEventLoops()
	if file.EventLoops != nil {
		loops = *file.EventLoops
	}
	if f.eventLoops >= 0 {
		loops = f.eventLoops
	}
	var front server = d.NewServer(sopts)
	if loops > 0 {
		es, err := d.NewEventServer(sopts, loops)
		if err != nil {
			return badInput(fmt.Errorf("event loops: %w", err))
		}
		front = es
	}
	servers := []server{front}
	addrs := []string{file.Listen}
	if file.AdminListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/admin/", d.AdminHandler())
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second})
		addrs = append(addrs, file.AdminListen)
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			return fmt.Errorf("listen %s: %w", addrs[i], err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "infadapter dispatch listening on %s\n", ln.Addr())
		go func() { errc <- s.Serve(ln) }()
	}
	if cfg.AdminToken == "" && file.AdminListen != "" {
		log.Warn("no admin token: the admin API answers 401 to everything (set INFADAPTER_ADMIN_TOKEN or --admin-token-file)")
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout()+time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	return nil
}
