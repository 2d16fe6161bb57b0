// Command autoscaler is InfAdapter's Knative autoscaler class
// (autoscaling.knative.dev/class: infadapter.autoscaling.infadapter.io) for
// KServe serverless predictors. Wiring only; see pkg/autoscaler and
// docs/knative.md.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"knative.dev/pkg/configmap"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/injection"
	"knative.dev/pkg/injection/sharedmain"
	"knative.dev/pkg/signals"

	"github.com/infadapter/infadapter/pkg/autoscaler"
)

// Flags are registered on flag.CommandLine and parsed by sharedmain (which
// also owns --kubeconfig); they are read when the controllers are built.
var (
	sksMode = flag.String("sks-mode", envOr("INFADAPTER_SKS_MODE", string(autoscaler.SKSServe)),
		"how PodAutoscalers' ServerlessServices are handled: serve (production; creates the SKS like the HPA class) "+
			"or skip (test beds with loopback pod IPs, where an SKS can never become Ready)")
	metricsAddr = flag.String("metrics-addr", envOr("INFADAPTER_METRICS_ADDR", ":9090"),
		"address of the controller's Prometheus /metrics endpoint (empty: off)")
	retryDelay = flag.Duration("retry-delay", time.Second, "requeue delay while a plan is being applied")
)

func main() {
	var ctors []injection.ControllerConstructor
	get := func() []injection.ControllerConstructor {
		if ctors != nil {
			return ctors
		}
		mode := autoscaler.SKSMode(*sksMode)
		if mode != autoscaler.SKSServe && mode != autoscaler.SKSSkip {
			log.Printf("--sks-mode %q: want serve or skip", *sksMode)
			os.Exit(2)
		}
		if *metricsAddr != "" {
			go serveMetrics(*metricsAddr)
		}
		ctors = autoscaler.Constructors(autoscaler.Options{SKSMode: mode, RetryDelay: *retryDelay})
		return ctors
	}
	families := func(ctx context.Context, cmw configmap.Watcher) *controller.Impl { return get()[0](ctx, cmw) }
	pas := func(ctx context.Context, cmw configmap.Watcher) *controller.Impl { return get()[1](ctx, cmw) }
	// Health probes stay off: sharedmain's probe port :8080 is hard-coded and
	// would collide with Knative's controller when run beside it.
	ctx := sharedmain.WithHealthProbesDisabled(signals.NewContext())
	sharedmain.MainWithContext(ctx, "infadapter-autoscaler", families, pas)
}

func serveMetrics(addr string) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(autoscaler.Registry, promhttp.HandlerOpts{}))
	if err := http.ListenAndServe(addr, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("metrics server on %s: %v", addr, err)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
