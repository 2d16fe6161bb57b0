// Command kn-controller is Knative Serving's controller (knative.dev/serving
// cmd/controller, same reconcilers, same version) with one change for the e2e
// test bed: sharedmain's health-probe server is disabled. Upstream binds it
// to the hard-coded port :8080 on all interfaces and exits when that port is
// taken, so two test environments (or any other program on :8080) on one
// machine would kill each other's controller. Everything else — the
// reconciler list, flags, env (SYSTEM_NAMESPACE, PROFILING_PORT, …) — is
// upstream's. The cert-manager branch of upstream main is left out: the test
// bed never enables external-domain TLS, so config-network never asks for it.
package main

import (
	"flag"

	"knative.dev/pkg/injection"
	"knative.dev/pkg/injection/sharedmain"
	"knative.dev/pkg/reconciler"
	"knative.dev/pkg/signals"
	"knative.dev/serving/pkg/reconciler/configuration"
	"knative.dev/serving/pkg/reconciler/domainmapping"
	"knative.dev/serving/pkg/reconciler/gc"
	"knative.dev/serving/pkg/reconciler/labeler"
	"knative.dev/serving/pkg/reconciler/nscert"
	"knative.dev/serving/pkg/reconciler/revision"
	"knative.dev/serving/pkg/reconciler/route"
	"knative.dev/serving/pkg/reconciler/serverlessservice"
	"knative.dev/serving/pkg/reconciler/service"
)

// ctors is upstream's list (knative.dev/serving@v0.48.1/cmd/controller/main.go).
var ctors = []injection.ControllerConstructor{
	configuration.NewController,
	labeler.NewController,
	revision.NewController,
	route.NewController,
	serverlessservice.NewController,
	service.NewController,
	gc.NewController,
	nscert.NewController,
	domainmapping.NewController,
}

func main() {
	flag.DurationVar(&reconciler.DefaultTimeout,
		"reconciliation-timeout", reconciler.DefaultTimeout,
		"The amount of time to give each reconciliation of a resource to complete before its context is canceled.")
	ctx := sharedmain.WithHealthProbesDisabled(signals.NewContext())
	cfg := injection.ParseAndGetRESTConfigOrDie() // parses flags (--kubeconfig)
	sharedmain.MainWithConfig(ctx, "controller", cfg, ctors...)
}
