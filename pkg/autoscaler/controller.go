package autoscaler

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	networkingclient "knative.dev/networking/pkg/client/injection/client"
	sksinformer "knative.dev/networking/pkg/client/injection/informers/networking/v1alpha1/serverlessservice"
	kubeclient "knative.dev/pkg/client/injection/kube/client"
	deploymentinformer "knative.dev/pkg/client/injection/kube/informers/apps/v1/deployment"
	podinformer "knative.dev/pkg/client/injection/kube/informers/core/v1/pod"
	"knative.dev/pkg/configmap"
	"knative.dev/pkg/controller"
	"knative.dev/pkg/injection"
	"knative.dev/pkg/injection/clients/dynamicclient"
	"knative.dev/pkg/logging"
	pkgreconciler "knative.dev/pkg/reconciler"
	"knative.dev/serving/pkg/apis/autoscaling"
	asv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	servingclient "knative.dev/serving/pkg/client/injection/client"
	metricinformer "knative.dev/serving/pkg/client/injection/informers/autoscaling/v1alpha1/metric"
	painformer "knative.dev/serving/pkg/client/injection/informers/autoscaling/v1alpha1/podautoscaler"
	revisioninformer "knative.dev/serving/pkg/client/injection/informers/serving/v1/revision"
	pareconciler "knative.dev/serving/pkg/client/injection/reconciler/autoscaling/v1alpha1/podautoscaler"
	"knative.dev/serving/pkg/deployment"
	areconciler "knative.dev/serving/pkg/reconciler/autoscaling"
	"knative.dev/serving/pkg/reconciler/autoscaling/config"

	knbackend "github.com/infadapter/infadapter/pkg/backend/knative"
	"github.com/infadapter/infadapter/pkg/metricsource"
)

// Options configures the controllers (the process-level switches; the
// tunables live in the config-infadapter ConfigMap).
type Options struct {
	// SKSMode: SKSServe in production, SKSSkip on loopback test beds.
	SKSMode SKSMode
	// Clock is injected for tests; default the real clock.
	Clock clock.PassiveClock
	// NewDecider defaults to NewInfAdapterDecider.
	NewDecider DeciderFactory
	// HTTPClient is used by the metric sources (default: 2 s timeout from
	// the ConfigMap's scrape-timeout).
	HTTPClient *http.Client
	// RetryDelay is the requeue delay while a change is in flight.
	RetryDelay time.Duration
}

// onlyOurClass filters objects carrying our class annotation.
var onlyOurClass = pkgreconciler.AnnotationFilterFunc(autoscaling.ClassAnnotationKey, Class, false)

// Constructors returns the two controller constructors for
// sharedmain.MainWithContext, in order: the family controller, then the
// PodAutoscaler controller (which enqueues families).
func Constructors(o Options) []injection.ControllerConstructor {
	var fam *controller.Impl
	var famR *FamilyReconciler
	return []injection.ControllerConstructor{
		func(ctx context.Context, cmw configmap.Watcher) *controller.Impl {
			fam, famR = NewFamilyController(ctx, cmw, o)
			return fam
		},
		func(ctx context.Context, cmw configmap.Watcher) *controller.Impl {
			return NewPAController(ctx, cmw, o, fam, famR)
		},
	}
}

// graphs reads InferenceGraphs with the dynamic client.
type graphs struct{ dyn dynamic.Interface }

func (g graphs) Get(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	return g.dyn.Resource(knbackend.GraphGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// NewFamilyController builds the family reconciler and its work queue.
func NewFamilyController(ctx context.Context, cmw configmap.Watcher, o Options) (*controller.Impl, *FamilyReconciler) {
	logger := logging.FromContext(ctx)
	kube := kubeclient.Get(ctx)
	dyn := dynamicclient.Get(ctx)
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}

	var cfg atomic.Pointer[Config]
	def := DefaultConfig()
	cfg.Store(&def)
	cmw.Watch(ConfigName, func(cm *corev1.ConfigMap) {
		c, err := NewConfigFromMap(cm.Data)
		if err != nil {
			// Keep the last good configuration; say exactly what is wrong.
			logger.Errorw("invalid "+ConfigName+"; keeping the previous configuration", "error", err)
			return
		}
		cfg.Store(c)
	})
	asStore := config.NewStore(logger.Named("config-store"))
	asStore.WatchConfigs(cmw)

	eb := record.NewBroadcaster()
	eb.StartLogging(logger.Named("event-broadcaster").Infof)
	eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	recorder := eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "infadapter-autoscaler"})
	go func() { <-ctx.Done(); eb.Shutdown() }()

	var src atomic.Pointer[sourceCache]
	r := &FamilyReconciler{
		Clock:          clk,
		PALister:       painformer.Get(ctx).Lister(),
		RevisionLister: revisioninformer.Get(ctx).Lister(),
		DeployLister:   deploymentinformer.Get(ctx).Lister(),
		PodLister:      podinformer.Get(ctx).Lister(),
		Kube:           kube,
		Graphs:         graphs{dyn},
		Apply:          &knbackend.Applier{Kube: kube, Dynamic: dyn},
		Config:         cfg.Load,
		ASConfig: func() *autoscalerconfig.Config {
			if c := asStore.Load(); c != nil && c.Autoscaler != nil {
				return c.Autoscaler
			}
			return autoscalerConfig(context.Background())
		},
		NewDecider:      o.NewDecider,
		Recorder:        recorder,
		RetryDelay:      o.RetryDelay,
		ResizeSupported: resizeDetector(kube),
		Source: func(c *Config) metricsource.Source {
			if sc := src.Load(); sc != nil && sc.cfg == c {
				return sc.src
			}
			s := NewSource(c, o.HTTPClient)
			src.Store(&sourceCache{cfg: c, src: s})
			return s
		},
	}
	r.PromoteFunc = r.promote
	impl := controller.NewContext(ctx, r, controller.ControllerOptions{WorkQueueName: "InfAdapterFamilies", Logger: logger.Named("families")})
	r.EnqueueAfter = func(key string, after time.Duration) {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		impl.EnqueueKeyAfter(types.NamespacedName{Namespace: ns, Name: name}, after)
	}
	return impl, r
}

// resizeDetector asks discovery once whether the API server serves
// pods/resize (cpu-mode auto); a failed lookup is retried on the next call.
// A cluster is not upgraded under a running controller often enough to
// re-ask: a restart picks the change up.
func resizeDetector(kube kubernetes.Interface) func(context.Context) (bool, error) {
	var mu sync.Mutex
	var known, ok bool
	return func(ctx context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if known {
			return ok, nil
		}
		v, err := knbackend.ServesPodResize(kube.Discovery())
		if err != nil {
			return false, err
		}
		known, ok = true, v
		logging.FromContext(ctx).Infow("cpu-mode auto resolved", "podsResize", v)
		return v, nil
	}
}

type sourceCache struct {
	cfg *Config
	src metricsource.Source
}

// NewSource builds the configured metrics source. Note that a new
// PodScraper starts without counters, so a ConfigMap change costs one
// observation window of rates.
func NewSource(c *Config, hc *http.Client) metricsource.Source {
	if hc == nil {
		hc = &http.Client{Timeout: c.ScrapeTimeout}
	}
	m := metricsource.Metrics{RequestCount: c.RequestCountMetric, Latency: c.LatencyMetric, LatencyUnit: c.LatencyUnit}
	if c.MetricsSource == MetricsPrometheus {
		return &metricsource.Prometheus{Client: hc, BaseURL: c.PrometheusURL, Metrics: m, Window: c.Family.Interval,
			NamespaceLabel: c.NamespaceLabel, RevisionLabel: c.RevisionLabel}
	}
	return &metricsource.PodScraper{Client: hc, Port: c.MetricsPort, Path: c.MetricsPath, Metrics: m}
}

// NewPAController builds the PodAutoscaler controller for our class. fam
// may be nil (PAs are then handled alone).
func NewPAController(ctx context.Context, cmw configmap.Watcher, o Options, fam *controller.Impl, famR *FamilyReconciler) *controller.Impl {
	logger := logging.FromContext(ctx)
	paInformer := painformer.Get(ctx)
	deployInformer := deploymentinformer.Get(ctx)
	kube := kubeclient.Get(ctx)

	r := &Reconciler{
		SKSMode:          o.SKSMode,
		DeploymentLister: deployInformer.Lister(),
		Scaler:           &knbackend.Applier{Kube: kube, Dynamic: dynamicclient.Get(ctx)},
	}
	if o.SKSMode != SKSSkip {
		sks := sksinformer.Get(ctx)
		metrics := metricinformer.Get(ctx)
		r.Base = &areconciler.Base{
			Client:           servingclient.Get(ctx),
			NetworkingClient: networkingclient.Get(ctx),
			SKSLister:        sks.Lister(),
			MetricLister:     metrics.Lister(),
		}
	}
	if fam != nil {
		r.EnqueueFamily = func(ns, family string) {
			fam.EnqueueKey(types.NamespacedName{Namespace: ns, Name: family})
		}
	}
	impl := pareconciler.NewImpl(ctx, r, Class, func(impl *controller.Impl) controller.Options {
		resync := configmap.TypeFilter(&autoscalerconfig.Config{}, &deployment.Config{})(func(string, any) {
			impl.FilteredGlobalResync(onlyOurClass, paInformer.Informer())
		})
		store := config.NewStore(logger.Named("config-store"), resync)
		store.WatchConfigs(cmw)
		return controller.Options{ConfigStore: store}
	})

	paInformer.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: onlyOurClass,
		Handler:    controller.HandleAll(impl.Enqueue),
	})
	// PA name == revision name; the revision label is on Deployments and pods.
	byRevision := controller.HandleAll(impl.EnqueueLabelOfNamespaceScopedResource("", "serving.knative.dev/revision"))
	deployInformer.Informer().AddEventHandler(byRevision)
	if fam != nil && famR != nil {
		// New or changed pods (e.g. a scale-up after a resize) need the
		// family's resize re-applied, and readiness gates the split.
		enqueueFamily := func(ns, rev string) {
			pa, err := famR.PALister.PodAutoscalers(ns).Get(rev)
			if err != nil || pa.Annotations[autoscaling.ClassAnnotationKey] != Class {
				return
			}
			if f := strings.TrimSpace(pa.Annotations[FamilyKey]); f != "" {
				fam.EnqueueKey(types.NamespacedName{Namespace: pa.Namespace, Name: f})
			}
		}
		// Pods carry their revision's name as a label; a Revision is named
		// like its PA.
		byLabel := func(obj any) {
			if o, ok := obj.(metav1.Object); ok && o.GetLabels()["serving.knative.dev/revision"] != "" {
				enqueueFamily(o.GetNamespace(), o.GetLabels()["serving.knative.dev/revision"])
			}
		}
		byName := func(obj any) {
			if o, ok := obj.(metav1.Object); ok {
				enqueueFamily(o.GetNamespace(), o.GetName())
			}
		}
		podinformer.Get(ctx).Informer().AddEventHandler(controller.HandleAll(byLabel))
		revisioninformer.Get(ctx).Informer().AddEventHandler(controller.HandleAll(byName))
	}
	if o.SKSMode != SKSSkip {
		h := cache.FilteringResourceEventHandler{
			FilterFunc: pkgreconciler.ChainFilterFuncs(onlyOurClass, controller.FilterController(&asv1alpha1.PodAutoscaler{})),
			Handler:    controller.HandleAll(impl.EnqueueControllerOf),
		}
		sksinformer.Get(ctx).Informer().AddEventHandler(h)
	}
	return impl
}
